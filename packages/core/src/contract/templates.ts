/** Templates on the wire: listing, import and build. */
import { type Static, Type as T } from "@sinclair/typebox";
import { OneOf } from "./common.js";

/** A named root filesystem sandboxes are made from. */
export const Template = T.Object({
  name: T.String(),
  sizeBytes: T.Integer(),
  createdAt: T.String(),
  source: T.String(),
});
export type Template = Static<typeof Template>;

/** `:name` of the template routes; names are checked by the service (400, field `name`). */
export const TemplateParams = T.Object({ name: T.String({ maxLength: 128 }) });

/** What an imported archive is. */
export const TEMPLATE_FORMATS = ["rootfs", "docker", "oci"] as const;
/** `PUT /v1/templates/:name?format=`. */
export const ImportTemplateQuery = T.Object({
  format: T.Optional(OneOf(TEMPLATE_FORMATS, { default: "rootfs" })),
});

/** `POST /v1/templates/:name/build`. */
export const BuildTemplateBody = T.Object(
  {
    from: T.Optional(T.String({ minLength: 1, maxLength: 128, default: "default" })),
    run: T.String({ minLength: 1, maxLength: 64 * 1024 }),
    timeoutSeconds: T.Optional(T.Integer({ minimum: 1, maximum: 6 * 3600 })),
    resources: T.Optional(
      T.Object(
        {
          cpus: T.Optional(T.Number({ exclusiveMinimum: 0 })),
          memoryMiB: T.Optional(T.Integer({ minimum: 1 })),
          diskMiB: T.Optional(T.Integer({ minimum: 1 })),
          pids: T.Optional(T.Integer({ minimum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type BuildTemplateBody = Static<typeof BuildTemplateBody>;
