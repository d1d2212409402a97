import { readFileSync } from "node:fs";
import { openApiDocument } from "@berth/server";
import { describe, expect, it } from "vitest";
import { renderApiReference, serverVersion } from "../../scripts/api-reference.mjs";

const ROOT = new URL("../../", import.meta.url).pathname;

describe("docs/api.md, the HTTP API reference", () => {
  it("is what scripts/api-reference.mjs writes from the server's current OpenAPI document", async () => {
    const doc = await openApiDocument(serverVersion(ROOT));
    const fresh = renderApiReference(doc);
    const committed = readFileSync(`${ROOT}docs/api.md`, "utf8");
    // A route or schema changed without the reference: `npm run build && node scripts/api-reference.mjs`.
    expect(committed, "docs/api.md is stale: run `npm run build && node scripts/api-reference.mjs`").toBe(
      fresh,
    );
  });

  it("names every route of the document, with its body fields", async () => {
    const doc = (await openApiDocument(serverVersion(ROOT))) as { paths: Record<string, object> };
    const text = renderApiReference(doc);
    const paths = Object.keys(doc.paths);
    expect(paths).toContain("/v1/sandboxes");
    expect(paths).toContain("/v1/sessions");
    for (const path of paths) expect(text, path).toContain(path);
    expect(text).toContain("### `POST /v1/sandboxes`");
    expect(text).toMatch(/\| `timeoutSeconds` \| integer \|/);
  });
});
