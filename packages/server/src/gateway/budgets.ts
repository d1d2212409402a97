import type { Store } from "@berth/core";

/**
 * Money that can be spent up to a limit, with holds: a request holds the most it can cost before
 * it is sent and settles on what it did cost. Holds are taken synchronously, so no number of
 * concurrent requests can hold more than what is left.
 */
export interface SpendAccount {
  /** USD still free: the limit less what is spent and held (Infinity: no limit). */
  available(): number;
  /** Holds `usd` (the caller checked `available()` in the same tick). */
  hold(usd: number): void;
  /** Releases a hold of `held` and records `spent` (at most `held`). */
  settle(held: number, spent: number): Promise<void>;
}

/** A session's budget (`agent.maxBudgetUsd`), kept in memory by the server that runs the session. */
export class SessionAccount implements SpendAccount {
  private held = 0;

  constructor(
    readonly limitUsd: number | null,
    public spentUsd: number,
  ) {}

  available(): number {
    return this.limitUsd === null ? Number.POSITIVE_INFINITY : this.limitUsd - this.spentUsd - this.held;
  }

  hold(usd: number): void {
    this.held += usd;
  }

  async settle(held: number, spent: number): Promise<void> {
    this.held -= held;
    this.spentUsd += spent;
  }
}

/** The calendar month (UTC) a spend belongs to, `YYYY-MM`. */
export function monthOf(at: Date): string {
  return at.toISOString().slice(0, 7);
}

/** What this server knows of a tenant's month: spent (the store's figure and its own writes since) and held. */
interface TenantMonth {
  month: string;
  spent: number;
  held: number;
}

/**
 * Tenants' monthly model budgets. What was spent is in the store (shared by replicas, added to
 * atomically); what is held is this server's requests in flight. Each server keeps the larger of
 * the store's figure and its own running total, and a settled request moves from held to spent in
 * one step, so no request is ever missed between the two. Replicas do not see each other's holds:
 * across N replicas a tenant can overshoot by at most the requests in flight on the others.
 */
export class TenantBudgets {
  private readonly months = new Map<string, TenantMonth>();

  constructor(
    private readonly store: Store,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * The tenant's account for this month, brought up to date from the store. A tenant with no cap
   * gets one too: its spend is recorded all the same, so a cap set mid-month counts the month so far.
   */
  async account(tenantId: string): Promise<SpendAccount> {
    const month = monthOf(this.now());
    const [tenant, stored] = await Promise.all([
      this.store.getTenant(tenantId),
      this.store.tenantSpend(tenantId, month),
    ]);
    const cap = tenant?.monthlyBudgetUsd ?? Number.POSITIVE_INFINITY;
    let m = this.months.get(tenantId);
    if (!m || m.month !== month) {
      m = { month, spent: 0, held: m?.month === month ? m.held : 0 };
      this.months.set(tenantId, m);
    }
    m.spent = Math.max(m.spent, stored);
    const state = m;
    return {
      available: () => cap - state.spent - state.held,
      hold: (usd) => {
        state.held += usd;
      },
      settle: async (held, spent) => {
        try {
          if (spent > 0) await this.store.addTenantSpend(tenantId, month, spent);
        } finally {
          state.spent += spent;
          state.held -= held;
        }
      },
    };
  }

  /** The tenant's cap and this month's spend (for refusing new sessions and for people). */
  async status(
    tenantId: string,
  ): Promise<{ monthlyBudgetUsd: number | null; spentUsd: number; month: string }> {
    const tenant = await this.store.getTenant(tenantId);
    const month = monthOf(this.now());
    return {
      monthlyBudgetUsd: tenant?.monthlyBudgetUsd ?? null,
      spentUsd: await this.store.tenantSpend(tenantId, month),
      month,
    };
  }
}
