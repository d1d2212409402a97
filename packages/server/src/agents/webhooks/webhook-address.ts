import { isIP } from "node:net";
import { FORBIDDEN_V4, InvalidRequestError, inCidr } from "@berth/core";

/** IPv6 prefixes that reach this host or a private network (checked on the lower-cased text). */
const FORBIDDEN_V6 = [/^::1?$/, /^f[cd]/, /^fe[89ab]/, /^ff/];

/**
 * Whether a webhook may be delivered to `ip`: a public address, or one the admin listed in
 * BERTH_WEBHOOK_ALLOW_CIDRS. Loopback, private, link-local, multicast and reserved addresses
 * would let a tenant reach the host's or the network's internal services.
 */
export function webhookAddressAllowed(ip: string, allowCidrs: readonly string[]): boolean {
  const family = isIP(ip);
  if (family === 4) return allowCidrs.some((c) => inCidr(ip, c)) || !FORBIDDEN_V4.some((c) => inCidr(ip, c));
  if (family !== 6) return false;
  const v6 = ip.toLowerCase();
  // An IPv4 address written as IPv6 is judged as the IPv4 address it is.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6)?.[1];
  if (mapped) return webhookAddressAllowed(mapped, allowCidrs);
  return !FORBIDDEN_V6.some((re) => re.test(v6));
}

/** The admin's extra allowed ranges from BERTH_WEBHOOK_ALLOW_CIDRS. */
export function webhookAllowCidrs(setting: string | undefined): string[] {
  return (setting ?? "")
    .split(",")
    .map((c) => c.trim())
    .filter((c) => c !== "");
}

/**
 * A webhook URL as given at create, checked for what can be known without DNS: http(s), no
 * credentials in it, and an address literal (or `localhost`) only where allowed. A host name is
 * checked again on each delivery, against every address it resolves to.
 */
export function checkWebhookUrl(raw: string, allowCidrs: readonly string[], field: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new InvalidRequestError(`${field} is not a URL: give an absolute http(s) URL`, { field });
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw new InvalidRequestError(`${field} must be an http or https URL, not ${url.protocol}`, { field });
  if (url.username || url.password)
    throw new InvalidRequestError(`${field} must not carry credentials: verify the signature instead`, {
      field,
    });
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const literal = host === "localhost" ? "127.0.0.1" : host;
  if (isIP(literal) && !webhookAddressAllowed(literal, allowCidrs))
    throw new InvalidRequestError(
      `${field} reaches ${host}, a loopback, private, link-local or reserved address: webhooks go to public addresses unless an admin lists the range in BERTH_WEBHOOK_ALLOW_CIDRS`,
      { field },
    );
  return url;
}
