// The Docker driver's templates (images): a template from a sandbox, imports of a root
// filesystem tar and of a `docker save` archive, and delete refused while a sandbox uses one.
import { execFileSync } from "node:child_process";
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { pipeline } from "node:stream/promises";
import { ConflictError, type SandboxSpec } from "@berth/core";
import { buildDefaultRootfs, DockerRuntime } from "@berth/runtime-docker";
import { SupervisorClient } from "@berth/supervisor";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestDocker, type TestDocker } from "../support/dockerd.js";
import { shIn } from "../support/runtime-sh.js";

const docker = await startTestDocker();
if ("reason" in docker) console.log(`docker templates skipped: ${docker.reason}`);

describe.skipIf("reason" in docker)("docker driver templates", () => {
  const engine = docker as TestDocker;
  const dir = mkdtempSync("/tmp/berth-dt-");
  const tag = Math.random().toString(36).slice(2, 8);
  let runtime: DockerRuntime;
  let n = 0;
  const made: string[] = [];
  const create = async (template: string) => {
    const spec: SandboxSpec = {
      id: `dt-${tag}-${n++}`,
      template,
      resources: { cpus: 1, memoryMiB: 256, diskMiB: 64, pids: 128 },
      network: { egress: "none", allow: [] },
      env: {},
    };
    made.push(spec.id);
    await runtime.create(spec);
    return spec.id;
  };
  const client = (id: string) => new SupervisorClient(() => runtime.connect(id));
  const read = async (id: string, path: string) => {
    const { stream } = await client(id).read(path);
    let text = "";
    for await (const chunk of stream) text += chunk;
    return text;
  };
  const sh = (id: string, script: string) => shIn(runtime, id, script);

  beforeAll(async () => {
    runtime = new DockerRuntime({ dataDir: dir, socketPath: engine.socketPath });
    await runtime.start();
  });

  afterAll(async () => {
    for (const id of made) await runtime?.destroy(id).catch(() => {});
    for (const t of [`a-${tag}`, `b-${tag}`, `c-${tag}`]) await runtime?.deleteTemplate(t).catch(() => {});
    await runtime?.purgeHostState();
    rmSync(dir, { recursive: true, force: true });
    await engine.stop();
  });

  it("makes a template of a sandbox, starts sandboxes from it, and refuses to delete it while used", async () => {
    const src = await create("default");
    await client(src).write("/workspace/kept.txt", Buffer.from("from a sandbox"));
    const t = await runtime.templateFromSandbox(src, `a-${tag}`);
    expect(t).toMatchObject({ name: `a-${tag}`, source: "built from default" });
    expect(t.sizeBytes).toBeGreaterThan(0);
    expect((await runtime.listTemplates()).map((x) => x.name)).toEqual(
      expect.arrayContaining(["default", `a-${tag}`]),
    );
    const copy = await create(`a-${tag}`);
    expect(await read(copy, "/workspace/kept.txt")).toBe("from a sandbox");
    // Built on default: the host's /usr is there.
    expect((await sh(copy, "node -e 'console.log(1+1)'")).stdout).toBe("2\n");
    await expect(runtime.deleteTemplate(`a-${tag}`)).rejects.toBeInstanceOf(ConflictError);
    await runtime.destroy(copy);
    await runtime.deleteTemplate(`a-${tag}`);
    expect(await runtime.getTemplate(`a-${tag}`)).toBeNull();
  });

  it("imports a root filesystem tar and a docker save archive", async () => {
    const rootfs = buildDefaultRootfs();
    try {
      writeFileSync(`${rootfs}/workspace/hello.txt`, "from a tar");
      execFileSync("tar", ["--numeric-owner", "-C", rootfs, "-cf", `${dir}/rootfs.tar`, "."]);
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
    const b = await runtime.importTemplate(`b-${tag}`, `${dir}/rootfs.tar`, "rootfs");
    expect(b).toMatchObject({ name: `b-${tag}`, source: "rootfs tar" });
    const fromTar = await create(`b-${tag}`);
    expect(await read(fromTar, "/workspace/hello.txt")).toBe("from a tar");
    // An imported template is a whole root filesystem: the host's /usr is not bound in.
    expect((await client(fromTar).list("/usr")).length).toBe(0);

    // A `docker save` archive of that template's image, imported under another name.
    await new Promise<void>((resolve, reject) => {
      http
        .get({ socketPath: engine.socketPath, path: `/images/berth-template/b-${tag}:latest/get` }, (res) =>
          pipeline(res, createWriteStream(`${dir}/saved.tar`)).then(resolve, reject),
        )
        .on("error", reject);
    });
    // Loading it would retag template b: refused while b exists.
    await expect(runtime.importTemplate(`c-${tag}`, `${dir}/saved.tar`, "docker")).rejects.toBeInstanceOf(
      ConflictError,
    );
    expect(await runtime.getTemplate(`b-${tag}`)).not.toBeNull();
    await runtime.destroy(fromTar);
    await runtime.deleteTemplate(`b-${tag}`);
    const c = await runtime.importTemplate(`c-${tag}`, `${dir}/saved.tar`, "docker");
    expect(c.source).toMatch(/^docker save archive /);
    const fromSave = await create(`c-${tag}`);
    expect(await read(fromSave, "/workspace/hello.txt")).toBe("from a tar");
    await expect(runtime.importTemplate(`c-${tag}`, `${dir}/saved.tar`, "docker")).rejects.toBeInstanceOf(
      ConflictError,
    );
    // The archive's own tag was only a step: template b stays deleted.
    expect(await runtime.getTemplate(`b-${tag}`)).toBeNull();
  });
});
