import { ConfigError, type RuntimeDriver } from "@berth/core";

/** The local driver: most servers run it, so it is the one loaded without asking. */
const linux = async () => (await import("@berth/runtime-linux")).linuxDriver;

/**
 * The runtime drivers by BERTH_RUNTIME value, each loaded only when named: a driver's package
 * (the Kubernetes client above all) costs seconds of start-up that a server on another driver,
 * restarting after a crash, should not pay. A new driver is a package with a `RuntimeDriver`
 * export, a line here and its value in the config's `oneOf` for BERTH_RUNTIME.
 */
const RUNTIME_DRIVERS: Readonly<Record<string, () => Promise<RuntimeDriver>>> = {
  auto: linux,
  runc: linux,
  crun: linux,
  docker: async () => (await import("@berth/runtime-docker")).dockerDriver,
  kubernetes: async () => (await import("@berth/runtime-kubernetes")).kubernetesDriver,
};

/** The driver BERTH_RUNTIME names; ConfigError for a value no driver serves. */
export async function runtimeDriver(runtime: string): Promise<RuntimeDriver> {
  const load = Object.hasOwn(RUNTIME_DRIVERS, runtime) ? RUNTIME_DRIVERS[runtime] : undefined;
  if (!load) throw new ConfigError(`BERTH_RUNTIME: no runtime driver is called '${runtime}'`);
  return load();
}
