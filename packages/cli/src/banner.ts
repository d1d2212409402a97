/** What the start banner names: where the server listens and where its admin key is. */
export interface BannerFacts {
  version?: string;
  url: string;
  previewUrl: string;
  adminKeyPath: string;
  /** Whether the server has a model API key (agent sessions need one, or the demo model). */
  hasModelKey: boolean;
}

/**
 * The few lines `berth serve` prints once it listens: the API, the dashboard, the API
 * reference, where the admin key is, and the next command to try. Plain text, no log framing:
 * it is the first thing a newcomer reads.
 */
export function startBanner(f: BannerFacts): string {
  const rows: [string, string][] = [
    ["API", f.url],
    ["Dashboard", `${f.url}/`],
    ["API reference", `${f.url}/api-docs`],
    ["Exposed ports", f.previewUrl],
    ["Admin key", `${f.adminKeyPath} (the CLI and SDK read it from there)`],
  ];
  const next = f.hasModelKey
    ? "npx berth sandbox create    then    npx berth agent run 'list the files in /workspace'"
    : "npx berth sandbox create    or, without a model key,    npx berth agent run --demo 'hello'";
  return [
    `Berth${f.version ? ` ${f.version}` : ""} is ready.`,
    ...rows.map(([k, v]) => `  ${k.padEnd(14)} ${v}`),
    "",
    `  Try: ${next}`,
    "",
  ].join("\n");
}
