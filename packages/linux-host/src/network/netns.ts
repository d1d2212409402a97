import { existsSync } from "node:fs";
import type { Logger } from "@berth/core";
import { run, tryRun } from "../command.js";
import type { SlotAddress } from "./addresses.js";

/** One prepared network: a named netns whose `eth0` is joined to the host by a veth. */
export interface NetSlot {
  /** `ip netns` name; the namespace is bind-mounted at /run/netns/<name>. */
  netns: string;
  /** Host end of the veth. */
  veth: string;
  address: SlotAddress;
}

export const netnsPath = (name: string): string => `/run/netns/${name}`;

/**
 * Creates the namespace and veth of a slot: two `ip -batch` calls (host side, namespace side),
 * ~5 ms. The sandbox end gets its /30 address and a default route via the host end.
 */
export async function createNetSlot(slot: NetSlot, o: { log?: Logger; signal?: AbortSignal }): Promise<void> {
  const { netns, veth, address: a } = slot;
  try {
    await run("ip", ["-batch", "-"], {
      ...o,
      timeoutMs: 10_000,
      input: [
        `netns add ${netns}`,
        `link add ${veth} type veth peer name eth0 netns ${netns}`,
        `addr add ${a.hostIp}/30 dev ${veth}`,
        `link set ${veth} up`,
        "",
      ].join("\n"),
    });
    await run("ip", ["-n", netns, "-batch", "-"], {
      ...o,
      timeoutMs: 10_000,
      input: [
        `addr add ${a.sandboxIp}/30 dev eth0`,
        "link set eth0 up",
        "link set lo up",
        `route add default via ${a.hostIp}`,
        "",
      ].join("\n"),
    });
    // No IPv6 on eth0: egress is IPv4 only, and an IPv6 socket with IPV6_FREEBIND could
    // otherwise put packets with any source address on the veth (loopback keeps ::1).
    if (existsSync("/proc/sys/net/ipv6"))
      await run("ip", ["netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1"], {
        ...o,
        timeoutMs: 10_000,
      });
  } catch (err) {
    await deleteNetSlot(slot, o);
    throw err;
  }
}

/** Removes a slot's veth and namespace; tolerates either being gone. */
export async function deleteNetSlot(
  slot: Pick<NetSlot, "netns" | "veth">,
  o: { log?: Logger },
): Promise<void> {
  // The veth goes with the namespace, but asynchronously: delete it first so its name is free.
  await tryRun("ip", ["link", "del", slot.veth], { log: o.log, timeoutMs: 10_000 });
  if (existsSync(netnsPath(slot.netns)))
    await tryRun("ip", ["netns", "del", slot.netns], { log: o.log, timeoutMs: 10_000 });
}
