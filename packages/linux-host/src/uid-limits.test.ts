import { describe, expect, it } from "vitest";
import { inotifyCeiling } from "./uid-limits.js";

describe("per-uid inotify ceiling", () => {
  it("is more objects than the host's memory could hold, within the kernel's int range", () => {
    expect(inotifyCeiling(24 * 2 ** 30)).toBe(50_331_648);
    expect(inotifyCeiling(2 ** 30) * 512).toBeGreaterThanOrEqual(2 ** 30);
    expect(inotifyCeiling(2 ** 50)).toBe(2 ** 31 - 1);
  });
});
