import { ErrorBody } from "@berth/core/contract";
import type { SwaggerTransform } from "@fastify/swagger";

/**
 * Gives every operation of /openapi.json the contract's error body as its `default` response,
 * with the registry's codes as its enum. Only the document changes: what the server sends is
 * still serialized by each route's own response schemas.
 */
export const documentErrors: SwaggerTransform = ({ schema, url }) => ({
  url,
  schema: {
    ...schema,
    response: {
      ...(schema?.response as Record<string, unknown> | undefined),
      default: {
        ...ErrorBody,
        description: "An error: `error.code` is one of the registry's codes (docs/contract.md)",
      },
    },
  },
});
