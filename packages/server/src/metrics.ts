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

export class ServerMetrics {
  liveSandboxes = 0;
  creates = 0;
  deletes = 0;
  wakes = 0;
  private readonly createSeconds = new Histogram();
  private readonly execSeconds = new Histogram();

  observeCreate(seconds: number): void {
    this.creates++;
    this.createSeconds.observe(seconds);
  }

  observeExec(seconds: number): void {
    this.execSeconds.observe(seconds);
  }

  /** The exposition text. */
  render(): string {
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
    ];
    return `${lines.join("\n")}\n`;
  }
}
