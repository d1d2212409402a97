/* logs: replays a spawned process's framed log (log.1 then log) and, with follow, tails it
 * until the status file appears. The log lives in a dir sandbox code can write, so every
 * stored frame is validated before it goes on the wire. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth.h"

static char *fbuf;

/* Sends the whole frames of fd from *off on; 0 ok (stopped at EOF or a partial frame), -1 client gone,
 * 1 the log is corrupt (stop reading it). */
static int drain(int fd, off_t *off, int sock) {
  for (;;) {
    unsigned char h[5];
    ssize_t n = pread(fd, h, 5, *off);
    if (n < 5) return 0;
    uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
    if ((h[0] != '1' && h[0] != '2') || len > MAX_FRAME) return 1;
    if (len > 0 && pread(fd, fbuf, len, *off + 5) < (ssize_t)len) return 0;
    if (send_frame(sock, (char)h[0], fbuf, len)) return -1;
    *off += 5 + (off_t)len;
  }
}

static int open_log(const char *path) { return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK); }

static int same_file(int fd, const char *path) {
  struct stat a, b;
  if (fstat(fd, &a) || stat(path, &b)) return 0;
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static int send_exit(int sock, const char *status_path) {
  size_t n;
  char *sj = read_small_file(status_path, 4096, &n);
  jval *s = sj ? json_parse(sj, n) : NULL;
  long long code;
  const char *sig = jstr(s, "signal");
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"exitCode\":");
  if (!jint(s, "exitCode", 0, 255, &code)) jb_printf(&b, "%lld", code);
  else jb_puts(&b, "null");
  jb_puts(&b, ",\"signal\":");
  if (sig && strlen(sig) < 16) jb_cstr(&b, sig);
  else jb_puts(&b, "null");
  jb_puts(&b, "}");
  return send_json(sock, 'x', &b);
}

int op_logs(int sock, const jval *q) {
  long long pid;
  if (jint(q, "pid", 1, (1LL << 22), &pid)) return reply_errno(sock, EINVAL, "pid must be a positive integer");
  int follow = jbool(q, "follow", 0);
  if (follow < 0) return reply_errno(sock, EINVAL, "follow must be a boolean");
  char dir[4200], log[4300], old[4300], status[4300];
  snprintf(dir, sizeof dir, "%s/procs/%lld", g_state_dir, pid);
  snprintf(log, sizeof log, "%s/log", dir);
  snprintf(old, sizeof old, "%s/log.1", dir);
  snprintf(status, sizeof status, "%s/status", dir);
  struct stat st;
  snprintf(status, sizeof status, "%s/cmd.json", dir);
  if (stat(status, &st)) return reply_errno(sock, ESRCH, "process %lld not found", pid);
  snprintf(status, sizeof status, "%s/status", dir);
  fbuf = malloc(MAX_FRAME);
  /* Watch before reading so no write between the read and the wait is missed. */
  int in = follow ? inotify_init1(IN_CLOEXEC | IN_NONBLOCK) : -1;
  if (in >= 0) inotify_add_watch(in, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE);
  if (reply_ok(sock, "")) return -1;

  off_t off = 0;
  int fd = open_log(old);
  if (fd >= 0) {
    if (drain(fd, &off, sock) < 0) return -1;
    close(fd);
  }
  fd = open_log(log);
  off = 0;
  for (;;) {
    int done = !follow || !stat(status, &st);
    if (fd < 0) fd = open_log(log), off = 0;
    if (fd >= 0) {
      int k = drain(fd, &off, sock);
      if (k < 0) return -1;
      if (!same_file(fd, log)) { /* rotated: what we hold is log.1 now, fully read; go on with the new log */
        close(fd);
        fd = -1;
        continue;
      }
    }
    if (done) break;
    struct pollfd p[2] = {{in, POLLIN, 0}, {sock, POLLRDHUP, 0}};
    int r = poll(p, 2, in >= 0 ? 1000 : 100);
    if (r > 0 && p[1].revents) return -1; /* the client went away */
    if (r > 0 && p[0].revents) {
      char ev[4096];
      while (read(in, ev, sizeof ev) > 0) {}
    }
  }
  return send_exit(sock, status);
}
