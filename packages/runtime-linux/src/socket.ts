import { renameSync, rmSync } from "node:fs";
import net from "node:net";

/** A bound, listening unix socket whose fd is about to be handed to a sandbox. */
export interface ListeningSocket {
  /** The raw fd to pass to the child (it arrives as fd 3 via `--preserve-fds 1`). */
  fd: number;
  /** Closes the server's own copy; the socket lives on in whoever inherited it. */
  close(): Promise<void>;
}

/**
 * Binds and listens on `path` for berth-init, in the server. Why this shape:
 * - Node cannot pass a `net.Server` in `spawn`'s stdio (it must be a stream), but a number is
 *   dup2()ed into the child at that position, so the handle's fd (`_handle.fd`, stable on Unix
 *   for a decade) is what gets passed.
 * - libuv unlinks a unix server's path when the server is closed, and the server must close its
 *   copy after the sandbox started (so only the sandbox accepts). Binding a temporary name and
 *   renaming the socket file into place makes that unlink miss: clients connect to `path`.
 * - Connections that arrive before berth-init calls accept() wait in the backlog, so the socket
 *   is usable the moment `runc run` returns.
 */
export async function listenForSandbox(path: string): Promise<ListeningSocket> {
  const tmp = `${path}.bind`;
  rmSync(tmp, { force: true });
  rmSync(path, { force: true });
  const server = net.createServer();
  // Should a client connect in the short window before close, the sandbox is not up yet: drop it.
  server.on("connection", (c) => c.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ path: tmp, backlog: 511 }, () => resolve());
  });
  renameSync(tmp, path);
  const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) {
    server.close();
    throw new Error("cannot get the listening socket's fd");
  }
  return {
    fd,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
