import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { BerthError, type Files, Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { baseName, type CopyTarget, joinRemote, parseCopyTarget } from "../remote-path.js";
import { packDirectory, unpackInto } from "../tar.js";

/** `berth files cp`. */
export const filesCopy: Command = {
  summary: "copy files between this machine and a sandbox",
  usage: `Usage: berth files cp SRC DST

Copies a file or directory into or out of a sandbox; one side is ID:/path, like docker cp.
  berth files cp ./app sb123:/home/user        uploads ./app to /home/user/app
  berth files cp sb123:/etc/hostname ./h       downloads one file
  berth files cp sb123:/home/user/out -        writes a sandbox file to stdout
A directory travels as a tar archive. When DST is an existing directory, SRC lands inside it.`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length !== 2) throw new UsageError("expected SRC and DST", ctx.usage);
    let src: CopyTarget;
    let dst: CopyTarget;
    try {
      src = parseCopyTarget(args.positionals[0] as string);
      dst = parseCopyTarget(args.positionals[1] as string);
    } catch (err) {
      throw new UsageError((err as Error).message, ctx.usage);
    }
    if (src.kind === "local" && dst.kind === "remote") {
      const sb = await Sandbox.connect(dst.sandboxId, { client: ctx.client() });
      await upload(src.path, sb.files, dst.path);
    } else if (src.kind === "remote" && dst.kind === "local") {
      const sb = await Sandbox.connect(src.sandboxId, { client: ctx.client() });
      await download(sb.files, src.path, dst.path);
    } else {
      throw new UsageError("exactly one of SRC and DST must be a sandbox path (ID:/path)", ctx.usage);
    }
    return 0;
  },
};

/** Whether `path` is a directory in the sandbox (a listing succeeds). */
async function isRemoteDir(files: Files, path: string): Promise<boolean> {
  try {
    await files.list(path);
    return true;
  } catch (err) {
    if (err instanceof BerthError && err.status >= 400 && err.status < 500) return false;
    throw err;
  }
}

async function localStat(path: string) {
  return stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
}

async function upload(local: string, files: Files, remote: string): Promise<void> {
  if (local === "-") {
    await files.write(remote, Readable.toWeb(process.stdin) as unknown as ReadableStream<Uint8Array>);
    return;
  }
  const st = await localStat(local);
  if (!st) throw new BerthError("not_found", `local path '${local}' does not exist`);
  const into = remote.endsWith("/") || (await isRemoteDir(files, remote));
  const target = into ? joinRemote(remote, baseName(local) || "upload") : remote;
  if (st.isDirectory()) {
    await files.mkdir(target);
    const { stream, done } = packDirectory(local);
    await Promise.all([files.uploadArchive(target, stream), done]);
  } else {
    await files.write(
      target,
      Readable.toWeb(createReadStream(local)) as unknown as ReadableStream<Uint8Array>,
    );
  }
}

async function download(files: Files, remote: string, local: string): Promise<void> {
  const dir = await isRemoteDir(files, remote);
  if (local === "-") {
    if (dir) throw new BerthError("invalid_request", `'${remote}' is a directory; cannot write it to stdout`);
    await pipeline(Readable.fromWeb((await files.readStream(remote)) as never), process.stdout, {
      end: false,
    });
    return;
  }
  const st = await localStat(local);
  const target = st?.isDirectory() ? join(local, baseName(remote) || "root") : local;
  if (dir) {
    await mkdir(target, { recursive: true });
    await unpackInto(target, await files.downloadArchive(remote));
  } else {
    await pipeline(Readable.fromWeb((await files.readStream(remote)) as never), createWriteStream(target));
  }
}
