export * from "./config.js";
export * from "./errors.js";
export * from "./ids.js";
export * from "./keyed-lock.js";
export * from "./logger.js";
export * from "./runtime.js";
export * from "./store.js";
export * from "./types.js";
