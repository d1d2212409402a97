// berth-init listening on a loopback TCP port (BERTH_LISTEN_PORT), as in a Kubernetes pod.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import type { Duplex } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../../test/support/ports.js";
import { SupervisorClient } from "./client.js";
import { initBinaryPath } from "./init-binary.js";

const state = mkdtempSync("/tmp/berth-sup-port-");
afterAll(() => rmSync(state, { recursive: true, force: true }));

describe("berth-init on a TCP port", () => {
  it("serves the protocol on 127.0.0.1:<BERTH_LISTEN_PORT>", async () => {
    const port = await freePort();
    const proc = spawn(initBinaryPath(), [], {
      env: { BERTH_LISTEN_PORT: String(port), BERTH_STATE_DIR: state, PATH: "/usr/bin:/bin" },
      stdio: "ignore",
    });
    try {
      const connect = () =>
        new Promise<Duplex>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1");
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
      const client = new SupervisorClient(connect);
      let version = "";
      for (let i = 0; i < 200 && !version; i++)
        version = await client.ping().then(
          (r) => r.version,
          () => new Promise<string>((r) => setTimeout(() => r(""), 10)),
        );
      expect(version).toBe("1");
      const p = await client.exec({
        cmd: ["sh", "-c", "echo over tcp"],
        env: { PATH: "/usr/bin:/bin" },
        stdin: false,
      });
      let out = "";
      p.on("stdout", (b: Buffer) => {
        out += b.toString();
      });
      await new Promise((r) => p.on("exit", r));
      expect(out).toBe("over tcp\n");
    } finally {
      proc.kill("SIGTERM");
    }
  });

  it("refuses a port that is not a number in 1..65535", () => {
    for (const bad of ["0", "70000", "80x"]) {
      const r = spawnSync(initBinaryPath(), [], {
        env: { BERTH_LISTEN_PORT: bad, BERTH_STATE_DIR: state },
        encoding: "utf8",
        timeout: 5000,
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain("bad BERTH_LISTEN_PORT");
    }
  });
});
