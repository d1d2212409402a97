import { ForbiddenError, NotFoundError } from "@berth/core";
import { ListOf, TenantBudgetBody, TenantInfo, TenantParams } from "@berth/core/contract";
import { requireAdmin } from "../auth/authenticate.js";
import type { App, ServerContext } from "./context.js";

/** Tenants and their monthly model budgets: admins see and set every tenant's, a tenant sees its own. */
export function tenantRoutes(app: App, ctx: ServerContext): void {
  const info = async (id: string) => {
    const tenant = await ctx.store.getTenant(id);
    if (!tenant) throw new NotFoundError("tenant", id);
    const b = await ctx.tenantBudgets.status(id);
    return {
      id: tenant.id,
      createdAt: tenant.createdAt,
      monthlyBudgetUsd: b.monthlyBudgetUsd,
      month: b.month,
      spentUsd: b.spentUsd,
    };
  };
  app.get(
    "/v1/tenants",
    { schema: { tags: ["tenants"], response: { 200: ListOf(TenantInfo) } } },
    async (req) => {
      requireAdmin(req);
      const items = [];
      for (const t of await ctx.store.listTenants()) items.push(await info(t.id));
      return { items };
    },
  );
  app.get(
    "/v1/tenants/:tenantId",
    { schema: { tags: ["tenants"], params: TenantParams, response: { 200: TenantInfo } } },
    async (req) => {
      if (!req.caller.admin && req.caller.tenantId !== req.params.tenantId)
        throw new ForbiddenError("a tenant key sees only its own tenant");
      return info(req.params.tenantId);
    },
  );
  app.patch(
    "/v1/tenants/:tenantId",
    {
      schema: {
        tags: ["tenants"],
        params: TenantParams,
        body: TenantBudgetBody,
        response: { 200: TenantInfo },
      },
    },
    async (req) => {
      requireAdmin(req);
      if (!(await ctx.store.setTenantBudget(req.params.tenantId, req.body.monthlyBudgetUsd)))
        throw new NotFoundError("tenant", req.params.tenantId);
      return info(req.params.tenantId);
    },
  );
}
