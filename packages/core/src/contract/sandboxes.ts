/** Sandboxes on the wire: create, patch, the Sandbox object, listings, snapshots, volumes, ports. */
import { type Static, Type as T } from "@sinclair/typebox";
import { Env, Labels, OneOf, SandboxPath, TEN_YEARS_S } from "./common.js";

/** Where a sandbox is in its life. */
export const SANDBOX_STATES = [
  "starting",
  "running",
  "paused",
  "hibernated",
  "stopped",
  "failed",
  "deleted",
] as const;
/** One of SANDBOX_STATES. */
export type SandboxState = (typeof SANDBOX_STATES)[number];

/** How a sandbox may reach the network. */
export const EGRESS_MODES = ["none", "allowlist", "open"] as const;
/** What happens to a sandbox nobody used for `idle.afterSeconds`. */
export const IDLE_ACTIONS = ["pause", "hibernate", "delete"] as const;

/** Limits asked for at create (each optional: the template's or server's default fills in). */
export const ResourcesRequest = T.Object(
  {
    cpus: T.Optional(T.Number({ minimum: 0.01, maximum: 1024 })),
    memoryMiB: T.Optional(T.Integer({ minimum: 16 })),
    diskMiB: T.Optional(T.Integer({ minimum: 16 })),
    pids: T.Optional(T.Integer({ minimum: 8 })),
  },
  { additionalProperties: false },
);

/** Kernel-enforced limits of one sandbox, as it runs. */
export const Resources = T.Object({
  cpus: T.Number(),
  memoryMiB: T.Integer(),
  diskMiB: T.Integer(),
  pids: T.Integer(),
});

/** Egress policy as a request gives it (each part optional). */
export const NetworkRequest = T.Object(
  {
    egress: T.Optional(OneOf(EGRESS_MODES)),
    allow: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 253 }), { maxItems: 256 })),
    /** `open` only: IPv4 addresses and CIDRs the sandbox may not reach (`allow` wins over it). */
    deny: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 18 }), { maxItems: 256 })),
  },
  { additionalProperties: false },
);

/** A sandbox's egress policy (`deny` absent: nothing denied beyond the forbidden set). */
export const NetworkPolicy = T.Object({
  egress: OneOf(EGRESS_MODES),
  allow: T.Array(T.String()),
  deny: T.Optional(T.Array(T.String())),
});

/** What to do with a sandbox left idle. */
export const IdlePolicy = T.Object(
  {
    afterSeconds: T.Integer({ minimum: 1, maximum: TEN_YEARS_S }),
    action: OneOf(IDLE_ACTIONS),
  },
  { additionalProperties: false },
);

/** A volume mounted into a sandbox. */
export const VolumeMount = T.Object(
  { name: T.String({ minLength: 1 }), mountPath: SandboxPath },
  { additionalProperties: false },
);

/** `POST /v1/sandboxes`; every field optional. */
export const CreateSandboxBody = T.Object(
  {
    template: T.Optional(T.String({ minLength: 1, maxLength: 64 })),
    resources: T.Optional(ResourcesRequest),
    env: T.Optional(Env),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
    idle: T.Optional(T.Union([IdlePolicy, T.Null()])),
    network: T.Optional(NetworkRequest),
    labels: T.Optional(Labels),
    fromSnapshot: T.Optional(T.String({ minLength: 1, maxLength: 128 })),
    volumes: T.Optional(T.Array(VolumeMount, { maxItems: 16 })),
    root: T.Optional(
      T.Boolean({
        description:
          "Root inside the sandbox, in a user namespace of its own (uid 0 there is an unprivileged host id). Commands and files still run as `user` unless they ask for root. A host that cannot answers 501 root_unavailable.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSandboxBody = Static<typeof CreateSandboxBody>;

/**
 * `POST /v1/sandboxes/:id/fork`: copies of a sandbox's files, env, resources and settings (not its
 * memory). Labels and the timeout may be set for the copies; the rest is the source's.
 */
export const ForkSandboxBody = T.Object(
  {
    count: T.Optional(
      T.Integer({ minimum: 1, maximum: 20, description: "How many copies (default 1, at most 20)" }),
    ),
    labels: T.Optional(Labels),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);
export type ForkSandboxBody = Static<typeof ForkSandboxBody>;

/** `PATCH /v1/sandboxes/:id`: what can change on a live sandbox. */
export const PatchSandboxBody = T.Object(
  {
    network: T.Optional(NetworkRequest),
    labels: T.Optional(Labels),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 0 })),
    idle: T.Optional(T.Union([IdlePolicy, T.Null()])),
  },
  { additionalProperties: false },
);
export type PatchSandboxBody = Static<typeof PatchSandboxBody>;

/** The Sandbox object of the API. */
export const Sandbox = T.Object({
  id: T.String(),
  state: OneOf(SANDBOX_STATES),
  template: T.String(),
  resources: Resources,
  network: NetworkPolicy,
  labels: T.Record(T.String(), T.String()),
  env: T.Record(T.String(), T.String()),
  idle: T.Union([IdlePolicy, T.Null()]),
  timeoutSeconds: T.Union([T.Integer(), T.Null()]),
  createdAt: T.String({ format: "date-time" }),
  expiresAt: T.Union([T.String({ format: "date-time" }), T.Null()]),
  lastActivityAt: T.String({ format: "date-time" }),
  failureReason: T.Optional(T.String()),
  volumes: T.Array(T.Object({ name: T.String(), mountPath: T.String() })),
});
export type Sandbox = Static<typeof Sandbox>;

const LabelFilter = T.String({ pattern: "^[^=]+=.*$" });

/** `GET /v1/sandboxes` filters and paging. */
export const ListSandboxesQuery = T.Object(
  {
    state: T.Optional(OneOf(SANDBOX_STATES)),
    label: T.Optional(T.Union([LabelFilter, T.Array(LabelFilter)])),
    limit: T.Optional(T.String({ pattern: "^[0-9]{1,4}$" })),
    cursor: T.Optional(T.String({ maxLength: 64 })),
  },
  { additionalProperties: false },
);

/** `POST /v1/sandboxes/:id/extend`. */
export const ExtendBody = T.Object(
  { seconds: T.Integer({ minimum: 1, maximum: TEN_YEARS_S }) },
  { additionalProperties: false },
);

/** A captured writable layer of a sandbox. */
export const Snapshot = T.Object({
  id: T.String(),
  sandboxId: T.String(),
  name: T.Union([T.String(), T.Null()]),
  template: T.String(),
  sizeBytes: T.Integer(),
  createdAt: T.String(),
});
export type Snapshot = Static<typeof Snapshot>;

/** `POST /v1/sandboxes/:id/snapshots`. */
export const CreateSnapshotBody = T.Object(
  { name: T.Optional(T.String({ minLength: 1, maxLength: 128 })) },
  { additionalProperties: false },
);
/** `:snapshotId` of the snapshot routes. */
export const SnapshotParams = T.Object({ snapshotId: T.String({ maxLength: 64 }) });

/** A named persistent directory of a tenant. */
export const Volume = T.Object({
  name: T.String(),
  sizeMiB: T.Integer(),
  usedBytes: T.Integer(),
  createdAt: T.String(),
});
export type Volume = Static<typeof Volume>;
/** `:name` of the volume routes. */
export const VolumeParams = T.Object({ name: T.String({ maxLength: 63 }) });

/** A sandbox port exposed through the server's proxy. */
export const Port = T.Object({
  port: T.Integer({ minimum: 1, maximum: 65535 }),
  url: T.String({ description: "Where the proxy serves the port" }),
  public: T.Boolean(),
  createdAt: T.String(),
});
export type Port = Static<typeof Port>;

/** The answer to exposing a port: its token, shown only then. */
export const ExposedPort = T.Composite([
  Port,
  T.Object({
    token: T.Union([T.String(), T.Null()], {
      description: "The port's token, shown only now (null for a public port)",
    }),
  }),
]);
export type ExposedPort = Static<typeof ExposedPort>;

/** `POST /v1/sandboxes/:id/ports`. */
export const ExposePortBody = T.Object(
  { port: T.Integer({ minimum: 1, maximum: 65535 }), public: T.Optional(T.Boolean({ default: false })) },
  { additionalProperties: false },
);
/** `:id/:port` of the port routes. */
export const PortParams = T.Object({
  id: T.String({ maxLength: 64 }),
  port: T.String({ pattern: "^[1-9][0-9]{0,4}$", description: "Port number, 1-65535" }),
});

/** `POST /v1/volumes`. */
export const CreateVolumeBody = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 63 }),
    sizeMiB: T.Optional(T.Integer({ minimum: 16 })),
  },
  { additionalProperties: false },
);

/** `GET /v1/sandboxes/:id/metrics`: live usage of a running sandbox and what it cost so far. */
export const SandboxMetrics = T.Object({
  cpuSeconds: T.Number(),
  memoryBytes: T.Integer(),
  memoryPeakBytes: T.Integer(),
  diskBytes: T.Integer(),
  pids: T.Integer(),
  netRxBytes: T.Integer(),
  netTxBytes: T.Integer(),
  uptimeSeconds: T.Number({ description: "Since it was created" }),
  runningSeconds: T.Number({ description: "Billed: time it ran (paused and hibernated time excluded)" }),
  costUsd: T.Number({ description: "runningSeconds at the reserved CPUs and memory" }),
});
export type SandboxMetrics = Static<typeof SandboxMetrics>;
