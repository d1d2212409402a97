import type { SandboxRecord } from "@berth/core";

/** What every process in a sandbox starts with; the sandbox's env and the call's env go on top. */
const BASE_ENV: Record<string, string> = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  HOME: "/home/user",
  USER: "user",
  LOGNAME: "user",
  SHELL: "/bin/bash",
  LANG: "C.UTF-8",
};

/**
 * The whole environment of a process started in `sandbox` (berth-init passes it as is): the
 * base, the runtime driver's variables, the sandbox's env, then the call's.
 */
export function processEnv(
  sandbox: SandboxRecord,
  extra: Record<string, string> = {},
  driver: Record<string, string> = {},
): Record<string, string> {
  return { ...BASE_ENV, HOSTNAME: sandbox.id, ...driver, ...sandbox.env, ...extra };
}
