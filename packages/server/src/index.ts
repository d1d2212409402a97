export { type BerthServer, type ServerOptions, startServer } from "./server.js";
