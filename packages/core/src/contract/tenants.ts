/** Keys, tenants, usage and the audit trail on the wire. */
import { type Static, Type as T } from "@sinclair/typebox";
import { OneOf } from "./common.js";

/** `POST /v1/keys` (admin). */
export const CreateKeyBody = T.Object(
  {
    tenant: T.String({
      pattern: "^[a-z0-9][a-z0-9_-]{0,62}$",
      description: "Tenant id; created on first use",
    }),
    admin: T.Optional(T.Boolean()),
  },
  { additionalProperties: false },
);
export type CreateKeyBody = Static<typeof CreateKeyBody>;

/** An API key; `key` is shown only when it is created. */
export const ApiKeyInfo = T.Object({
  id: T.String(),
  key: T.Optional(T.String({ description: "The secret; shown only when the key is created" })),
  tenant: T.String(),
  admin: T.Boolean(),
  createdAt: T.String(),
  revokedAt: T.Optional(T.Union([T.String(), T.Null()])),
});
export type ApiKeyInfo = Static<typeof ApiKeyInfo>;
/** `:keyId` of the key routes. */
export const KeyParams = T.Object({ keyId: T.String({ maxLength: 64 }) });

/** `PATCH /v1/tenants/:id`: the tenant's monthly model budget (null: no cap). */
export const TenantBudgetBody = T.Object(
  {
    monthlyBudgetUsd: T.Union([T.Number({ minimum: 0, maximum: 1e9 }), T.Null()], {
      description:
        "USD the tenant's sessions may spend on model tokens per calendar month (UTC); null removes the cap",
    }),
  },
  { additionalProperties: false },
);

/** A tenant, its monthly model budget and this month's spend. */
export const TenantInfo = T.Object({
  id: T.String(),
  createdAt: T.String(),
  monthlyBudgetUsd: T.Union([T.Number(), T.Null()]),
  month: T.String({ description: "The calendar month (UTC) `spentUsd` covers, YYYY-MM" }),
  spentUsd: T.Number({ description: "What the tenant's model requests cost this month" }),
});
export type TenantInfo = Static<typeof TenantInfo>;
/** `:tenantId` of the tenant routes. */
export const TenantParams = T.Object({ tenantId: T.String({ maxLength: 64 }) });

/** How `GET /v1/usage` groups its rows. */
export const USAGE_GROUPS = ["tenant", "session", "sandbox", "day"] as const;
/** `GET /v1/usage?from=&to=&groupBy=`. */
export const UsageQuery = T.Object({
  from: T.Optional(T.String({ maxLength: 64 })),
  to: T.Optional(T.String({ maxLength: 64 })),
  groupBy: T.Optional(OneOf(USAGE_GROUPS)),
});

/** One row of `GET /v1/usage`. */
export const UsageRow = T.Object({
  key: T.String({
    description:
      "Tenant id, session id, sandbox id or day (YYYY-MM-DD); by session, a sandbox id holds the sandbox's running time when none of its sessions was live",
  }),
  tokensUsd: T.Number(),
  computeUsd: T.Number(),
  totalUsd: T.Number(),
  inputTokens: T.Integer(),
  outputTokens: T.Integer(),
  sandboxSeconds: T.Number({
    description: "Running seconds billed (a shared sandbox's split by session)",
  }),
});
export type UsageRow = Static<typeof UsageRow>;
/** `GET /v1/usage`: one row per key of the grouping. */
export const UsageList = T.Object({ items: T.Array(UsageRow) });

/** One mutating API call as the audit trail shows it. */
export const AuditEntry = T.Object({
  at: T.String(),
  tenant: T.Union([T.String(), T.Null()]),
  keyId: T.Union([T.String(), T.Null()]),
  method: T.String(),
  path: T.String(),
  status: T.Integer(),
  requestId: T.String(),
});
export type AuditEntry = Static<typeof AuditEntry>;

/** `GET /v1/audit` filters and paging. */
export const AuditQuery = T.Object(
  {
    from: T.Optional(T.String({ maxLength: 40, description: "Inclusive start (ISO 8601)" })),
    to: T.Optional(T.String({ maxLength: 40, description: "Exclusive end (ISO 8601)" })),
    limit: T.Optional(T.String({ pattern: "^[0-9]{1,4}$", description: "Rows per page, 1-1000 (100)" })),
    cursor: T.Optional(T.String({ pattern: "^[0-9]{1,15}$", description: "nextCursor of the last page" })),
  },
  { additionalProperties: false },
);
