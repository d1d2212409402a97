/**
 * Every server setting in one table: its env var, default and check. Loaded from `BERTH_*`
 * env vars over an optional JSON file (`BERTH_CONFIG`), validated once at start with a message
 * that names the bad setting.
 */

type Kind = "int" | "number" | "string" | "bool";

interface Setting {
  env: string;
  kind: Kind;
  default: string | number | boolean | undefined;
  min?: number;
  max?: number;
  oneOf?: readonly string[];
  secret?: boolean;
  doc: string;
}

export const SETTINGS = {
  port: { env: "BERTH_PORT", kind: "int", default: 7070, min: 0, max: 65535, doc: "HTTP port" },
  host: { env: "BERTH_HOST", kind: "string", default: "127.0.0.1", doc: "Address to listen on" },
  dataDir: {
    env: "BERTH_DATA_DIR",
    kind: "string",
    default: "./.berth",
    doc: "Where the store, sandbox disks and the admin key live",
  },
  databaseUrl: {
    env: "BERTH_DATABASE_URL",
    kind: "string",
    default: undefined,
    secret: true,
    doc: "Unset: SQLite in the data dir; `postgres://...` for PostgreSQL",
  },
  runtime: {
    env: "BERTH_RUNTIME",
    kind: "string",
    default: "auto",
    oneOf: ["auto", "runc", "crun", "docker", "kubernetes"],
    doc: "Runtime driver: the local one with an OCI runtime binary (`auto` takes crun where it works, else runc), `docker` (a Docker Engine on this host) or `kubernetes` (Pods in a cluster: in-cluster credentials, else `KUBECONFIG` or ~/.kube/config)",
  },
  dockerSocket: {
    env: "BERTH_DOCKER_SOCKET",
    kind: "string",
    default: "/var/run/docker.sock",
    doc: "The Docker Engine's unix socket (BERTH_RUNTIME=docker)",
  },
  k8sNamespace: {
    env: "BERTH_K8S_NAMESPACE",
    kind: "string",
    default: "berth-sandboxes",
    doc: "Namespace of sandbox Pods, their claims and NetworkPolicies (BERTH_RUNTIME=kubernetes)",
  },
  k8sImages: {
    env: "BERTH_K8S_IMAGES",
    kind: "string",
    default: "default=debian:12-slim",
    doc: "Templates on Kubernetes: `name=image` pairs, comma-separated (`default` required)",
  },
  k8sInitImage: {
    env: "BERTH_K8S_INIT_IMAGE",
    kind: "string",
    default: "berth:0.1.0",
    doc: "Image holding the static berth-init at /opt/berth/berth-init (the Berth image); each sandbox Pod copies it in",
  },
  k8sRuntimeClass: {
    env: "BERTH_K8S_RUNTIME_CLASS",
    kind: "string",
    default: undefined,
    doc: "runtimeClassName of sandbox Pods (e.g. gVisor's `gvisor` or Kata's `kata`)",
  },
  k8sStorageClass: {
    env: "BERTH_K8S_STORAGE_CLASS",
    kind: "string",
    default: undefined,
    doc: "storageClassName of sandboxes' /workspace claims and volumes (unset: the cluster's default)",
  },
  k8sWarmPods: {
    env: "BERTH_K8S_WARM_PODS",
    kind: "int",
    default: 0,
    min: 0,
    max: 256,
    doc: "Sandbox Pods of the default shape started ahead; a create with default template and resources takes one",
  },
  k8sGatewayAddress: {
    env: "BERTH_K8S_GATEWAY_ADDRESS",
    kind: "string",
    default: undefined,
    doc: "IPv4 address at which sandbox Pods reach this server's model gateway (in a cluster: the server Pod's IP); unset: no agent sessions on Kubernetes",
  },
  k8sPodCidrs: {
    env: "BERTH_K8S_POD_CIDRS",
    kind: "string",
    default: "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10",
    doc: "Comma-separated ranges sandbox Pods' addresses come from (the model gateway admits only these and loopback)",
  },
  k8sEgressProxyPort: {
    env: "BERTH_K8S_EGRESS_PROXY_PORT",
    kind: "int",
    default: 7072,
    min: 0,
    max: 65535,
    doc: "Port of the egress proxy that filters sandbox Pods' web traffic by hostname (at BERTH_K8S_GATEWAY_ADDRESS; 0: off, hostname allowlists answer 501)",
  },
  k8sClaudePath: {
    env: "BERTH_K8S_CLAUDE_PATH",
    kind: "string",
    default: "/.berth/claude",
    doc: "Where `claude` is inside sandbox Pods; the default is copied in from BERTH_K8S_INIT_IMAGE (/opt/berth/claude), any other path must be in the template images",
  },
  logLevel: {
    env: "BERTH_LOG_LEVEL",
    kind: "string",
    default: "info",
    oneOf: ["debug", "info", "warn", "error", "silent"],
    doc: "Log level",
  },
  logFormat: {
    env: "BERTH_LOG_FORMAT",
    kind: "string",
    default: "auto",
    oneOf: ["auto", "pretty", "json"],
    doc: "Log lines on stderr: `pretty` (one readable line each), `json` (pino's JSON lines, for collectors) or `auto` (pretty on a terminal, JSON otherwise)",
  },
  defaultCpus: {
    env: "BERTH_DEFAULT_CPUS",
    kind: "number",
    default: 1,
    min: 0.01,
    doc: "CPUs of a new sandbox",
  },
  maxCpus: {
    env: "BERTH_MAX_CPUS",
    kind: "number",
    default: 8,
    min: 0.01,
    doc: "Largest `cpus` a request may ask for",
  },
  defaultMemoryMiB: {
    env: "BERTH_DEFAULT_MEMORY_MIB",
    kind: "int",
    default: 1024,
    min: 16,
    doc: "Memory of a new sandbox",
  },
  maxMemoryMiB: {
    env: "BERTH_MAX_MEMORY_MIB",
    kind: "int",
    default: 16384,
    min: 16,
    doc: "Largest `memoryMiB`",
  },
  defaultPids: {
    env: "BERTH_DEFAULT_PIDS",
    kind: "int",
    default: 512,
    min: 8,
    doc: "Process limit of a new sandbox",
  },
  maxPids: { env: "BERTH_MAX_PIDS", kind: "int", default: 8192, min: 8, doc: "Largest `pids`" },
  defaultDiskMiB: {
    env: "BERTH_DEFAULT_DISK_MIB",
    kind: "int",
    default: 5120,
    min: 16,
    doc: "Writable disk of a new sandbox",
  },
  maxDiskMiB: { env: "BERTH_MAX_DISK_MIB", kind: "int", default: 102400, min: 16, doc: "Largest `diskMiB`" },
  defaultTimeoutSeconds: {
    env: "BERTH_DEFAULT_TIMEOUT_SECONDS",
    kind: "int",
    default: 0,
    min: 0,
    doc: "Lifetime of a sandbox when the request gives none (0: no limit)",
  },
  maxTimeoutSeconds: {
    env: "BERTH_MAX_TIMEOUT_SECONDS",
    kind: "int",
    default: 7 * 24 * 3600,
    min: 1,
    doc: "Longest `timeoutSeconds` a request may ask for",
  },
  maxSandboxes: {
    env: "BERTH_MAX_SANDBOXES",
    kind: "int",
    default: 1000,
    min: 1,
    doc: "Live sandboxes per server",
  },
  execOutputLimitBytes: {
    env: "BERTH_EXEC_OUTPUT_LIMIT_BYTES",
    kind: "int",
    default: 1024 * 1024,
    min: 1024,
    doc: "Per stream; longer exec output is cut and marked `truncated`",
  },
  maxUploadBytes: {
    env: "BERTH_MAX_UPLOAD_BYTES",
    kind: "int",
    default: 1024 * 1024 * 1024,
    min: 1024,
    doc: "Largest file or archive upload",
  },
  diskPoolSize: {
    env: "BERTH_DISK_POOL_SIZE",
    kind: "int",
    default: 2,
    min: 0,
    max: 64,
    doc: "Formatted sandbox disks kept ready so create need not wait for mkfs",
  },
  diskCopyOnWrite: {
    env: "BERTH_DISK_COPY_ON_WRITE",
    kind: "bool",
    default: true,
    doc: "Keep sandbox disks where they can be copied by reflink (a fork in milliseconds): on the data dir itself if it is btrfs or xfs, else on a sparse btrfs image in it; false: forks copy disks in full",
  },
  rootIdBase: {
    env: "BERTH_ROOT_ID_BASE",
    kind: "int",
    default: 2_000_000_000,
    min: 65_536,
    max: 4_294_901_759,
    doc: "First host uid/gid of root sandboxes (`root: true`): uid 0..65535 inside them are this id and the 65535 after it on the host. Keep it clear of the host's users and /etc/subuid ranges",
  },
  e2bRoot: {
    env: "BERTH_E2B_ROOT",
    kind: "bool",
    default: true,
    doc: "Sandboxes made through the E2B API are root sandboxes where the host can make them (E2B code runs commands as `root`); `false`: they have only `user`",
  },
  sandboxNetworks: {
    env: "BERTH_SANDBOX_NETWORKS",
    kind: "bool",
    default: true,
    doc: "Give sandboxes a network (veth, DNS, egress rules); false: loopback only, egress `none`",
  },
  networkCidr: {
    env: "BERTH_NETWORK_CIDR",
    kind: "string",
    default: undefined,
    doc: "Private IPv4 range sandbox networks get their addresses from (a /30 each); checked at start against the host's addresses, routes and other Berth servers. Unset: a free /16 (10.231.0.0/16 first) is picked and remembered in the data dir",
  },
  egressMinPrefix: {
    env: "BERTH_EGRESS_MIN_PREFIX",
    kind: "int",
    default: 8,
    min: 0,
    max: 32,
    doc: "Widest CIDR a tenant's key may list in `network.allow` (`/8`: a `/7` or `/0` is refused); ranges that reach private, loopback, link-local or reserved addresses only with an admin key",
  },
  hiddenHostPaths: {
    env: "BERTH_HIDDEN_HOST_PATHS",
    kind: "string",
    default: undefined,
    doc: "Comma-separated absolute paths hidden in sandboxes that see the host's `/usr` (the default template and templates built on it): an empty read-only directory, or an empty file. `/usr/local/etc` is always hidden",
  },
  dnsUpstream: {
    env: "BERTH_DNS_UPSTREAM",
    kind: "string",
    default: undefined,
    doc: "Resolver the sandboxes' DNS goes to (`ip[:port]`); unset: the host's first nameserver",
  },
  advertiseUrl: {
    env: "BERTH_ADVERTISE_URL",
    kind: "string",
    default: undefined,
    doc: "How other replicas sharing the database reach this server (`http://10.0.0.5:7070`); unset: `http://<BERTH_HOST>:<port>`",
  },
  previewDomain: {
    env: "BERTH_PREVIEW_DOMAIN",
    kind: "string",
    default: undefined,
    doc: "Domain whose subdomains `<port>-<sandboxId>.<domain>` serve exposed ports, each its own origin; unset: path-based URLs on the preview listener",
  },
  previewPort: {
    env: "BERTH_PREVIEW_PORT",
    kind: "int",
    default: 0,
    min: 0,
    max: 65535,
    doc: "Port of the preview listener (on BERTH_HOST) that serves exposed ports as `/p/<sandboxId>/<port>/`, an origin apart from the API and dashboard (0: a free port chosen at start; the ports' `url` says which)",
  },
  bodyTimeoutMs: {
    env: "BERTH_BODY_TIMEOUT_MS",
    kind: "int",
    default: 10_000,
    min: 100,
    doc: "A JSON request body must arrive whole within this many ms, and a streamed upload may not pause longer than this between bytes; else 408 `request_timeout`",
  },
  metricsToken: {
    env: "BERTH_METRICS_TOKEN",
    kind: "string",
    default: undefined,
    secret: true,
    doc: "Bearer token that may read `/metrics` (for a Prometheus scraper) besides admin API keys; unset: admin keys only",
  },
  metricsPerSandbox: {
    env: "BERTH_METRICS_PER_SANDBOX",
    kind: "bool",
    default: true,
    doc: "Per-sandbox CPU, memory, disk and network series in `/metrics` (labelled by sandbox id); turn off at scale",
  },
  cpuHourUsd: {
    env: "BERTH_CPU_HOUR_USD",
    kind: "number",
    default: 0.05,
    min: 0,
    doc: "Price of one reserved CPU for an hour of running (never paused or hibernated): sandbox metrics' `costUsd` and sessions' compute",
  },
  memoryGiBHourUsd: {
    env: "BERTH_MEMORY_GIB_HOUR_USD",
    kind: "number",
    default: 0.005,
    min: 0,
    doc: "Price of one reserved GiB of memory for an hour of running",
  },
  reaperIntervalMs: {
    env: "BERTH_REAPER_INTERVAL_MS",
    kind: "int",
    default: 1000,
    min: 50,
    doc: "How often timeouts and dead sandboxes are checked",
  },
  idleCpuPercent: {
    env: "BERTH_IDLE_CPU_PERCENT",
    kind: "number",
    default: 5,
    min: 0,
    doc: "CPU use (percent of one core, between two reaper ticks) above which a sandbox counts as busy for its idle policy",
  },
  anthropicApiKey: {
    env: "BERTH_ANTHROPIC_API_KEY",
    kind: "string",
    default: undefined,
    secret: true,
    doc: "The real model API key the gateway puts on agents' requests (sandboxes never see it)",
  },
  anthropicBaseUrl: {
    env: "BERTH_ANTHROPIC_BASE_URL",
    kind: "string",
    default: "https://api.anthropic.com",
    doc: "Where the model gateway forwards agents' requests",
  },
  gatewayPort: {
    env: "BERTH_GATEWAY_PORT",
    kind: "int",
    default: 0,
    min: 0,
    max: 65535,
    doc: "Port of the model gateway on the sandboxes' host addresses (0: any free port)",
  },
  modelPrices: {
    env: "BERTH_MODEL_PRICES",
    kind: "string",
    default: undefined,
    doc: 'JSON per-model prices in USD per million tokens, e.g. `{"claude-x":{"input":3,"output":15}}` (merged over the built-in table)',
  },
  modelPriceDefault: {
    env: "BERTH_MODEL_PRICE_DEFAULT",
    kind: "string",
    default: undefined,
    doc: 'JSON price for models neither table knows, e.g. `{"input":15,"output":75}` (default: the Agent SDK\'s, `{"input":4,"output":20,"cacheRead":0.2}`); such answers are logged and counted in `berth_gateway_unpriced_total`',
  },
  agentMaxTurnsDefault: {
    env: "BERTH_AGENT_MAX_TURNS_DEFAULT",
    kind: "int",
    default: 50,
    min: 1,
    doc: "Turn limit of a session that gives no `maxTurns`",
  },
  agentMaxTurns: {
    env: "BERTH_AGENT_MAX_TURNS",
    kind: "int",
    default: 500,
    min: 1,
    doc: "Highest `maxTurns` a session may ask for",
  },
  agentIdleSeconds: {
    env: "BERTH_AGENT_IDLE_SECONDS",
    kind: "int",
    default: 300,
    min: 1,
    doc: "Hybrid sessions: seconds without a message before the sandbox hibernates",
  },
  agentPermissionTimeoutSeconds: {
    env: "BERTH_AGENT_PERMISSION_TIMEOUT_SECONDS",
    kind: "int",
    default: 300,
    min: 1,
    doc: "Seconds a tool call waits for the client's answer to its permission request before it is denied",
  },
  sessionOutputsSeconds: {
    env: "BERTH_SESSION_OUTPUTS_SECONDS",
    kind: "int",
    default: 86_400,
    min: 0,
    doc: "Seconds an ended session's workspace tar and transcript are kept (for GET /v1/sessions/:id/workspace, resumeFrom and fork)",
  },
  sessionOutputsMaxMib: {
    env: "BERTH_SESSION_OUTPUTS_MAX_MIB",
    kind: "int",
    default: 256,
    min: 1,
    doc: "Largest workspace tar (MiB) kept of an ended session; a larger one is not kept",
  },
  webhookAllowCidrs: {
    env: "BERTH_WEBHOOK_ALLOW_CIDRS",
    kind: "string",
    default: undefined,
    doc: "Comma-separated IPv4 ranges a session webhook may reach although they are loopback, private, link-local or reserved (e.g. `10.1.2.0/24` for an in-house receiver); empty: public addresses only",
  },
  webhookAttempts: {
    env: "BERTH_WEBHOOK_ATTEMPTS",
    kind: "int",
    default: 6,
    min: 1,
    max: 10,
    doc: "Tries of one session webhook delivery (the first and the retries after a failure or non-2xx answer, waiting 1, 2, 4... s, at most 60 s)",
  },
  agentWarmPool: {
    env: "BERTH_AGENT_WARM_POOL",
    kind: "int",
    default: 0,
    min: 0,
    max: 32,
    doc: "Session starts kept ready: each a running sandbox with a parked `claude` process (about 250 MB each) that a new session with default options takes at once",
  },
  secretKey: {
    env: "BERTH_SECRET_KEY",
    kind: "string",
    default: undefined,
    secret: true,
    doc: "The server secret that encrypts stored credentials (Managed Agents environment keys) at rest: any string of 32+ characters; unset: a random one in `<data dir>/secret.key`. Servers sharing a PostgreSQL store need the same one",
  },
  agentDir: {
    env: "BERTH_AGENT_DIR",
    kind: "string",
    default: "/usr/local/lib/berth-agent",
    doc: "Where the `claude` binary is installed for sandboxes (under /usr, which sandboxes see read-only)",
  },
} as const satisfies Record<string, Setting>;

type Settings = typeof SETTINGS;
type ValueOf<S extends Setting> = S["kind"] extends "int" | "number"
  ? number
  : S["kind"] extends "bool"
    ? boolean
    : S["default"] extends undefined
      ? string | undefined
      : string;

/** The validated server configuration. */
export type Config = { -readonly [K in keyof Settings]: ValueOf<Settings[K]> };

/** A setting that failed validation; the message names the env var. */
export class ConfigError extends Error {}

function parseOne(key: string, s: Setting, raw: unknown): unknown {
  if (raw === undefined || raw === "") return s.default;
  const text = String(raw);
  if (s.kind === "int" || s.kind === "number") {
    const n = Number(text);
    if (!Number.isFinite(n) || (s.kind === "int" && !Number.isInteger(n)))
      throw new ConfigError(
        `${s.env} (${key}) must be ${s.kind === "int" ? "an integer" : "a number"}, got '${text}'`,
      );
    if (s.min !== undefined && n < s.min)
      throw new ConfigError(`${s.env} (${key}) must be >= ${s.min}, got ${n}`);
    if (s.max !== undefined && n > s.max)
      throw new ConfigError(`${s.env} (${key}) must be <= ${s.max}, got ${n}`);
    return n;
  }
  if (s.kind === "bool") {
    if (["1", "true", "yes"].includes(text)) return true;
    if (["0", "false", "no"].includes(text)) return false;
    throw new ConfigError(`${s.env} (${key}) must be true or false, got '${text}'`);
  }
  if (s.oneOf && !s.oneOf.includes(text))
    throw new ConfigError(`${s.env} (${key}) must be one of ${s.oneOf.join(", ")}, got '${text}'`);
  return text;
}

/**
 * Builds the config from env vars, then a file's values (`file`, keyed by setting name), then
 * defaults. Throws ConfigError naming the first bad setting.
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  file: Record<string, unknown> = {},
): Config {
  for (const key of Object.keys(file))
    if (!(key in SETTINGS)) throw new ConfigError(`unknown setting '${key}' in the config file`);
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting][])
    out[key] = parseOne(key, s, env[s.env] ?? file[key]);
  const c = out as Config;
  for (const [d, m] of [
    ["defaultCpus", "maxCpus"],
    ["defaultMemoryMiB", "maxMemoryMiB"],
    ["defaultPids", "maxPids"],
    ["defaultDiskMiB", "maxDiskMiB"],
  ] as const)
    if (c[d] > c[m])
      throw new ConfigError(`${SETTINGS[d].env} (${c[d]}) is above ${SETTINGS[m].env} (${c[m]})`);
  for (const path of hiddenPathsOf(c))
    if (!/^\/[^\0]*$/.test(path) || path === "/" || path.split("/").some((p) => p === "." || p === ".."))
      throw new ConfigError(
        `${SETTINGS.hiddenHostPaths.env} (hiddenHostPaths): '${path}' must be an absolute path below / without . or ..`,
      );
  return c;
}

/** Paths hidden in sandboxes that see the host's /usr: `/usr/local/etc` and BERTH_HIDDEN_HOST_PATHS. */
export function hiddenPathsOf(c: Pick<Config, "hiddenHostPaths">): string[] {
  const listed = (c.hiddenHostPaths ?? "")
    .split(",")
    .map((p) => p.trim().replace(/(.)\/+$/, "$1"))
    .filter(Boolean);
  return [...new Set(["/usr/local/etc", ...listed])];
}

/** The config as text for a debug log, secrets masked. */
export function describeConfig(c: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(SETTINGS) as [string, Setting][]) {
    const v = (c as Record<string, unknown>)[key];
    out[key] =
      s.secret && v ? (String(v).includes("//") ? String(v).replace(/\/\/[^@]*@/, "//***@") : "***") : v;
  }
  return out;
}
