/**
 * A real Berth server whose model API is the FAKE model server (test/fixtures/fake-model), started
 * before a test file's tests and stopped after them: the setup the agent-session suites share.
 */
import { afterAll, beforeAll } from "vitest";
import { type FakeModel, MarkerScripts, startFakeModel } from "../fixtures/fake-model/server.js";
import { api, startTestServer, type TestServer } from "./server.js";
import { sessionIn } from "./sessions.js";

/** The server, the fake model and the calls a session test makes (valid once `beforeAll` ran). */
export interface AgentServer {
  readonly server: TestServer;
  readonly model: FakeModel;
  /** What the fake model answers, by a marker in the prompt. */
  readonly scripts: MarkerScripts;
  /** An API call with the admin key. */
  call(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Waits for a session to reach one of `states`; answers its record. */
  until(id: string, states: string[], timeoutMs?: number): Promise<any>;
}

/**
 * Registers the hooks that start and stop the server and fake model. `name` tells the fake model
 * key apart in logs; `env` adds server settings.
 */
export function useAgentServer(name: string, env: Record<string, string> = {}): AgentServer {
  let server: TestServer | undefined;
  let model: FakeModel | undefined;
  const scripts = new MarkerScripts();
  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`the ${what} is not started yet (use it inside a test)`);
    return v;
  };
  const h: AgentServer = {
    get server() {
      return started(server, "server");
    },
    get model() {
      return started(model, "fake model");
    },
    scripts,
    call: (method, path, body) => api(h.server, h.server.adminKey, method, path, body),
    until: (id, states, timeoutMs) => sessionIn((p) => h.call("GET", p), id, states, timeoutMs),
  };
  beforeAll(async () => {
    model = await startFakeModel(scripts.route);
    server = await startTestServer({
      env: { BERTH_ANTHROPIC_API_KEY: `sk-ant-fake-${name}`, BERTH_ANTHROPIC_BASE_URL: model.url, ...env },
    });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
    await model?.close();
  });
  return h;
}
