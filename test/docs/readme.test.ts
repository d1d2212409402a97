import { readFileSync } from "node:fs";
import { SETTINGS } from "@berth/core";
import { describe, expect, it } from "vitest";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const configuration = readFileSync(new URL("../../docs/configuration.md", import.meta.url), "utf8");
const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));

describe("README", () => {
  it("documents every server setting with its default in docs/configuration.md's table", () => {
    for (const s of Object.values(SETTINGS)) {
      const row = configuration.split("\n").find((l) => l.startsWith(`| \`${s.env}\` |`));
      expect(row, `${s.env} is missing from docs/configuration.md's table`).toBeDefined();
      const shown = s.default === undefined ? "(unset)" : `\`${s.default}\``;
      expect(row, `${s.env}'s default in docs/configuration.md`).toContain(`| ${shown} |`);
    }
  });

  it("stays short (about 250 lines): the rest lives in docs/", () => {
    expect(readme.split("\n").length).toBeLessThanOrEqual(260);
  });

  it("gives the two commands that package.json and .ci/run actually run", () => {
    expect(readme).toContain("npm start");
    expect(readme).toContain("npm test");
    expect(pkg.scripts.start).toMatch(/bootstrap\.mjs.*serve/);
    expect(pkg.scripts.test).toMatch(/bootstrap\.mjs --test.*vitest run/);
    expect(readFileSync(new URL("../../.ci/run", import.meta.url), "utf8")).toMatch(/^exec npm test$/m);
  });
});
