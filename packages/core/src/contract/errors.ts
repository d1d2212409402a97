/** The error body every failed call answers with; its codes are the registry's (ERROR_STATUS). */
import { type Static, Type as T } from "@sinclair/typebox";
import { WIRE_ERROR_CODES } from "../errors.js";
import { OneOf } from "./common.js";

/** `{error: {code, message, details}}`: `code` is stable, `message` says what to fix. */
export const ErrorBody = T.Object({
  error: T.Object({
    code: OneOf(WIRE_ERROR_CODES, { description: "Stable code; see the error table in docs/contract.md" }),
    message: T.String(),
    details: T.Optional(T.Record(T.String(), T.Unknown())),
  }),
});
export type ErrorBody = Static<typeof ErrorBody>;
