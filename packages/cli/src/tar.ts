import { type ChildProcess, spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";

/**
 * Directory archives go through the system `tar` (GNU tar on Debian), which already refuses
 * `..` members, strips leading slashes and defers symlinks that point outside, so a hostile
 * archive from a sandbox cannot write outside the target directory.
 */

/** The contents of local directory `dir` as a tar stream, and a promise of tar's success. */
export function packDirectory(dir: string): { stream: ReadableStream<Uint8Array>; done: Promise<void> } {
  const child = spawn("tar", ["-C", dir, "-cf", "-", "."], { stdio: ["ignore", "pipe", "pipe"] });
  return {
    stream: Readable.toWeb(child.stdout as Readable) as unknown as ReadableStream<Uint8Array>,
    done: finished(child, "pack"),
  };
}

/** Unpacks a tar stream into existing local directory `dir`, never as another owner. */
export async function unpackInto(dir: string, tar: ReadableStream<Uint8Array>): Promise<void> {
  const child = spawn("tar", ["-C", dir, "-xf", "-", "--no-same-owner", "--no-same-permissions"], {
    stdio: ["pipe", "ignore", "pipe"],
  });
  const done = finished(child, "unpack");
  await Promise.all([
    tar.pipeTo(Writable.toWeb(child.stdin as Writable) as WritableStream<Uint8Array>),
    done,
  ]);
}

function finished(child: ChildProcess, what: string): Promise<void> {
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString("utf8");
  });
  return new Promise((resolve, reject) => {
    child.once("error", (err) => reject(new Error(`cannot run tar to ${what}: ${err.message}`)));
    child.once("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`tar failed to ${what} (exit ${code}): ${stderr.trim()}`));
    });
  });
}
