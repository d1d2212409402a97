// The FAKE Kubernetes API server itself: it must refuse what the real one refuses, for the calls
// the driver makes, or the driver's tests could pass on requests a real cluster rejects.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { type FakeCluster, startFakeCluster } from "../fixtures/fake-kubernetes/cluster.js";

let cluster: FakeCluster;
beforeAll(async () => {
  cluster = await startFakeCluster();
});
afterAll(() => cluster?.close());

const PODS = "/api/v1/namespaces/ns1/pods";
const call = async (method: string, path: string, body?: unknown, token = cluster.api.token) => {
  const res = await fetch(`${cluster.api.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
};
const pod = (name: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, labels: { app: "x" } },
  spec: { containers: [{ name: "c", image: "i:missing" }] },
});

describe("the fake Kubernetes API server", () => {
  it("refuses calls without the token, and paths it does not serve", async () => {
    expect((await call("GET", PODS, undefined, "wrong")).status).toBe(401);
    expect((await call("GET", "/api/v1/namespaces/ns1/secrets")).status).toBe(404);
    expect((await call("GET", "/apis/networking.k8s.io/v1/namespaces/ns1/pods")).status).toBe(404);
  });

  it("answers Status objects: 422 for an invalid Pod, 409 for a second of one name, 404 for none", async () => {
    const bad = await call("POST", PODS, { metadata: { name: "Not_A_Name" }, spec: { containers: [] } });
    expect(bad).toMatchObject({ status: 422, body: { kind: "Status", reason: "Invalid" } });
    expect((await call("POST", PODS, pod("p1"))).status).toBe(201);
    expect((await call("POST", PODS, pod("p1"))).body).toMatchObject({ code: 409, reason: "AlreadyExists" });
    expect((await call("GET", `${PODS}/nope`)).body).toMatchObject({ code: 404, reason: "NotFound" });
  });

  it("lists by equality selector only, and replaces under resourceVersion", async () => {
    await call("POST", PODS, pod("p2"));
    expect((await call("GET", `${PODS}?labelSelector=app%3Dx`)).body.items.length).toBeGreaterThanOrEqual(1);
    expect((await call("GET", `${PODS}?labelSelector=app%20in%20(x)`)).status).toBe(400);
    const p = (await call("GET", `${PODS}/p2`)).body;
    const relabel = { ...p, metadata: { ...p.metadata, labels: { app: "y" } } };
    expect((await call("PUT", `${PODS}/p2`, relabel)).status).toBe(200);
    // The same (now stale) resourceVersion again: the swap must fail.
    expect((await call("PUT", `${PODS}/p2`, relabel)).body).toMatchObject({ code: 409, reason: "Conflict" });
    const changed = {
      ...p,
      metadata: { ...p.metadata, resourceVersion: undefined },
      spec: { ...p.spec, hostname: "h" },
    };
    expect((await call("PUT", `${PODS}/p2`, changed)).status).toBe(422);
  });

  it("refuses a port-forward to a Pod that is not running or does not exist", async () => {
    const open = (path: string, protocols: string[]) =>
      new Promise<number>((resolve) => {
        const ws = new WebSocket(`${cluster.api.url.replace("http", "ws")}${path}`, protocols, {
          headers: { authorization: `Bearer ${cluster.api.token}` },
        });
        ws.on("open", () => {
          ws.close();
          resolve(101);
        });
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
        ws.on("error", () => resolve(-1));
      });
    // p1's image cannot be pulled: it stays Pending.
    expect(await open(`${PODS}/p1/portforward?ports=49990`, ["v4.channel.k8s.io"])).toBe(400);
    expect(await open(`${PODS}/gone/portforward?ports=49990`, ["v4.channel.k8s.io"])).toBe(404);
  });
});
