import { ConfigError, SETTINGS } from "@berth/core";
import { describe, expect, it } from "vitest";
import { runtimeDriver } from "./runtime-drivers.js";

describe("the runtime driver registry", () => {
  it("has a driver for every BERTH_RUNTIME value the config accepts", () => {
    const names = Object.fromEntries(SETTINGS.runtime.oneOf.map((v) => [v, runtimeDriver(v).name]));
    expect(names).toEqual({
      auto: "linux",
      runc: "linux",
      crun: "linux",
      docker: "docker",
      kubernetes: "kubernetes",
    });
  });

  it("refuses a value no driver serves with a ConfigError naming the setting", () => {
    for (const bad of ["podman", "constructor", "__proto__", ""])
      expect(() => runtimeDriver(bad)).toThrow(ConfigError);
    expect(() => runtimeDriver("podman")).toThrow(/BERTH_RUNTIME/);
  });
});
