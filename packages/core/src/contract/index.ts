/**
 * The contract of the v1 API: every request and response schema (TypeBox), in one place. The
 * server validates with them and builds /openapi.json from them; core's views, the SDK's types
 * and the dashboard's types are their `Static<>` types. Imported as `@berth/core/contract`.
 */
export * from "./common.js";
export * from "./errors.js";
export * from "./exec.js";
export * from "./managed-agents.js";
export * from "./sandboxes.js";
export * from "./sessions.js";
export * from "./templates.js";
export * from "./tenants.js";
