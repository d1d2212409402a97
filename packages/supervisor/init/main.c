/* berth-init: PID 1 of a sandbox. Accepts on the listening socket (fd 3 or BERTH_LISTEN_PATH),
 * forks one handler per connection (simple code, failures stay in one connection), reaps every
 * child and orphan, and on SIGTERM kills what it started and exits 0. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"

const char *g_state_dir = "/run/berth";
volatile pid_t g_fg_pgid = 0;
char g_tmp_path[4096];

/* Handlers and shims alive right now: told to stop on SIGTERM. */
static pid_t *kids;
static size_t nkids, capkids;

static void track(pid_t pid) {
  if (nkids == capkids) {
    size_t cap = capkids ? capkids * 2 : 64;
    pid_t *k = realloc(kids, cap * sizeof *k);
    if (!k) return;
    kids = k;
    capkids = cap;
  }
  kids[nkids++] = pid;
}

static void untrack(pid_t pid) {
  for (size_t i = 0; i < nkids; i++)
    if (kids[i] == pid) { kids[i] = kids[--nkids]; return; }
}

static void reap(void) {
  pid_t pid;
  while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) untrack(pid);
}

/* SIGTERM in a handler or shim: kill its foreground process group, drop its temp file. */
static void on_term(int sig) {
  (void)sig;
  if (g_fg_pgid > 0) kill(-g_fg_pgid, SIGKILL);
  if (g_tmp_path[0]) unlink(g_tmp_path);
  _exit(0);
}

/* The sandbox user every request runs as unless it asks for root. */
#define SANDBOX_UID 1000
#define SANDBOX_GID 1000

/* A root sandbox: init is root of the sandbox's user namespace and drops to the sandbox user for
 * every request that does not ask for root. Set from BERTH_ROOT_SANDBOX=1 (the runtime sets it
 * only for root sandboxes); init run as host root elsewhere (tests) keeps its identity. */
static int g_root_sandbox;

/* Ops about berth's own processes: served with init's identity whatever the request's user, so a
 * root process started through berth can be listed, followed and signalled like any other. */
static int control_op(const char *op) {
  return !strcmp(op, "ping") || !strcmp(op, "procs") || !strcmp(op, "proc") || !strcmp(op, "logs") ||
         !strcmp(op, "signal");
}

/* Gives this handler the identity the request names (`user`: "root" or "user", default "user").
 * init runs as uid 0 only in a root sandbox (uid 0 of the sandbox's user namespace, an
 * unprivileged id on the host); elsewhere it is the sandbox user and root is refused. The handler
 * is a fork of its own, so dropping here is permanent for this request and nothing after it. */
static int become_user(int sock, jval *q) {
  jval *u = jget(q, "user");
  const char *name = jstr(q, "user");
  int root = name && !strcmp(name, "root");
  if ((u && !name) || (name && !root && strcmp(name, "user"))) {
    reply_errno(sock, EINVAL, "'user' must be \"root\" or \"user\"");
    return -1;
  }
  if (geteuid() != 0) {
    if (!root) return 0;
    reply_errno(sock, EPERM, "root is not available: this sandbox was not created with root");
    return -1;
  }
  if (root || !g_root_sandbox) return 0;
  if (setgroups(0, NULL) || setgid(SANDBOX_GID) || setuid(SANDBOX_UID)) {
    reply_errno(sock, errno, "could not switch to the sandbox user: %s", strerror(errno));
    return -1;
  }
  return 0;
}

static int dispatch(int sock, reader *rd) {
  frame f;
  if (rd_next(rd, &f)) return -1;
  jval *q = f.type == 'q' ? json_parse((const char *)f.data, f.len) : NULL;
  const char *op = jstr(q, "op");
  if (!op) return reply_errno(sock, EINVAL, "the first frame must be a JSON request with an 'op'");
  rd_consume(rd, &f); /* q stays valid: it was copied out by the parser */
  if (!control_op(op) && become_user(sock, q)) return -1;
  if (!strcmp(op, "ping")) return reply_ok(sock, ",\"version\":\"" BERTH_VERSION "\"");
  if (!strcmp(op, "exec")) return op_exec(sock, rd, q);
  if (!strcmp(op, "spawn")) return op_spawn(sock, q);
  if (!strcmp(op, "procs")) return op_procs(sock, q);
  if (!strcmp(op, "proc")) return op_proc(sock, q);
  if (!strcmp(op, "logs")) return op_logs(sock, q);
  if (!strcmp(op, "signal")) return op_signal(sock, q);
  if (!strcmp(op, "stdin")) return op_stdin(sock, q);
  if (!strcmp(op, "stat")) return op_stat(sock, q);
  if (!strcmp(op, "list")) return op_list(sock, q);
  if (!strcmp(op, "read")) return op_read(sock, q);
  if (!strcmp(op, "write")) return op_write(sock, rd, q);
  if (!strcmp(op, "remove")) return op_remove(sock, q);
  if (!strcmp(op, "mkdir")) return op_mkdir(sock, q);
  if (!strcmp(op, "move")) return op_move(sock, q);
  if (!strcmp(op, "watch")) return op_watch(sock, rd, q);
  if (!strcmp(op, "dial")) return op_dial(sock, rd, q);
  return reply_errno(sock, EINVAL, "unknown op");
}

static void handle(int sock) {
  sigset_t none;
  sigemptyset(&none);
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGINT, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
  reader rd;
  rd_init(&rd, sock);
  dispatch(sock, &rd);
  _exit(0);
}

static int listen_socket(void) {
  const char *path = getenv("BERTH_LISTEN_PATH");
  if (path && *path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) { fprintf(stderr, "berth-init: socket path too long\n"); exit(1); }
    strcpy(a.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 512)) {
      perror("berth-init: listen");
      exit(1);
    }
    return fd;
  }
  /* A loopback TCP port: where no socket can be passed in or bound out (a Kubernetes pod,
   * reached through the API server's port-forward, which dials the pod's 127.0.0.1). */
  const char *port = getenv("BERTH_LISTEN_PORT");
  if (port && *port) {
    char *end;
    long p = strtol(port, &end, 10);
    if (*end || p < 1 || p > 65535) { fprintf(stderr, "berth-init: bad BERTH_LISTEN_PORT\n"); exit(1); }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                            .sin_addr = {.s_addr = htonl(INADDR_LOOPBACK)}};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 512)) {
      perror("berth-init: listen");
      exit(1);
    }
    return fd;
  }
  const char *fds = getenv("BERTH_LISTEN_FD");
  int fd = fds && *fds ? atoi(fds) : 3;
  if (fd < 0 || set_cloexec(fd)) { /* CLOEXEC: sandbox code must never accept on it */
    fprintf(stderr, "berth-init: no listening socket on fd %d\n", fd);
    exit(1);
  }
  return fd;
}

static void shutdown_all(int sfd) {
  for (size_t i = 0; i < nkids; i++) kill(kids[i], SIGTERM);
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  while (nkids > 0) {
    reap();
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms > 2000) break;
    struct pollfd p = {sfd, POLLIN, 0};
    if (poll(&p, 1, 50) > 0) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) < 0) {}
    }
  }
  exit(0);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "--tool")) return tool_main(argc, argv);
  prctl(PR_SET_DUMPABLE, 0);      /* nothing in the sandbox may ptrace or read our memory */
  prctl(PR_SET_CHILD_SUBREAPER, 1); /* orphans come to us even when we are not PID 1 (tests) */
  signal(SIGPIPE, SIG_IGN);
  const char *rs = getenv("BERTH_ROOT_SANDBOX");
  g_root_sandbox = rs && !strcmp(rs, "1") && geteuid() == 0;
  unsetenv("BERTH_ROOT_SANDBOX");
  const char *sd = getenv("BERTH_STATE_DIR");
  if (sd && *sd) g_state_dir = sd;
  char procs[4200];
  snprintf(procs, sizeof procs, "%s/procs", g_state_dir);
  mkdir_parents(procs, 1);
  /* In a root sandbox init is root; the handlers that write process records may be the user. */
  if (g_root_sandbox && (chown(g_state_dir, SANDBOX_UID, SANDBOX_GID) || chown(procs, SANDBOX_UID, SANDBOX_GID)))
    perror("berth-init: chown state dir");
  procs_close_stale();

  int lfd = listen_socket();
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) { perror("berth-init: signalfd"); return 1; }

  for (;;) {
    struct pollfd p[2] = {{lfd, POLLIN, 0}, {sfd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      perror("berth-init: poll");
      return 1;
    }
    if (p[1].revents) {
      struct signalfd_siginfo si;
      int term = 0;
      while (read(sfd, &si, sizeof si) == sizeof si)
        if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) term = 1;
      reap();
      if (term) shutdown_all(sfd);
    }
    if (p[0].revents & POLLIN) {
      int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EMFILE || errno == ENFILE) usleep(10000); /* let handlers finish */
        continue;
      }
      pid_t pid = fork();
      if (pid == 0) {
        close(lfd);
        close(sfd);
        handle(c);
      }
      if (pid > 0) track(pid);
      close(c);
    }
  }
}
