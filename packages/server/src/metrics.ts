/** Server-wide counters and latency histograms, rendered in the Prometheus text format. */

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class Histogram {
  private readonly counts = BUCKETS.map(() => 0);
  private sum = 0;
  private count = 0;

  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < BUCKETS.length; i++)
      if (seconds <= (BUCKETS[i] as number)) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }

  render(name: string, help: string): string[] {
    const out = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    BUCKETS.forEach((b, i) => {
      out.push(`${name}_bucket{le="${b}"} ${this.counts[i]}`);
    });
    out.push(
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    );
    return out;
  }
}

import type { SessionUsage } from "@berth/core";

/** Per-sandbox numbers as `/metrics` shows them (from cgroups and the network namespace). */
export interface SandboxSample {
  id: string;
  tenantId: string;
  cpuSeconds: number;
  memoryBytes: number;
  diskBytes: number;
  netRxBytes: number;
  netTxBytes: number;
}

/** What a scrape adds to the server's own counters: read from the store and the runtime. */
export interface MetricsSnapshot {
  sandboxesByState: Record<string, number>;
  sessionsByState: Record<string, number>;
  /** Null when per-sandbox series are turned off (BERTH_METRICS_PER_SANDBOX=false). */
  sandboxes: SandboxSample[] | null;
}

/** Label values are quoted strings: backslash, quote and newline escaped. */
const label = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export class ServerMetrics {
  liveSandboxes = 0;
  creates = 0;
  deletes = 0;
  wakes = 0;
  /** Bytes the exposed-port proxy carried from clients to sandboxes (`in`) and back (`out`). */
  proxyBytesIn = 0;
  proxyBytesOut = 0;
  /** Parked agent starts ready in the warm pool. */
  agentWarmReady = 0;
  /** Agent sessions started on a parked process (`warm`) or a new one (`cold`). */
  readonly agentStarts = { warm: 0, cold: 0 };
  private readonly createSeconds = new Histogram();
  private readonly execSeconds = new Histogram();
  private readonly wakeSeconds = new Histogram();
  private readonly gatewaySeconds = new Histogram();
  /** Model answers priced at the default price (their model is not in the table). */
  unpricedAnswers = 0;
  private readonly modelCalls = new Map<number, number>();
  private readonly tokens = { input: 0, output: 0, cache_read: 0, cache_creation: 0 };
  private modelCostUsd = 0;

  /** A model request relayed by the gateway: its time, status, and the tokens and cost it carried. */
  observeModelCall(seconds: number, status: number, usage: SessionUsage | null, costUsd: number): void {
    this.gatewaySeconds.observe(seconds);
    this.modelCalls.set(status, (this.modelCalls.get(status) ?? 0) + 1);
    if (usage) {
      this.tokens.input += usage.inputTokens;
      this.tokens.output += usage.outputTokens;
      this.tokens.cache_read += usage.cacheReadTokens;
      this.tokens.cache_creation += usage.cacheCreationTokens;
    }
    this.modelCostUsd += costUsd;
  }

  observeWake(seconds: number): void {
    this.wakes++;
    this.wakeSeconds.observe(seconds);
  }

  observeCreate(seconds: number): void {
    this.creates++;
    this.createSeconds.observe(seconds);
  }

  observeExec(seconds: number): void {
    this.execSeconds.observe(seconds);
  }

  /** The exposition text. */
  render(now?: MetricsSnapshot): string {
    const lines = [
      "# HELP berth_sandboxes_live Sandboxes starting or running on this server",
      "# TYPE berth_sandboxes_live gauge",
      `berth_sandboxes_live ${this.liveSandboxes}`,
      "# HELP berth_sandbox_creates_total Sandboxes created",
      "# TYPE berth_sandbox_creates_total counter",
      `berth_sandbox_creates_total ${this.creates}`,
      "# HELP berth_sandbox_deletes_total Sandboxes deleted",
      "# TYPE berth_sandbox_deletes_total counter",
      `berth_sandbox_deletes_total ${this.deletes}`,
      "# HELP berth_sandbox_wakes_total Hibernated sandboxes woken",
      "# TYPE berth_sandbox_wakes_total counter",
      `berth_sandbox_wakes_total ${this.wakes}`,
      ...this.createSeconds.render("berth_sandbox_create_seconds", "Time from request to a running sandbox"),
      ...this.execSeconds.render("berth_exec_seconds", "Duration of exec calls"),
      ...this.wakeSeconds.render("berth_sandbox_wake_seconds", "Time to wake a hibernated sandbox"),
      "# HELP berth_proxy_bytes_total Bytes carried by the exposed-port proxy",
      "# TYPE berth_proxy_bytes_total counter",
      `berth_proxy_bytes_total{direction="in"} ${this.proxyBytesIn}`,
      `berth_proxy_bytes_total{direction="out"} ${this.proxyBytesOut}`,
      ...this.gatewaySeconds.render(
        "berth_gateway_request_seconds",
        "Model requests through the gateway, to the end of the answer",
      ),
      "# HELP berth_gateway_requests_total Model requests relayed by the gateway, by upstream status",
      "# TYPE berth_gateway_requests_total counter",
      ...[...this.modelCalls].map(([status, n]) => `berth_gateway_requests_total{status="${status}"} ${n}`),
      "# HELP berth_gateway_unpriced_total Model answers priced at the default price (BERTH_MODEL_PRICE_DEFAULT): their model is not in the price table",
      "# TYPE berth_gateway_unpriced_total counter",
      `berth_gateway_unpriced_total ${this.unpricedAnswers}`,
      "# HELP berth_agent_warm_pool_ready Parked agent starts ready for new sessions",
      "# TYPE berth_agent_warm_pool_ready gauge",
      `berth_agent_warm_pool_ready ${this.agentWarmReady}`,
      "# HELP berth_agent_starts_total Agent sessions started, on a parked process (warm) or a new one (cold)",
      "# TYPE berth_agent_starts_total counter",
      ...Object.entries(this.agentStarts).map(([kind, n]) => `berth_agent_starts_total{kind="${kind}"} ${n}`),
      "# HELP berth_model_tokens_total Tokens the model used for agent sessions, by kind",
      "# TYPE berth_model_tokens_total counter",
      ...Object.entries(this.tokens).map(([kind, n]) => `berth_model_tokens_total{kind="${kind}"} ${n}`),
      "# HELP berth_model_cost_usd_total What those tokens cost, by the price table",
      "# TYPE berth_model_cost_usd_total counter",
      `berth_model_cost_usd_total ${this.modelCostUsd}`,
    ];
    if (now) lines.push(...renderSnapshot(now));
    return `${lines.join("\n")}\n`;
  }
}

function renderSnapshot(now: MetricsSnapshot): string[] {
  const lines = ["# HELP berth_sandboxes Sandboxes in the store by state", "# TYPE berth_sandboxes gauge"];
  for (const [state, n] of Object.entries(now.sandboxesByState))
    lines.push(`berth_sandboxes{state="${label(state)}"} ${n}`);
  lines.push("# HELP berth_sessions Agent sessions in the store by state", "# TYPE berth_sessions gauge");
  for (const [state, n] of Object.entries(now.sessionsByState))
    lines.push(`berth_sessions{state="${label(state)}"} ${n}`);
  if (!now.sandboxes) return lines;
  const series: Array<[string, string, "counter" | "gauge", (s: SandboxSample) => number]> = [
    [
      "berth_sandbox_cpu_seconds_total",
      "CPU time used by the sandbox's processes",
      "counter",
      (s) => s.cpuSeconds,
    ],
    ["berth_sandbox_memory_bytes", "Memory in use (cgroup)", "gauge", (s) => s.memoryBytes],
    ["berth_sandbox_disk_bytes", "Bytes written to the sandbox's disk", "gauge", (s) => s.diskBytes],
    [
      "berth_sandbox_network_receive_bytes_total",
      "Bytes received on the sandbox's network",
      "counter",
      (s) => s.netRxBytes,
    ],
    [
      "berth_sandbox_network_transmit_bytes_total",
      "Bytes sent from the sandbox's network",
      "counter",
      (s) => s.netTxBytes,
    ],
  ];
  for (const [name, help, type, value] of series) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of now.sandboxes)
      lines.push(`${name}{sandbox="${label(s.id)}",tenant="${label(s.tenantId)}"} ${value(s)}`);
  }
  return lines;
}
