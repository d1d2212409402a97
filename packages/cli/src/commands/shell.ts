import { Sandbox } from "@berth/sdk";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

/** `berth shell`. */
export const shell: Command = {
  summary: "open an interactive shell in a sandbox",
  usage: `Usage: berth shell ID

Opens a terminal in the sandbox and connects it to this one (raw mode on a TTY). Exits with
the shell's exit code.`,
  options: {},
  async run(args, ctx) {
    if (args.positionals.length !== 1) throw new UsageError("expected exactly one sandbox ID", ctx.usage);
    const sb = await Sandbox.connect(args.positionals[0] as string, { client: ctx.client() });
    const stdin = process.stdin;
    const stdout = process.stdout;
    const pty = await sb.pty({
      cols: stdout.columns || 80,
      rows: stdout.rows || 24,
      onData: (bytes) => stdout.write(bytes),
    });
    const tty = stdin.isTTY === true;
    const onInput = (chunk: Buffer) => pty.write(chunk);
    const onResize = () => pty.resize(stdout.columns || 80, stdout.rows || 24);
    // Killed from outside: end the session so the finally below restores the terminal.
    const onKill = () => pty.close();
    // The terminal must come back to cooked mode however the session ends.
    const restore = () => {
      stdin.off("data", onInput);
      process.off("SIGWINCH", onResize);
      process.off("SIGTERM", onKill);
      process.off("SIGHUP", onKill);
      if (tty) stdin.setRawMode(false);
      stdin.pause();
    };
    try {
      if (tty) stdin.setRawMode(true);
      stdin.on("data", onInput);
      stdin.resume();
      if (stdout.isTTY) process.on("SIGWINCH", onResize);
      process.on("SIGTERM", onKill);
      process.on("SIGHUP", onKill);
      const code = await pty.wait();
      return code < 0 ? 1 : code;
    } finally {
      restore();
    }
  },
};
