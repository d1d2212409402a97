export { type ExecOptions, type SandboxUserName, type StdinResult, SupervisorClient } from "./client.js";
export {
  errorFromErrno,
  LAUNCH_PHASES,
  type LaunchFailure,
  type LaunchPhase,
  launchFailureOf,
} from "./errors.js";
export { encodeFrame, type Frame, FrameDecoder, MAX_FRAME_BYTES } from "./frames.js";
export { idmapBinaryPath, initBinaryPath } from "./init-binary.js";
export { ProcessStream } from "./process-stream.js";
export type { ExitStatus, FileEntry, ProcessInfo } from "./types.js";
export { type WatchEvent, WatchStream } from "./watch-stream.js";
