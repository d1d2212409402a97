import { AsyncLocalStorage } from "node:async_hooks";
import type { Sql } from "./db.js";

/** One open transaction (or savepoint) and the database it belongs to. */
export interface OpenTx {
  readonly db: object;
  open: boolean;
}

const current = new AsyncLocalStorage<OpenTx>();
let savepoints = 0;

/**
 * Runs `fn` as the body of a transaction on `db`, handing it `tx`. While it runs, a statement
 * sent to `db` itself from inside `fn` is a bug (on SQLite it would wait for the transaction it is
 * part of, forever): `refuseInsideTx` turns it into an error. Once `fn` settles, `tx` refuses work.
 */
export async function runTxBody<T>(db: object, tx: (scope: OpenTx) => Sql, fn: (tx: Sql) => Promise<T>) {
  const scope: OpenTx = { db, open: true };
  try {
    return await current.run(scope, () => fn(tx(scope)));
  } finally {
    scope.open = false;
  }
}

/** Throws when called on `db` from inside one of its own open transactions. */
export function refuseInsideTx(db: object): void {
  const scope = current.getStore();
  if (scope?.db === db && scope.open)
    throw new Error(
      "a statement on the store inside its own transaction: use the transaction's handle (tx) instead",
    );
}

/** Throws when a transaction's handle is used after its transaction ended. */
export function refuseEnded(scope: OpenTx): void {
  if (!scope.open) throw new Error("a transaction's handle was used after the transaction ended");
}

/** A fresh savepoint name (nested transactions). */
export function savepointName(): string {
  return `berth_sp_${++savepoints}`;
}
