import { createHash, timingSafeEqual } from "node:crypto";
import { ForbiddenError, SETTINGS, UnauthorizedError } from "@berth/core";
import type { FastifyRequest } from "fastify";
import type { Authenticator } from "./authenticate.js";

const digest = (s: string) => createHash("sha256").update(s).digest();

/**
 * Lets a request read `/metrics` only with a credential: the metrics token (`BERTH_METRICS_TOKEN`,
 * what a scraper is given) or an admin API key. The text names tenants and sandboxes, so
 * anonymous callers get 401 and tenants' keys 403.
 */
export async function requireMetricsReader(
  req: FastifyRequest,
  auth: Authenticator,
  metricsToken: string | undefined,
): Promise<void> {
  const header = req.headers.authorization;
  const presented = header?.startsWith("Bearer ") ? header.slice(7).trim() : "";
  if (!presented)
    throw new UnauthorizedError(
      `/metrics needs a Bearer credential: an admin API key or the metrics token (${SETTINGS.metricsToken.env})`,
    );
  // Compared as hashes: equal lengths for timingSafeEqual, nothing learned from the timing.
  if (metricsToken && timingSafeEqual(digest(presented), digest(metricsToken))) return;
  const caller = await auth.authenticate(req);
  if (!caller.admin) throw new ForbiddenError("/metrics needs an admin key or the metrics token");
}
