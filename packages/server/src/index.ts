export { openApiDocument } from "./api-docs/openapi-document.js";
export { type BerthServer, type ServerOptions, startServer } from "./server.js";
