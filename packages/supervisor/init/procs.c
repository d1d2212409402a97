/* Background processes: `spawn` forks a shim that stays behind, holds the pipes, appends
 * output to $STATE/procs/<pid>/log as frames (rotating to log.1) and writes `status` on exit.
 * Everything under the state dir is writable by sandbox code, so it is read back defensively. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth.h"

#define LOG_ROTATE (4u * 1024u * 1024u)
#define MAX_CMD_JSON (512u * 1024u)
#define MAX_PROCS 10000

static void proc_path(char *out, size_t n, long pid, const char *file) {
  snprintf(out, n, "%s/procs/%ld%s%s", g_state_dir, pid, file ? "/" : "", file ? file : "");
}

typedef struct {
  int fd;
  size_t size;
  char path[4200], old[4200];
} logfile;

static void log_append(logfile *l, char type, const char *p, size_t n) {
  if (l->size + 5 + n > LOG_ROTATE) {
    if (l->fd >= 0) close(l->fd);
    rename(l->path, l->old);
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    l->size = 0;
  }
  if (l->fd < 0) return; /* disk full or tampered with: keep draining so the process never blocks */
  unsigned char h[5] = {(unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                        (unsigned char)(n >> 8), (unsigned char)n};
  struct iovec iov[2] = {{h, 5}, {(void *)p, n}};
  ssize_t w = writev(l->fd, iov, 2);
  if (w > 0) l->size += (size_t)w;
  if (w != (ssize_t)(5 + n)) { /* a torn frame would corrupt the log: truncate it away */
    if (w > 0 && ftruncate(l->fd, (off_t)(l->size - (size_t)w)) == 0) l->size -= (size_t)w;
  }
}

static void write_status(long pid, int status) {
  char path[4200];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  jbuf b;
  jb_init(&b);
  exit_json(&b, status);
  b.len--; /* reopen the object to add the time */
  jb_puts(&b, ",\"exitedAt\":");
  jb_iso_time(&b, &now);
  jb_puts(&b, "}");
  proc_path(path, sizeof path, pid, "status");
  write_file_atomic(path, b.buf, b.len);
}

/* The shim's life: drain both pipes into the log until they close; status when the process exits. */
static void shim(pid_t pid, int out, int err, int sfd, stdin_keeper *in) {
  logfile l = {.fd = -1};
  proc_path(l.path, sizeof l.path, pid, "log");
  proc_path(l.old, sizeof l.old, pid, "log.1");
  l.fd = open(l.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  char *buf = malloc(IO_CHUNK);
  int exited = 0;
  while (out >= 0 || err >= 0 || !exited) {
    struct pollfd p[5] = {{sfd, exited ? 0 : POLLIN, 0}, {out, POLLIN, 0}, {err, POLLIN, 0}};
    int slots[3];
    int np = 3 + keeper_pollfds(in, p + 3, slots);
    for (int i = 0; i < 3; i++) slots[i] += slots[i] >= 0 ? 3 : 0;
    if (poll(p, (nfds_t)np, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    keeper_service(in, p, slots);
    if (p[0].revents) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      int status;
      if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
        exited = 1;
        /* drain what the process wrote before it exited, then record how it ended */
        for (int i = 1; i <= 2; i++) {
          int *fd = i == 1 ? &out : &err;
          ssize_t n;
          while (*fd >= 0 && (n = read(*fd, buf, IO_CHUNK)) > 0) log_append(&l, (char)('0' + i), buf, (size_t)n);
        }
        if (l.fd >= 0) fsync(l.fd);
        write_status(pid, status);
        g_fg_pgid = 0;
      }
    }
    for (int i = 1; i <= 2; i++) {
      int *fd = i == 1 ? &out : &err;
      if (*fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(*fd, buf, IO_CHUNK);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) { close(*fd); *fd = -1; continue; }
      log_append(&l, (char)('0' + i), buf, (size_t)n);
    }
  }
  keeper_finish(in);
  _exit(0);
}

int op_spawn(int sock, const jval *q) {
  launch_spec ls;
  if (parse_launch(sock, q, &ls)) return -1;
  int keep_stdin = jbool(q, "stdin", 0);
  if (keep_stdin < 0) return reply_errno(sock, EINVAL, "stdin must be a boolean");
  if (keep_stdin && !stdin_path_fits())
    return reply_errno(sock, ENAMETOOLONG, "the state dir's path is too long for a stdin socket");
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  int op[2], ep[2], ip[2] = {-1, -1};
  if (pipe2(op, O_CLOEXEC) || pipe2(ep, O_CLOEXEC) || (keep_stdin && pipe2(ip, O_CLOEXEC)))
    return reply_errno(sock, errno, "pipe: %s", strerror(errno));
  int in = keep_stdin ? ip[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (in < 0) in = op[1] /* no /dev/null: any fd will do as stdin */;
  int err;
  const char *what;
  pid_t pid = launch(&ls, in, op[1], ep[1], -1, &err, &what);
  close(op[1]);
  close(ep[1]);
  if (ip[0] >= 0) close(ip[0]);
  if (pid < 0) return reply_phase(sock, err, launch_phase(what), "%s %s: %s", what, !strcmp(what, "chdir") ? ls.cwd : ls.argv[0], strerror(err));
  g_fg_pgid = pid; /* until it exits, SIGTERM to the shim kills the process group */
  set_nonblock(op[0]);
  set_nonblock(ep[0]);

  char dir[4200], path[4200], cwd[4096];
  proc_path(dir, sizeof dir, pid, NULL);
  mkdir_parents(dir, 1);
  /* A record of this pid from the sandbox's previous life (before a hibernate) goes. */
  const char *old[] = {"status", "log", "log.1"};
  for (size_t i = 0; i < sizeof old / sizeof *old; i++) {
    proc_path(path, sizeof path, pid, old[i]);
    unlink(path);
  }
  stdin_keeper keeper = {.pipe = -1, .listen = -1, .client = -1};
  if (keep_stdin) {
    set_nonblock(ip[1]); /* a process that does not read must not block the shim */
    if (keeper_open(&keeper, pid, ip[1])) { /* nothing half-done: the process goes again */
      int e = errno;
      kill(-pid, SIGKILL);
      waitpid(pid, NULL, 0);
      rmdir(dir);
      return reply_phase(sock, e, "setup", "stdin socket: %s", strerror(e));
    }
  }
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"cmd\":[");
  for (char **a = ls.argv; *a; a++) {
    if (a != ls.argv) jb_puts(&b, ",");
    jb_cstr(&b, *a);
  }
  jb_puts(&b, "],\"cwd\":");
  jb_cstr(&b, ls.cwd ? ls.cwd : getcwd(cwd, sizeof cwd) ? cwd : "/");
  jb_printf(&b, ",\"shim\":%d,\"startedAt\":", (int)getpid());
  jb_iso_time(&b, &now);
  jb_puts(&b, "}");
  if (b.len > MAX_CMD_JSON) { /* keep what procs answers below one frame */
    b.len = 0;
    jb_puts(&b, "{\"cmd\":[");
    jb_cstr(&b, ls.argv[0]);
    jb_printf(&b, ",\"...\"],\"cwd\":null,\"shim\":%d,\"startedAt\":", (int)getpid());
    jb_iso_time(&b, &now);
    jb_puts(&b, "}");
  }
  proc_path(path, sizeof path, pid, "cmd.json");
  write_file_atomic(path, b.buf, b.len);

  char fields[64];
  snprintf(fields, sizeof fields, ",\"pid\":%d", (int)pid);
  reply_ok(sock, fields);
  close(sock);
  shim(pid, op[0], ep[0], sfd, &keeper);
  return 0;
}

/* At start: records without a status are of processes that ended with the sandbox's previous
 * life (a hibernate, a crash); they are marked killed, so a reused pid is never taken for them. */
void procs_close_stale(void) {
  char dir[4200], path[4200];
  snprintf(dir, sizeof dir, "%s/procs", g_state_dir);
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    proc_path(path, sizeof path, pid, "status");
    if (access(path, F_OK) != 0) write_status(pid, SIGKILL); /* a wait status: killed by SIGKILL */
  }
  closedir(d);
}

/* Appends the ProcessInfo of `pid` to b; -1 when there is no such spawned process. */
static int proc_json(jbuf *b, long pid) {
  char path[4200];
  proc_path(path, sizeof path, pid, "cmd.json");
  size_t n;
  char *cj = read_small_file(path, MAX_CMD_JSON, &n);
  if (!cj) return -1;
  jval *c = json_parse(cj, n);
  jb_printf(b, "{\"pid\":%ld,\"cmd\":[", pid);
  jval *cmd = jget(c, "cmd");
  for (size_t i = 0; cmd && cmd->type == J_ARR && i < cmd->len; i++) {
    if (i) jb_puts(b, ",");
    jval *a = cmd->items[i];
    if (a->type == J_STR) jb_str(b, a->str, a->len);
    else jb_puts(b, "\"\"");
  }
  const char *cwd = jstr(c, "cwd");
  const char *started = jstr(c, "startedAt");
  jb_puts(b, "],\"cwd\":");
  if (cwd) jb_cstr(b, cwd);
  else jb_puts(b, "null");
  jb_puts(b, ",\"startedAt\":");
  if (started && strlen(started) < 40) jb_cstr(b, started);
  else jb_puts(b, "null");

  proc_path(path, sizeof path, pid, "status");
  char *sj = read_small_file(path, 4096, &n);
  jval *s = sj ? json_parse(sj, n) : NULL;
  long long code;
  const char *sig = jstr(s, "signal");
  const char *at = jstr(s, "exitedAt");
  /* No status yet: running while the process or its shim (still draining output) is alive. */
  long long shim;
  int running = !s && (kill((pid_t)pid, 0) == 0 || errno == EPERM ||
                       (!jint(c, "shim", 1, 1 << 22, &shim) && kill((pid_t)shim, 0) == 0));
  jb_printf(b, ",\"state\":\"%s\",\"exitCode\":", running ? "running" : "exited");
  if (!jint(s, "exitCode", 0, 255, &code)) jb_printf(b, "%lld", code);
  else jb_puts(b, "null");
  jb_puts(b, ",\"signal\":");
  if (sig && strlen(sig) < 16) jb_cstr(b, sig);
  else jb_puts(b, "null");
  jb_puts(b, ",\"exitedAt\":");
  if (at && strlen(at) < 40) jb_cstr(b, at);
  else jb_puts(b, "null");
  jb_puts(b, "}");
  return 0;
}

static int by_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

int op_procs(int sock, const jval *q) {
  (void)q;
  char path[4200];
  snprintf(path, sizeof path, "%s/procs", g_state_dir);
  long *pids = malloc(MAX_PROCS * sizeof *pids);
  size_t n = 0;
  DIR *d = opendir(path);
  struct dirent *e;
  while (d && pids && n < MAX_PROCS && (e = readdir(d))) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end == 0 && pid > 0 && pid < (1L << 22)) pids[n++] = pid;
  }
  qsort(pids, n, sizeof *pids, by_long);
  jbuf b, one;
  jb_init(&b);
  jb_init(&one);
  jb_puts(&b, "{\"ok\":true,\"processes\":[");
  size_t inbatch = 0;
  for (size_t i = 0; i < n; i++) {
    one.len = 0;
    if (proc_json(&one, pids[i])) continue;
    if (inbatch && b.len + one.len + 64 > MAX_FRAME) {
      jb_puts(&b, "],\"more\":true}");
      if (send_json(sock, 'r', &b)) return -1;
      b.len = 0;
      jb_puts(&b, "{\"ok\":true,\"processes\":[");
      inbatch = 0;
    }
    if (inbatch++) jb_puts(&b, ",");
    jb_raw(&b, one.buf, one.len);
  }
  jb_puts(&b, "],\"more\":false}");
  return send_json(sock, 'r', &b);
}

int op_proc(int sock, const jval *q) {
  long long pid;
  if (jint(q, "pid", 1, (1LL << 22), &pid)) return reply_errno(sock, EINVAL, "pid must be a positive integer");
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"ok\":true,\"process\":");
  if (proc_json(&b, (long)pid)) return reply_errno(sock, ESRCH, "process %lld not found", pid);
  jb_puts(&b, "}");
  return send_json(sock, 'r', &b);
}

int op_signal(int sock, const jval *q) {
  long long pid, sig;
  if (jint(q, "pid", 1, (1LL << 22), &pid)) return reply_errno(sock, EINVAL, "pid must be a positive integer");
  if (jint(q, "signal", 1, 64, &sig)) return reply_errno(sock, EINVAL, "signal must be between 1 and 64");
  char path[4200];
  struct stat st;
  proc_path(path, sizeof path, (long)pid, "cmd.json");
  if (stat(path, &st)) return reply_errno(sock, ESRCH, "process %lld not found", pid);
  proc_path(path, sizeof path, (long)pid, "status");
  if (!stat(path, &st)) return reply_errno(sock, ESRCH, "process %lld has exited", pid);
  if (kill(-(pid_t)pid, (int)sig) && kill((pid_t)pid, (int)sig))
    return reply_errno(sock, errno, "signal %lld: %s", pid, strerror(errno));
  return reply_ok(sock, "");
}
