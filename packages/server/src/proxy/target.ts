import type { IncomingMessage } from "node:http";

/** The path prefix of path-based proxy URLs: `/p/<sandboxId>/<port>/...`. */
export const PROXY_PREFIX = "/p/";

/** Where a proxied request goes, and what of its URL belongs to Berth. */
export interface ProxyTarget {
  sandboxId: string;
  port: number;
  /** Path and query to send to the sandbox (the `/p/<id>/<port>` prefix stripped). */
  path: string;
  /** The stripped prefix (`""` for host-based URLs), sent as X-Forwarded-Prefix. */
  prefix: string;
  /** The cookie path that scopes the port's token cookie to this port only. */
  cookiePath: string;
  /** `/p/<id>/<port>` without its slash: redirected so relative links resolve inside the port. */
  addSlash: boolean;
}

const PATH_FORM = /^\/p\/(sb[a-z0-9]{16})\/(\d{1,5})(\/[^?#]*)?(\?[^#]*)?$/;
const HOST_LABEL = /^(\d{1,5})-(sb[a-z0-9]{16})$/;

const validPort = (text: string) => {
  const n = Number(text);
  return n >= 1 && n <= 65535 && String(n) === text ? n : undefined;
};

/**
 * The proxy target of a request, or undefined when it is not for an exposed port: host-based
 * `<port>-<sandboxId>.<previewDomain>` when a preview domain is configured, and path-based
 * `/p/<sandboxId>/<port>/<rest>` where `paths` allows it (on the preview listener only: a path
 * preview on the API's origin would share it with the dashboard).
 */
export function proxyTargetOf(
  req: IncomingMessage,
  previewDomain: string | undefined,
  paths: boolean,
): ProxyTarget | undefined {
  const url = req.url ?? "/";
  if (previewDomain) {
    const host = hostOf(req);
    if (host.endsWith(`.${previewDomain}`)) {
      const m = HOST_LABEL.exec(host.slice(0, -previewDomain.length - 1));
      const port = m && validPort(m[1] as string);
      if (m && port)
        return {
          sandboxId: m[2] as string,
          port,
          path: url.startsWith("/") ? url : `/${url}`,
          prefix: "",
          cookiePath: "/",
          addSlash: false,
        };
    }
  }
  if (!paths || !url.startsWith(PROXY_PREFIX)) return undefined;
  const m = PATH_FORM.exec(url);
  const port = m && validPort(m[2] as string);
  if (!m || !port) return undefined;
  const prefix = `/p/${m[1]}/${port}`;
  return {
    sandboxId: m[1] as string,
    port,
    path: `${m[3] ?? "/"}${m[4] ?? ""}`,
    prefix,
    cookiePath: prefix,
    addSlash: m[3] === undefined,
  };
}

/** The request's host name, lower case, without a port. */
export function hostOf(req: IncomingMessage): string {
  const host = (req.headers.host ?? "").toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.indexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

/** A preview domain setting as compared with Host headers: lower case, no dots at the ends. */
export function normalizeDomain(domain: string | undefined): string | undefined {
  const d = domain
    ?.trim()
    .toLowerCase()
    .replace(/^\.+|\.+$/g, "");
  return d ? d : undefined;
}
