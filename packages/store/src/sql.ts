import { ConflictError } from "@berth/core";

/** A database row as the driver returns it. */
export type Row = Record<string, unknown>;

/** A value as JSON text (how structured fields are kept, the same on both databases). */
export const json = (v: unknown): string => JSON.stringify(v);
/** JSON text back as a value. */
export const parse = <T>(v: unknown): T => JSON.parse(String(v)) as T;
/** A nullable text column. */
export const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
/** A nullable number column (PostgreSQL returns BIGINT as text). */
export const int = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** A caller's page size kept within `[1, max]` (it is written into the SQL, never a parameter). */
export function clampLimit(limit: number, max: number): number {
  return Math.min(Math.max(Math.trunc(limit) || 1, 1), max);
}

/** Unique-key violations as 409s; everything else as is. */
export function conflictOnDuplicate(what: string) {
  return (err: unknown): never => {
    const code = String((err as { code?: unknown }).code ?? "");
    if (code === "23505" || code.startsWith("SQLITE_CONSTRAINT"))
      throw new ConflictError(`${what} already exists`);
    throw err;
  };
}

/**
 * `SET col = ?, ...` and its parameters for the fields of `patch` that have a column
 * (undefined fields are left alone; JSON columns take JSON text, or NULL for null).
 */
export function setClause<K extends string>(
  patch: Partial<Record<K, unknown>>,
  columns: Record<K, { name: string; json: boolean }>,
): { sets: string[]; params: unknown[] } {
  const sets: string[] = [];
  const params: unknown[] = [];
  for (const [key, value] of Object.entries(patch)) {
    const col = columns[key as K];
    if (value === undefined || !col) continue;
    sets.push(`${col.name} = ?`);
    params.push(col.json ? (value === null ? null : json(value)) : value);
  }
  return { sets, params };
}
