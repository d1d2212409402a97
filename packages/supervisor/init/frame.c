/* Framing: type (1 byte) + length (4 bytes, big-endian) + payload (at most MAX_FRAME). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "berth.h"

#define HDR 5

void rd_init(reader *r, int fd) {
  r->fd = fd;
  r->buf = NULL;
  r->start = r->end = r->cap = 0;
}

ssize_t rd_fill(reader *r, int nonblocking) {
  if (!r->buf) {
    r->cap = HDR + MAX_FRAME + IO_CHUNK;
    r->buf = malloc(r->cap); /* pages are only touched as frames arrive */
    if (!r->buf) return -1;
  }
  if (r->start == r->end) r->start = r->end = 0;
  if (r->cap - r->end < IO_CHUNK && r->start > 0) { /* compact: only a partial frame remains */
    memmove(r->buf, r->buf + r->start, r->end - r->start);
    r->end -= r->start;
    r->start = 0;
  }
  if (r->end == r->cap) return -1; /* cannot happen with a valid length check, but never overflow */
  for (;;) {
    ssize_t n = recv(r->fd, r->buf + r->end, r->cap - r->end, nonblocking ? MSG_DONTWAIT : 0);
    if (n > 0) { r->end += (size_t)n; return n; }
    if (n == 0) return 0;
    if (errno == EINTR) continue;
    return errno == EAGAIN || errno == EWOULDBLOCK ? -2 : -1;
  }
}

int rd_peek(reader *r, frame *f) {
  size_t avail = r->end - r->start;
  if (avail < HDR) return 0;
  unsigned char *h = r->buf + r->start;
  uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
  if (len > MAX_FRAME) return -1;
  if (avail < HDR + (size_t)len) return 0;
  f->type = (char)h[0];
  f->data = h + HDR;
  f->len = len;
  return 1;
}

void rd_consume(reader *r, const frame *f) { r->start += HDR + (size_t)f->len; }

int rd_next(reader *r, frame *f) {
  for (;;) {
    int k = rd_peek(r, f);
    if (k) return k > 0 ? 0 : -1;
    if (rd_fill(r, 0) <= 0) return -1;
  }
}

int send_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int send_frame(int fd, char type, const void *p, size_t n) {
  if (n > MAX_FRAME) return -1;
  unsigned char h[HDR] = {(unsigned char)type, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                          (unsigned char)(n >> 8), (unsigned char)n};
  struct iovec iov[2] = {{h, HDR}, {(void *)p, n}};
  struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
  size_t total = HDR + n;
  while (total > 0) {
    ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    total -= (size_t)w;
    while (w > 0 && m.msg_iovlen > 0) { /* advance past what was sent */
      if ((size_t)w >= m.msg_iov[0].iov_len) {
        w -= (ssize_t)m.msg_iov[0].iov_len;
        m.msg_iov++;
        m.msg_iovlen--;
      } else {
        m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + w;
        m.msg_iov[0].iov_len -= (size_t)w;
        w = 0;
      }
    }
  }
  return 0;
}

int send_json(int fd, char type, jbuf *b) { return send_frame(fd, type, b->buf, b->len); }

int reply_ok(int fd, const char *fields) {
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"ok\":true");
  jb_puts(&b, fields);
  jb_puts(&b, "}");
  int rc = send_json(fd, 'r', &b);
  jb_free(&b);
  return rc;
}

const char *errno_name(int err) {
  const char *n = strerrorname_np(err);
  return n ? n : "EIO";
}

/* {"ok":false,"errno":..,["phase":..,"reason":..,]"message":..}; phase NULL leaves phase and reason out. */
static int vreply_error(int fd, int err, const char *phase, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"ok\":false,\"errno\":");
  jb_cstr(&b, errno_name(err));
  if (phase) {
    jb_puts(&b, ",\"phase\":");
    jb_cstr(&b, phase);
    jb_puts(&b, ",\"reason\":");
    jb_cstr(&b, strerror(err));
  }
  jb_puts(&b, ",\"message\":");
  jb_cstr(&b, msg);
  jb_puts(&b, "}");
  int rc = send_json(fd, 'r', &b);
  jb_free(&b);
  return rc;
}

int reply_errno(int fd, int err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vreply_error(fd, err, NULL, fmt, ap);
  va_end(ap);
  return rc;
}

int reply_phase(int fd, int err, const char *phase, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = vreply_error(fd, err, phase, fmt, ap);
  va_end(ap);
  return rc;
}

const char *signal_name(int sig, char *buf, size_t n) {
  const char *a = sigabbrev_np(sig);
  if (a) snprintf(buf, n, "SIG%s", a);
  else snprintf(buf, n, "SIG%d", sig);
  return buf;
}

/* {"exitCode":N,"signal":null} or {"exitCode":null,"signal":"SIGKILL"} for a wait status. */
int exit_json(jbuf *b, int status) {
  char sn[32];
  if (WIFSIGNALED(status)) {
    jb_puts(b, "{\"exitCode\":null,\"signal\":");
    jb_cstr(b, signal_name(WTERMSIG(status), sn, sizeof sn));
    jb_puts(b, "}");
  } else {
    jb_printf(b, "{\"exitCode\":%d,\"signal\":null}", WEXITSTATUS(status));
  }
  return 0;
}

/* ---- small file helpers ---- */

int set_cloexec(int fd) {
  int fl = fcntl(fd, F_GETFD);
  return fl < 0 ? -1 : fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
}

int set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

char *read_small_file(const char *path, size_t max, size_t *len) {
  /* O_NONBLOCK: the state dir is writable by sandbox code, which could plant a FIFO there. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
    close(fd);
    errno = EINVAL;
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (!buf) return NULL;
  buf[got] = 0;
  if (len) *len = got;
  return buf;
}

int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int write_file_atomic(const char *path, const char *data, size_t len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return -1;
  int ok = write_all(fd, data, len) == 0;
  close(fd);
  if (!ok || rename(tmp, path)) {
    unlink(tmp);
    return -1;
  }
  return 0;
}
