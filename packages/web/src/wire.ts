/**
 * The API's types as the dashboard sees them: the `Static<>` types of the contract's schemas
 * (type-only imports, so nothing of the contract is bundled into the page).
 */
import type * as contract from "@berth/core/contract";
import type { Static } from "@sinclair/typebox";

export type SandboxView = Static<typeof contract.Sandbox>;
export type SandboxPage = Static<ReturnType<typeof contract.PageOf<typeof contract.Sandbox>>>;
export type SandboxMetrics = Static<typeof contract.SandboxMetrics>;
export type FileList = Static<typeof contract.FileList>;
export type ProcessInfo = Static<typeof contract.ProcessInfo>;
export type PortInfo = Static<typeof contract.Port>;
export type ExposedPort = Static<typeof contract.ExposedPort>;
export type SessionView = Static<typeof contract.Session>;
export type UsageList = Static<typeof contract.UsageList>;
/** `{items: [...]}` of an unpaged listing. */
export type ListOf<T> = { items: T[] };
