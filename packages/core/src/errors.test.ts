import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  BadGatewayError,
  BerthError,
  BudgetExceededError,
  ConflictError,
  ERROR_STATUS,
  errorFromBody,
  ForbiddenError,
  InternalError,
  InvalidRequestError,
  isWireErrorCode,
  LimitExceededError,
  NotFoundError,
  NotSupportedError,
  PayloadTooLargeError,
  RequestTimeoutError,
  SandboxError,
  TimeoutError,
  UnauthorizedError,
  WIRE_ERROR_CODES,
} from "./errors.js";

describe("the error registry", () => {
  it("gives every code a snake_case name and an error status", () => {
    for (const [code, status] of Object.entries(ERROR_STATUS)) {
      expect(code).toMatch(/^[a-z][a-z0-9]*(_[a-z0-9]+)*$/);
      expect(status, code).toBeGreaterThanOrEqual(400);
      expect(status, code).toBeLessThan(600);
    }
    expect(WIRE_ERROR_CODES).toEqual(Object.keys(ERROR_STATUS));
    expect(isWireErrorCode("not_found")).toBe(true);
    expect(isWireErrorCode("toString")).toBe(false);
    expect(isWireErrorCode("made_up")).toBe(false);
  });

  it("gives each error class its registered code and status, and the contract's body", () => {
    const made = [
      new InvalidRequestError("m", { field: "f" }),
      new UnauthorizedError(),
      new ForbiddenError("m"),
      new NotFoundError("sandbox", "sb1"),
      new ConflictError("m"),
      new PayloadTooLargeError("m"),
      new RequestTimeoutError("m"),
      new LimitExceededError("m"),
      new BudgetExceededError("m"),
      new TimeoutError("m"),
      new SandboxError("m"),
      new BadGatewayError("m"),
      new NotSupportedError("m"),
      new InternalError(),
      new BerthError("disk_full", "m"),
      new BerthError("replica_unavailable", "m"),
    ];
    for (const e of made) {
      expect(isWireErrorCode(e.code), e.code).toBe(true);
      expect(e.status, e.code).toBe(ERROR_STATUS[e.code as keyof typeof ERROR_STATUS]);
      expect(e.toBody().error.code).toBe(e.code);
    }
    expect(new NotFoundError("sandbox", "sb1").toBody()).toEqual({
      error: {
        code: "not_found",
        message: "sandbox 'sb1' not found",
        details: { kind: "sandbox", id: "sb1" },
      },
    });
    expect(new InternalError().toBody()).toEqual({
      error: { code: "internal_error", message: "internal server error" },
    });
  });

  it("turns every wire body back into the error the server made (the SDK's side)", () => {
    for (const code of WIRE_ERROR_CODES) {
      const e = errorFromBody(ERROR_STATUS[code], {
        error: { code, message: `said ${code}`, details: { x: 1 } },
      });
      expect(e.code).toBe(code);
      expect(e.status).toBe(ERROR_STATUS[code]);
      expect(e.message).toBe(`said ${code}`);
    }
    expect(
      errorFromBody(404, {
        error: { code: "not_found", message: "gone", details: { kind: "volume", id: "v" } },
      }),
    ).toBeInstanceOf(NotFoundError);
    expect(
      errorFromBody(400, { error: { code: "invalid_request", message: "m", details: { field: "cmd" } } }),
    ).toMatchObject({
      constructor: InvalidRequestError,
      details: { field: "cmd" },
    });
    expect(errorFromBody(501, { error: { code: "not_supported", message: "m" } })).toBeInstanceOf(
      NotSupportedError,
    );
  });

  it("keeps a code it does not know (a newer server) as http_error with the status and code received", () => {
    const e = errorFromBody(418, {
      error: { code: "teapot_busy", message: "short and stout", details: { a: 1 } },
    });
    expect(e).toMatchObject({ code: "http_error", status: 418, message: "short and stout" });
    expect(e.details).toEqual({ a: 1, code: "teapot_busy" });
    expect(errorFromBody(500, {})).toMatchObject({ code: "internal_error", message: "HTTP 500" });
  });

  it("is the table in docs/contract.md, code for code and status for status", () => {
    const doc = readFileSync(new URL("../../../docs/contract.md", import.meta.url), "utf8");
    const rows = new Map(
      [...doc.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1] as string, Number(m[2])]),
    );
    expect(Object.fromEntries(rows)).toEqual(ERROR_STATUS);
  });
});
