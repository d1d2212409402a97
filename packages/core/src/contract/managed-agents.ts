import { Type as T } from "@sinclair/typebox";
import { NetworkRequest, ResourcesRequest } from "./sandboxes.js";

/** The most work items one integration may run at once. */
export const MAX_CONCURRENT_LIMIT = 64;

/** Ids as the control plane writes them (`env_...`): letters, digits, `_` and `-`. */
const ID_PATTERN = "^[A-Za-z0-9_-]+$";

export const ManagedAgentSandboxSpec = T.Object(
  {
    template: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
    resources: T.Optional(ResourcesRequest),
    network: T.Optional(NetworkRequest),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
    keep: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);

export const CreateManagedAgentBody = T.Object(
  {
    environmentId: T.String({ minLength: 1, maxLength: 128, pattern: ID_PATTERN }),
    environmentKey: T.String({ minLength: 8, maxLength: 1024, pattern: "^[\\x21-\\x7e]+$" }),
    baseUrl: T.Optional(T.String({ minLength: 1, maxLength: 2048 })),
    maxConcurrent: T.Optional(T.Integer({ minimum: 1, maximum: MAX_CONCURRENT_LIMIT })),
    sandbox: T.Optional(ManagedAgentSandboxSpec),
    webhookSecret: T.Optional(T.String({ minLength: 8, maxLength: 1024, pattern: "^[\\x21-\\x7e]+$" })),
  },
  { additionalProperties: false },
);

export const ManagedAgentCounts = T.Object({
  claimed: T.Integer(),
  running: T.Integer(),
  completed: T.Integer(),
  failed: T.Integer(),
  stopped: T.Integer(),
});

export const ManagedAgentItem = T.Object({
  workId: T.String(),
  sessionId: T.String(),
  sandboxId: T.Union([T.String(), T.Null()]),
  state: T.String(),
  startedAt: T.String(),
  endedAt: T.Union([T.String(), T.Null()]),
  failure: T.Union([T.String(), T.Null()]),
});

export const ManagedAgentView = T.Object({
  id: T.String(),
  environmentId: T.String(),
  baseUrl: T.String(),
  mode: T.Union([T.Literal("poll"), T.Literal("webhook")]),
  maxConcurrent: T.Integer(),
  sandbox: ManagedAgentSandboxSpec,
  state: T.String(),
  failure: T.Union([T.String(), T.Null()]),
  counts: ManagedAgentCounts,
  createdAt: T.String(),
  updatedAt: T.String(),
  items: T.Optional(T.Array(ManagedAgentItem)),
});
