import {
  type Config,
  ConflictError,
  ForbiddenError,
  LimitExceededError,
  NotFoundError,
  type PortRecord,
  type Store,
  UnauthorizedError,
} from "@berth/core";
import { LIVE_STATES, type SandboxService } from "../sandboxes/service.js";
import { hashPortToken, newPortToken, tokenMatches } from "./tokens.js";

/** Exposed ports per sandbox; more answer 429. */
export const MAX_PORTS_PER_SANDBOX = 64;

/** Where the client reached the API: the base of the URLs handed out. */
export interface PublicOrigin {
  proto: string;
  /** Host header as the client sent it (may carry a port). */
  host: string;
}

/** A port as the API shows it. */
export interface PortView {
  port: number;
  url: string;
  public: boolean;
  createdAt: string;
}

/**
 * Exposed ports: which ports of which sandbox the proxy serves, and who may use them. Tokens
 * are random, stored only as hashes, replaced by exposing the port again and void once it is
 * unexposed or the sandbox ends.
 */
export class PortService {
  constructor(
    private readonly d: {
      store: Store;
      sandboxes: SandboxService;
      config: Config;
      /** The preview domain, normalized (see normalizeDomain). */
      previewDomain: string | undefined;
      /** The port the preview listener listens on (undefined before it does). */
      previewPort: () => number | undefined;
    },
  ) {}

  /** Exposes `port` of the tenant's live sandbox (again: with a new token). */
  async expose(
    tenantId: string,
    sandboxId: string,
    port: number,
    isPublic: boolean,
    origin: PublicOrigin,
  ): Promise<PortView & { token: string | null }> {
    const s = await this.d.sandboxes.get(tenantId, sandboxId);
    if (!LIVE_STATES.includes(s.state))
      throw new ConflictError(`sandbox '${sandboxId}' is ${s.state}`, { state: s.state });
    const existing = await this.d.store.listPorts(sandboxId);
    if (existing.length >= MAX_PORTS_PER_SANDBOX && !existing.some((p) => p.port === port))
      throw new LimitExceededError(`a sandbox may expose at most ${MAX_PORTS_PER_SANDBOX} ports`, {
        max: MAX_PORTS_PER_SANDBOX,
      });
    const token = isPublic ? null : newPortToken();
    const record: PortRecord = {
      sandboxId,
      tenantId,
      port,
      public: isPublic,
      tokenHash: token ? hashPortToken(token) : null,
      createdAt: new Date().toISOString(),
    };
    await this.d.store.upsertPort(record);
    return { ...this.view(record, origin), token };
  }

  /** The tenant's exposed ports of one sandbox. */
  async list(tenantId: string, sandboxId: string, origin: PublicOrigin): Promise<PortView[]> {
    await this.d.sandboxes.get(tenantId, sandboxId);
    return (await this.d.store.listPorts(sandboxId)).map((p) => this.view(p, origin));
  }

  /** Unexposes a port; its token stops working at once. */
  async remove(tenantId: string, sandboxId: string, port: number): Promise<void> {
    await this.d.sandboxes.get(tenantId, sandboxId);
    if (!(await this.d.store.deletePort(sandboxId, port))) throw new NotFoundError("port", String(port));
  }

  /**
   * Checks a proxied request's right to the port: 404 when the port is not exposed (the
   * sandbox's state is checked by the caller), 401 without a token, 403 with a wrong one.
   */
  async authorize(sandboxId: string, port: number, token: string | undefined): Promise<PortRecord> {
    const p = await this.d.store.getPort(sandboxId, port);
    if (!p) throw new NotFoundError("port", `${sandboxId}/${port}`);
    checkToken(p, token);
    return p;
  }

  /**
   * The URL of a port: on its preview host when a preview domain is set, else under `/p/` on
   * the preview listener (the host the client reached the API by, the preview listener's port).
   */
  urlOf(sandboxId: string, port: number, origin: PublicOrigin): string {
    const domain = this.d.previewDomain;
    const m = /:(\d+)$/.exec(origin.host);
    if (domain) return `${origin.proto}://${port}-${sandboxId}.${domain}${m ? `:${m[1]}` : ""}/`;
    const name = m ? origin.host.slice(0, m.index) : origin.host;
    return `${origin.proto}://${name}:${this.d.previewPort() ?? 0}/p/${sandboxId}/${port}/`;
  }

  private view(p: PortRecord, origin: PublicOrigin): PortView {
    return {
      port: p.port,
      url: this.urlOf(p.sandboxId, p.port, origin),
      public: p.public,
      createdAt: p.createdAt,
    };
  }
}

/** 401 without a token, 403 with a wrong one; a public port takes anyone. */
export function checkToken(p: PortRecord, token: string | undefined): void {
  if (p.public) return;
  if (token === undefined)
    throw new UnauthorizedError(
      `port ${p.port} of sandbox ${p.sandboxId} needs its token: send the X-Berth-Token header, ?token= or the cookie`,
    );
  if (!p.tokenHash || !tokenMatches(token, p.tokenHash))
    throw new ForbiddenError(`the token is not valid for port ${p.port} of sandbox ${p.sandboxId}`);
}
