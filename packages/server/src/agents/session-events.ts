/** Kept so that existing imports keep working: the one event log class lives in `events/event-log.ts`. */
export { SessionEvents } from "../events/event-log.js";
