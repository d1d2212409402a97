import { ConfigError, SETTINGS } from "@berth/core";
import { describe, expect, it } from "vitest";
import { runtimeDriver } from "./runtime-drivers.js";

describe("the runtime driver registry", () => {
  it("has a driver for every BERTH_RUNTIME value the config accepts", async () => {
    const names = Object.fromEntries(
      await Promise.all(SETTINGS.runtime.oneOf.map(async (v) => [v, (await runtimeDriver(v)).name])),
    );
    expect(names).toEqual({
      auto: "linux",
      runc: "linux",
      crun: "linux",
      docker: "docker",
      kubernetes: "kubernetes",
    });
  });

  it("refuses a value no driver serves with a ConfigError naming the setting", async () => {
    for (const bad of ["podman", "constructor", "__proto__", ""])
      await expect(runtimeDriver(bad)).rejects.toThrow(ConfigError);
    await expect(runtimeDriver("podman")).rejects.toThrow(/BERTH_RUNTIME/);
  });
});
