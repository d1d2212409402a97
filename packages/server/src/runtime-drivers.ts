import { ConfigError, type RuntimeDriver } from "@berth/core";
import { dockerDriver } from "@berth/runtime-docker";
import { kubernetesDriver } from "@berth/runtime-kubernetes";
import { linuxDriver } from "@berth/runtime-linux";

/**
 * The runtime drivers by BERTH_RUNTIME value. A new driver is a package with a `RuntimeDriver`
 * export, a line here and its value in the config's `oneOf` for BERTH_RUNTIME.
 */
const RUNTIME_DRIVERS: Readonly<Record<string, RuntimeDriver>> = {
  auto: linuxDriver,
  runc: linuxDriver,
  crun: linuxDriver,
  docker: dockerDriver,
  kubernetes: kubernetesDriver,
};

/** The driver BERTH_RUNTIME names; ConfigError for a value no driver serves. */
export function runtimeDriver(runtime: string): RuntimeDriver {
  const driver = Object.hasOwn(RUNTIME_DRIVERS, runtime) ? RUNTIME_DRIVERS[runtime] : undefined;
  if (!driver) throw new ConfigError(`BERTH_RUNTIME: no runtime driver is called '${runtime}'`);
  return driver;
}
