import type { FastifyRequest } from "fastify";

/**
 * A request URL's path as the router matches it: without its query, percent-decoded and with
 * runs of slashes collapsed. Checks about "which part of the API is this" must use this form
 * (or the matched route), never the raw URL: `/%761/keys` and `//v1/keys` are `/v1/keys` to the
 * router. Undefined when the path cannot be decoded (the router refuses those itself).
 */
export function routedPath(url: string): string | undefined {
  const raw = url.split("?")[0] ?? "/";
  try {
    return decodeURIComponent(raw).replace(/\/{2,}/g, "/");
  } catch {
    return undefined;
  }
}

/**
 * Whether a request belongs to the v1 API (and so needs an API key): its matched route's
 * pattern is under `/v1/`, or, when no route matched (a 404), its decoded path is.
 */
export function isApiRequest(req: FastifyRequest): boolean {
  const route = req.routeOptions.url;
  if (route !== undefined && route !== "*" && route !== "/*" && route !== "/")
    return route.startsWith("/v1/");
  const path = routedPath(req.url);
  return path === undefined || path === "/v1" || path.startsWith("/v1/");
}
