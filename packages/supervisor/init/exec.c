/* exec: a foreground process in its own session, with pipes or a pseudo-terminal, streamed as
 * 1/2 frames until an x frame. The client closing the connection kills its process group. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"

/* How long output may trail the exit of the main process (grandchildren holding the pipes). */
#define DRAIN_MS 20
/* Headers older than Linux 6.2 lack ABI 3's right; the kernel reports which ABI it has. */
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
/* ABI 6 (Linux 6.12): a domain may not signal, or connect to abstract sockets of, processes outside it. */
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)
/* The ruleset attribute as of ABI 6; older kernels take its first field alone. */
struct ruleset_attr {
  __u64 handled_access_fs, handled_access_net, scoped;
};
/* At most this many writable paths in one request. */
#define MAX_WRITABLE 64

/* Every change to the filesystem Landlock can refuse, for the kernel's Landlock ABI version. */
static __u64 write_rights(int abi) {
  __u64 r = LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
            LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |
            LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |
            LANDLOCK_ACCESS_FS_MAKE_SYM;
  if (abi >= 2) r |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) r |= LANDLOCK_ACCESS_FS_TRUNCATE;
  return r;
}

/* Lets this process (and all it starts) change files only beneath `paths`: reads are untouched.
 * Its own Landlock domain also keeps it from tracing, and (ABI 6) signalling, processes outside
 * it, such as other confined processes of the same uid. Paths that do not exist are skipped.
 * -1 with errno when the kernel has no Landlock. */
static int confine_writes(char **paths) {
  int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) return -1;
  __u64 rights = write_rights(abi);
  struct ruleset_attr attr = {.handled_access_fs = rights, .scoped = abi >= 6 ? SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET : 0};
  int rs = (int)syscall(SYS_landlock_create_ruleset, &attr, abi >= 6 ? sizeof attr : sizeof attr.handled_access_fs, 0);
  if (rs < 0) return -1;
  for (char **p = paths; *p; p++) {
    int fd = open(*p, O_PATH | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st;
    /* A file (not a directory) takes only the rights that apply to files. */
    __u64 allowed = fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)
                        ? rights
                        : rights & (LANDLOCK_ACCESS_FS_WRITE_FILE | (abi >= 3 ? LANDLOCK_ACCESS_FS_TRUNCATE : 0));
    struct landlock_path_beneath_attr pb = {.allowed_access = allowed, .parent_fd = fd};
    int r = (int)syscall(SYS_landlock_add_rule, rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    close(fd);
    if (r) return -1;
  }
  int r = (int)syscall(SYS_landlock_restrict_self, rs, 0);
  close(rs);
  return r;
}

int parse_launch(int sock, const jval *q, launch_spec *ls) {
  jval *cmd = jget(q, "cmd");
  jval *env = jget(q, "env");
  jval *cwd = jget(q, "cwd");
  if (!cmd || cmd->type != J_ARR || cmd->len == 0)
    return reply_errno(sock, EINVAL, "cmd must be a non-empty array of strings"), -1;
  if (env && env->type != J_OBJ && env->type != J_NULL) return reply_errno(sock, EINVAL, "env must be an object"), -1;
  if (cwd && cwd->type != J_NULL && (cwd->type != J_STR || strlen(cwd->str) != cwd->len || !cwd->len))
    return reply_errno(sock, EINVAL, "cwd must be a non-empty string"), -1;
  ls->cwd = cwd && cwd->type == J_STR ? cwd->str : NULL;
  jval *w = jget(q, "writable");
  ls->writable = NULL;
  if (w && w->type != J_NULL) {
    if (w->type != J_ARR || w->len > MAX_WRITABLE)
      return reply_errno(sock, EINVAL, "writable must be an array of at most %d paths", MAX_WRITABLE), -1;
    ls->writable = calloc(w->len + 1, sizeof(char *));
    for (size_t i = 0; i < w->len; i++) {
      jval *a = w->items[i];
      if (a->type != J_STR || strlen(a->str) != a->len || a->str[0] != '/')
        return reply_errno(sock, EINVAL, "writable[%zu] must be an absolute path", i), -1;
      ls->writable[i] = a->str;
    }
  }
  ls->argv = calloc(cmd->len + 1, sizeof(char *));
  for (size_t i = 0; i < cmd->len; i++) {
    jval *a = cmd->items[i];
    if (a->type != J_STR || strlen(a->str) != a->len) return reply_errno(sock, EINVAL, "cmd[%zu] must be a string without NUL", i), -1;
    ls->argv[i] = a->str;
  }
  if (!ls->argv[0][0]) return reply_errno(sock, EINVAL, "cmd[0] must not be empty"), -1;
  size_t n = env && env->type == J_OBJ ? env->len : 0;
  ls->envp = calloc(n + 3, sizeof(char *));
  size_t k = 0;
  int has_path = 0, has_home = 0;
  for (size_t i = 0; i < n; i++) {
    const char *key = env->keys[i];
    jval *v = env->items[i];
    if (!*key || strchr(key, '=') || v->type != J_STR || strlen(v->str) != v->len)
      return reply_errno(sock, EINVAL, "env entries must be NAME: string without '=' or NUL"), -1;
    size_t l = strlen(key) + v->len + 2;
    char *e = malloc(l);
    snprintf(e, l, "%s=%s", key, v->str);
    ls->envp[k++] = e;
    has_path |= !strcmp(key, "PATH");
    has_home |= !strcmp(key, "HOME");
  }
  if (!has_path) ls->envp[k++] = "PATH=/usr/local/bin:/usr/bin:/bin";
  if (!has_home) ls->envp[k++] = "HOME=/home/user";
  return 0;
}

void child_reset_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

const char *launch_phase(const char *what) {
  return !strcmp(what, "chdir") || !strcmp(what, "landlock") || !strcmp(what, "exec") ? what : "setup";
}

pid_t launch(const launch_spec *ls, int in, int out, int errfd, int ctty, int *err, const char **what) {
  int ep[2];
  if (pipe2(ep, O_CLOEXEC)) { *err = errno; *what = "pipe"; return -1; }
  pid_t pid = fork();
  if (pid < 0) {
    *err = errno;
    *what = "fork";
    close(ep[0]);
    close(ep[1]);
    return -1;
  }
  if (pid == 0) {
    int stage = 0;
    child_reset_signals();
    setsid();
    if (ctty >= 0) ioctl(ctty, TIOCSCTTY, 0);
    /* dup2 onto 0..2 clears CLOEXEC; fds above 2 were all opened CLOEXEC */
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errfd, 2) < 0) stage = 1;
    else if (ls->cwd && chdir(ls->cwd)) stage = 2;
    else if (ls->writable && confine_writes(ls->writable)) stage = 4;
    else {
      extern char **environ;
      environ = ls->envp; /* execvp searches the PATH of the new environment */
      execvp(ls->argv[0], ls->argv);
      stage = 3;
    }
    int msg[2] = {stage, errno};
    if (write(ep[1], msg, sizeof msg) < 0) {}
    _exit(127);
  }
  close(ep[1]);
  int msg[2];
  ssize_t n;
  while ((n = read(ep[0], msg, sizeof msg)) < 0 && errno == EINTR) {}
  close(ep[0]);
  if (n == (ssize_t)sizeof msg) {
    waitpid(pid, NULL, 0);
    *err = msg[1];
    *what = msg[0] == 2 ? "chdir" : msg[0] == 3 ? "exec" : msg[0] == 4 ? "landlock" : "setup";
    return -1;
  }
  return pid;
}

static int pipe_or_null(int fds[2], int want_pipe) {
  if (want_pipe) return pipe2(fds, O_CLOEXEC);
  fds[0] = open("/dev/null", O_RDONLY | O_CLOEXEC);
  fds[1] = -1;
  if (fds[0] >= 0) return 0;
  /* no /dev/null in this root: a pipe whose write end is closed reads as EOF too */
  if (pipe2(fds, O_CLOEXEC)) return -1;
  close(fds[1]);
  fds[1] = -1;
  return 0;
}

typedef struct {
  int sock, in, out, err; /* in: our end of stdin (or the pty master); -1 when closed */
  int pty;
  size_t pend;            /* bytes of the head `i` frame already written to `in` */
  int eof_in;             /* the client sent `e` */
} session;

/* Handles frames from the client; -1 when the connection is gone or broken. */
static int pump_client(session *s, reader *rd, pid_t pid, int *stalled) {
  frame f;
  *stalled = 0;
  for (;;) {
    int k = rd_peek(rd, &f);
    if (k < 0) return -1;
    if (k == 0) {
      ssize_t n = rd_fill(rd, 1);
      if (n == -2) return 0;
      if (n <= 0) return -1;
      continue;
    }
    if (f.type == 'i') {
      if (s->in < 0 || s->eof_in) { rd_consume(rd, &f); continue; }
      while (s->pend < f.len) {
        ssize_t w = write(s->in, f.data + s->pend, f.len - s->pend);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) { *stalled = 1; return 0; } /* backpressure: stop reading */
        if (w < 0) { s->pend = f.len; break; }                   /* reader gone: drop input */
        s->pend += (size_t)w;
      }
      s->pend = 0;
    } else if (f.type == 'e') {
      s->eof_in = 1;
      if (s->pty && s->in >= 0) { if (write(s->in, "\x04", 1) < 0) {} }
      else if (s->in >= 0) { close(s->in); s->in = -1; }
    } else if (f.type == 'k' || f.type == 'z') {
      jval *v = json_parse((const char *)f.data, f.len);
      long long a, b;
      if (f.type == 'k' && !jint(v, "signal", 1, 64, &a)) kill(-pid, (int)a);
      if (f.type == 'z' && s->pty && !jint(v, "cols", 1, 65535, &a) && !jint(v, "rows", 1, 65535, &b)) {
        struct winsize ws = {.ws_row = (unsigned short)b, .ws_col = (unsigned short)a};
        ioctl(s->in, TIOCSWINSZ, &ws);
      }
    } /* unknown frame types are ignored: newer clients may send more */
    rd_consume(rd, &f);
  }
}

/*
 * After the exit frame, while the client may still be sending stdin (a tar that stopped reading
 * early): closing with its bytes unread would reset the connection, and the client could lose
 * the exit frame to the reset. Half-close and drop input until the client closes, at most 1 s.
 */
static void linger_for_client(int sock) {
  shutdown(sock, SHUT_WR);
  char b[4096];
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    long left = 1000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    if (left <= 0) return;
    struct pollfd p = {sock, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || read(sock, b, sizeof b) <= 0) return;
  }
}

/* Forwards what `fd` has as frames of `type`; 0: EOF, 1: more may come, -1: client gone. */
static int forward(int fd, int sock, char type, char *buf) {
  ssize_t n = read(fd, buf, IO_CHUNK);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
  if (n <= 0) return 0; /* EOF, or EIO from a pty master whose slave side is all closed */
  return send_frame(sock, type, buf, (size_t)n) ? -1 : 1;
}

int op_exec(int sock, reader *rd, const jval *q) {
  launch_spec ls;
  if (parse_launch(sock, q, &ls)) return -1;
  int want_stdin = jbool(q, "stdin", 0);
  jval *ptyv = jget(q, "pty");
  long long cols = 80, rows = 24;
  if (want_stdin < 0) return reply_errno(sock, EINVAL, "stdin must be a boolean");
  if (ptyv && ptyv->type != J_NULL && (jint(ptyv, "cols", 1, 65535, &cols) || jint(ptyv, "rows", 1, 65535, &rows)))
    return reply_errno(sock, EINVAL, "pty must be {cols, rows} between 1 and 65535");
  int use_pty = ptyv && ptyv->type == J_OBJ;

  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);

  session s = {.sock = sock, .in = -1, .out = -1, .err = -1, .pty = use_pty};
  int cin, cout, cerr, ctty = -1;
  if (use_pty) {
    int m, sl;
    struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
    if (openpty(&m, &sl, NULL, NULL, &ws)) return reply_errno(sock, errno, "openpty: %s", strerror(errno));
    set_cloexec(m);
    set_cloexec(sl);
    set_nonblock(m);
    s.in = s.out = m;
    cin = cout = cerr = ctty = sl;
  } else {
    int ip[2], op[2], ep[2];
    if (pipe_or_null(ip, want_stdin) || pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC))
      return reply_errno(sock, errno, "pipe: %s", strerror(errno));
    s.in = ip[1];
    s.out = op[0];
    s.err = ep[0];
    cin = ip[0];
    cout = op[1];
    cerr = ep[1];
    if (s.in >= 0) set_nonblock(s.in);
    set_nonblock(s.out);
    set_nonblock(s.err);
  }
  int err;
  const char *what;
  pid_t pid = launch(&ls, cin, cout, cerr, ctty, &err, &what);
  close(cin);
  if (cout != cin) close(cout);
  if (cerr != cout) close(cerr);
  if (pid < 0) return reply_phase(sock, err, launch_phase(what), "%s %s: %s", what, !strcmp(what, "chdir") ? ls.cwd : ls.argv[0], strerror(err));
  g_fg_pgid = pid;
  char fields[64];
  snprintf(fields, sizeof fields, ",\"pid\":%d", (int)pid);
  if (reply_ok(sock, fields)) goto gone;

  char *buf = malloc(IO_CHUNK);
  int status = 0, exited = 0, stalled = 0;
  for (;;) {
    struct pollfd p[5];
    int np = 0, isock = -1, iout = -1, ierr = -1, iin = -1, isig = np;
    p[np++] = (struct pollfd){sfd, POLLIN, 0};
    isock = np;
    p[np++] = (struct pollfd){sock, (short)(stalled ? POLLRDHUP : POLLIN | POLLRDHUP), 0};
    if (s.out >= 0) { iout = np; p[np++] = (struct pollfd){s.out, POLLIN, 0}; }
    if (s.err >= 0) { ierr = np; p[np++] = (struct pollfd){s.err, POLLIN, 0}; }
    if (stalled && s.in >= 0 && !use_pty) { iin = np; p[np++] = (struct pollfd){s.in, POLLOUT, 0}; }
    if (stalled && use_pty && iout >= 0) p[iout].events |= POLLOUT;
    if (exited && s.out < 0 && s.err < 0) break;
    int r = poll(p, (nfds_t)np, exited ? DRAIN_MS : -1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) break; /* output idle after exit: whatever still holds the pipes is left behind */
    if (p[isig].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      if (!exited && waitpid(pid, &status, WNOHANG) == pid) exited = 1;
    }
    if (p[isock].revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR) || (iin >= 0 && p[iin].revents) ||
        (stalled && use_pty && iout >= 0 && (p[iout].revents & POLLOUT))) {
      if (p[isock].revents & (POLLRDHUP | POLLHUP | POLLERR) && !(p[isock].revents & POLLIN)) goto gone;
      if (pump_client(&s, rd, pid, &stalled) < 0) goto gone;
    }
    if (iout >= 0 && p[iout].revents & (POLLIN | POLLHUP | POLLERR)) {
      int k = forward(s.out, sock, '1', buf);
      if (k < 0) goto gone;
      if (k == 0) {
        if (s.in == s.out) s.in = -1;
        close(s.out);
        s.out = -1;
      }
    }
    if (ierr >= 0 && p[ierr].revents & (POLLIN | POLLHUP | POLLERR)) {
      int k = forward(s.err, sock, '2', buf);
      if (k < 0) goto gone;
      if (k == 0) { close(s.err); s.err = -1; }
    }
  }
  if (!exited) waitpid(pid, &status, 0);
  kill(-pid, SIGKILL); /* leftovers of the foreground job die with it */
  jbuf b;
  jb_init(&b);
  exit_json(&b, status);
  send_json(sock, 'x', &b);
  if (want_stdin && !s.eof_in) linger_for_client(sock);
  return 0;
gone:
  kill(-pid, SIGKILL);
  return -1;
}
