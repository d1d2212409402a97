/** Seconds per unit of a duration: `500ms`, `30s`, `5m`, `2h`, `1d`. */
const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/**
 * A duration as seconds: a number with a unit (`30s`, `1.5h`, `2h30m`) or a bare number of
 * seconds (`90`, as before units were accepted). Returns undefined when the text is not one.
 */
export function parseDurationSeconds(text: string): number | undefined {
  const t = text.trim();
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  const parts = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== t) return undefined;
  return parts.reduce((sum, p) => sum + Number(p[1]) * (UNITS[p[2] as string] as number), 0);
}
