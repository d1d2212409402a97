// Runs once before the whole suite: builds the supervisor binary the runtime tests need.
import { execFileSync } from "node:child_process";

export default function setup(): void {
  execFileSync("make", ["-s", "-C", "packages/supervisor"], { stdio: "inherit" });
}
