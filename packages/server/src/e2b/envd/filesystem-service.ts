import { randomUUID } from "node:crypto";
import { posix } from "node:path";
import { ConflictError, NotFoundError } from "@berth/core";
import type { FileEntry, SupervisorClient, WatchStream } from "@berth/supervisor";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { callOf, sandboxPath } from "./call.js";
import { readMetadata } from "./file-metadata.js";
import {
  type EntryInfoSchema,
  EventType,
  type Filesystem,
  type FilesystemEventSchema,
  FileType,
  type WatchDirResponseSchema,
} from "./gen/filesystem_pb.js";
import { rpc } from "./rpc-errors.js";

type EntryInit = MessageInitShape<typeof EntryInfoSchema>;
type FsEventInit = MessageInitShape<typeof FilesystemEventSchema>;

/** Deepest ListDir recursion served (each level is one supervisor call per directory). */
const MAX_DEPTH = 16;
/** Events a polled watcher keeps between GetWatcherEvents calls; older ones are dropped. */
const MAX_WATCHER_EVENTS = 10_000;

/** `ls -l` style permissions, as Go's FileMode prints them (envd's form). */
function permissions(e: FileEntry): string {
  const kind = e.type === "dir" ? "d" : e.type === "symlink" ? "L" : "-";
  const bits = "rwxrwxrwx";
  let out = kind;
  for (let i = 0; i < 9; i++) out += e.mode & (1 << (8 - i)) ? bits[i] : "-";
  return out;
}

/** Where a symlink points (berth-init's stat does not say, so `readlink` runs in the sandbox). */
async function linkTarget(client: SupervisorClient, path: string): Promise<string | undefined> {
  const proc = await client.exec({ cmd: ["readlink", "-f", "--", path], env: { PATH: "/usr/bin:/bin" } });
  const out: Buffer[] = [];
  proc.on("stdout", (b: Buffer) => out.push(b));
  const ok = await new Promise<boolean>((resolve) => {
    proc.on("exit", (s: { exitCode: number | null }) => resolve(s.exitCode === 0));
    proc.on("error", () => resolve(false));
  });
  return ok ? Buffer.concat(out).toString("utf8").replace(/\n$/, "") : undefined;
}

/** E2B's EntryInfo for a supervisor entry at `path` (with its metadata, when that was read). */
export async function entryInfo(
  client: SupervisorClient,
  path: string,
  e: FileEntry,
  metadata?: Record<string, string>,
): Promise<EntryInit> {
  const symlinkTarget = e.type === "symlink" ? await linkTarget(client, path) : undefined;
  return {
    ...(metadata ? { metadata } : {}),
    ...(symlinkTarget !== undefined ? { symlinkTarget } : {}),
    name: path === "/" ? "/" : posix.basename(path),
    type: e.type === "dir" ? FileType.DIRECTORY : e.type === "symlink" ? FileType.SYMLINK : FileType.FILE,
    path,
    size: BigInt(e.size),
    mode: e.mode,
    permissions: permissions(e),
    // berth-init reports no owner; sandbox files are the sandbox user's unless made by the image.
    owner: "user",
    group: "user",
    modifiedTime: timestampFromDate(new Date(e.mtime)),
  };
}

/** The name berth-init gives the temporary file of an atomic write (`.<name>.berth-XXXXXX`). */
const BERTH_TEMP_FILE = /^\..+\.berth-[A-Za-z0-9]{6}$/;

const EVENT_TYPES = { create: EventType.CREATE, modify: EventType.WRITE, delete: EventType.REMOVE } as const;

/**
 * E2B's events for one supervisor event. berth-init writes files atomically (a new inode renamed
 * into place), which inotify reports as a create; envd's clients expect a write event for new
 * content, so a created regular file is reported as CREATE then WRITE, as envd reports a new file.
 */
async function eventsOf(
  client: SupervisorClient,
  root: string,
  e: { type: keyof typeof EVENT_TYPES; path: string },
  includeEntry: boolean,
): Promise<FsEventInit[]> {
  const name = posix.relative(root, e.path);
  // berth-init's own temporary file of an atomic write is not the user's business.
  if (BERTH_TEMP_FILE.test(posix.basename(e.path))) return [];
  const stat = e.type === "delete" ? null : await client.stat(e.path).catch(() => null);
  const entry = includeEntry && stat ? { entry: await entryInfo(client, e.path, stat) } : {};
  const out: FsEventInit[] = [{ name, type: EVENT_TYPES[e.type], ...entry }];
  // A file removed again before it could be looked at was still a written file.
  if (e.type === "create" && stat?.type !== "dir") out.push({ name, type: EventType.WRITE, ...entry });
  return out;
}

/** A watch that the SDK polls (CreateWatcher / GetWatcherEvents / RemoveWatcher). */
interface PolledWatcher {
  sandboxId: string;
  watch: WatchStream;
  events: FsEventInit[];
  failed?: string;
}

/** Starts a supervisor watch of a directory (refusing a path that is missing or not a directory). */
async function openWatch(client: SupervisorClient, path: string, recursive: boolean): Promise<WatchStream> {
  const entry = await client.stat(path);
  if (entry.type !== "dir") throw new ConnectError(`'${path}' is not a directory`, Code.InvalidArgument);
  return client.watch(path, { recursive });
}

/** E2B's `filesystem.Filesystem` service over the sandbox's supervisor. */
export function filesystemService(): ServiceImpl<typeof Filesystem> & { closeAll(): void } {
  const watchers = new Map<string, PolledWatcher>();

  const listDir = async (client: SupervisorClient, path: string, depth: number, out: EntryInit[]) => {
    const entries = await client.list(path);
    // One sandbox process reads the metadata of the whole directory.
    const meta = await readMetadata(
      client,
      entries.filter((e) => e.type !== "symlink").map((e) => posix.join(path, e.name)),
    );
    for (const e of entries) {
      const child = posix.join(path, e.name);
      out.push(await entryInfo(client, child, e, meta.get(child)));
      if (e.type === "dir" && depth > 1) await listDir(client, child, depth - 1, out);
    }
  };

  /** The entry at `path` with its metadata. */
  const statWithMetadata = async (client: SupervisorClient, path: string) => {
    const [e, meta] = await Promise.all([client.stat(path), readMetadata(client, [path])]);
    return entryInfo(client, path, e, meta.get(path));
  };

  const polled = (ctx: HandlerContext, id: string): PolledWatcher => {
    const w = watchers.get(id);
    if (!w || w.sandboxId !== callOf(ctx).sandbox.id)
      throw new ConnectError(`watcher '${id}' not found`, Code.NotFound);
    return w;
  };

  return {
    async stat(req, ctx) {
      const { client, home } = callOf(ctx);
      const path = sandboxPath(req.path, home);
      return rpc(async () => ({ entry: await statWithMetadata(client, path) }));
    },
    async makeDir(req, ctx) {
      const { client, home } = callOf(ctx);
      const path = sandboxPath(req.path, home);
      return rpc(async () => {
        // The SDK reads "already exists" as `false`, so it must be told apart from success.
        if (await client.stat(path).catch(() => null))
          throw new ConnectError(`'${path}' already exists`, Code.AlreadyExists);
        await client.mkdir(path);
        return { entry: await entryInfo(client, path, await client.stat(path)) };
      });
    },
    async move(req, ctx) {
      const { client, home } = callOf(ctx);
      const from = sandboxPath(req.source, home);
      const to = sandboxPath(req.destination, home);
      return rpc(async () => {
        await client.move(from, to);
        return { entry: await statWithMetadata(client, to) };
      });
    },
    async listDir(req, ctx) {
      const { client, home } = callOf(ctx);
      const path = sandboxPath(req.path, home);
      const depth = Math.min(MAX_DEPTH, Math.max(1, req.depth || 1));
      return rpc(async () => {
        const entry = await client.stat(path);
        if (entry.type !== "dir")
          throw new ConnectError(`'${path}' is not a directory`, Code.InvalidArgument);
        const entries: EntryInit[] = [];
        await listDir(client, path, depth, entries);
        return { entries };
      });
    },
    async remove(req, ctx) {
      const { client, home } = callOf(ctx);
      const path = sandboxPath(req.path, home);
      await rpc(async () => {
        if (path === "/") throw new ConflictError("refusing to remove '/'");
        // Removing what is not there succeeds, as envd does.
        await client.remove(path, { recursive: true }).catch((err: unknown) => {
          if (!(err instanceof NotFoundError)) throw err;
        });
      });
      return {};
    },
    async *watchDir(req, ctx): AsyncGenerator<MessageInitShape<typeof WatchDirResponseSchema>> {
      const { client, home } = callOf(ctx);
      const root = sandboxPath(req.path, home);
      const watch = await rpc(() => openWatch(client, root, req.recursive));
      const queue: FsEventInit[] = [];
      let failed: Error | undefined;
      let wake: (() => void) | undefined;
      // Events are turned into E2B's one after another, so their order is kept.
      let chain = Promise.resolve();
      watch.on("event", (e: { type: keyof typeof EVENT_TYPES; path: string }) => {
        chain = chain.then(async () => {
          queue.push(...(await eventsOf(client, root, e, req.includeEntry)));
          wake?.();
        });
      });
      watch.on("error", (e: Error) => {
        failed = e;
        wake?.();
      });
      watch.on("close", () => wake?.());
      const onAbort = () => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        yield { event: { case: "start", value: {} } };
        for (;;) {
          while (queue.length > 0)
            yield { event: { case: "filesystem", value: queue.shift() as FsEventInit } };
          if (failed) throw await rpc(async () => failed);
          if (ctx.signal.aborted) return;
          await new Promise<void>((r) => {
            wake = r;
          });
          wake = undefined;
        }
      } finally {
        ctx.signal.removeEventListener("abort", onAbort);
        watch.close();
      }
    },
    async createWatcher(req, ctx) {
      const { sandbox, client, home } = callOf(ctx);
      const root = sandboxPath(req.path, home);
      const watch = await rpc(() => openWatch(client, root, req.recursive));
      const id = randomUUID();
      const w: PolledWatcher = { sandboxId: sandbox.id, watch, events: [] };
      let chain = Promise.resolve();
      watch.on("event", (e: { type: keyof typeof EVENT_TYPES; path: string }) => {
        chain = chain.then(async () => {
          w.events.push(...(await eventsOf(client, root, e, req.includeEntry)));
          if (w.events.length > MAX_WATCHER_EVENTS) w.events.splice(0, w.events.length - MAX_WATCHER_EVENTS);
        });
      });
      watch.on("error", (e: Error) => {
        w.failed = e.message;
      });
      // A watch that ends by itself (the sandbox stopped) is forgotten: nothing outlives its sandbox.
      watch.on("close", () => watchers.delete(id));
      watchers.set(id, w);
      return { watcherId: id };
    },
    async getWatcherEvents(req, ctx) {
      const w = polled(ctx, req.watcherId);
      if (w.failed) throw new ConnectError(`the watch ended: ${w.failed}`, Code.Unavailable);
      return { events: w.events.splice(0) };
    },
    async removeWatcher(req, ctx) {
      const w = polled(ctx, req.watcherId);
      w.watch.close();
      watchers.delete(req.watcherId);
      return {};
    },
    closeAll() {
      for (const w of watchers.values()) w.watch.close();
      watchers.clear();
    },
  };
}
