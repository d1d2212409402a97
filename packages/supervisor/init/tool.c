/* tool: `berth-init --tool CMD` runs the shell command CMD as the sandbox's first choice for the
 * kernel's OOM killer. An agent runs its tools through it (Claude Code's CLAUDE_CODE_SHELL_PREFIX),
 * so a tool that exhausts the sandbox's memory is killed instead of the agent that started it.
 * It only ever raises oom_score_adj, which needs no privilege: it cannot make anything harder to
 * kill, in the sandbox or outside it. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "berth.h"

/* The shell the agent chose when it is one whose syntax it writes commands in; else bash. */
static const char *tool_shell(void) {
  const char *sh = getenv("SHELL");
  const char *base = sh ? strrchr(sh, '/') : NULL;
  if (base && sh[0] == '/' && (!strcmp(base, "/bash") || !strcmp(base, "/zsh")) && access(sh, X_OK) == 0) return sh;
  return "bash";
}

int tool_main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: berth-init --tool COMMAND\n");
    return 2;
  }
  /* Best effort: a kernel without the file still runs the tool, just without the protection. */
  int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (write(fd, "1000", 4) < 0) {}
    close(fd);
  }
  const char *sh = tool_shell();
  char *args[] = {(char *)sh, "-c", argv[2], NULL};
  execvp(sh, args);
  perror("berth-init --tool");
  return 127;
}
