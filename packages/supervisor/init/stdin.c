/* Kept stdin of background processes. A process spawned with `stdin: true` gets a pipe as stdin
 * whose write end its shim holds. The shim listens on $STATE/procs/<pid>/stdin.sock; a `stdin`
 * request is handed there (the handler passes the client's connection with SCM_RIGHTS) and the
 * shim serves one writer at a time, so writes of different clients never interleave. Sandbox
 * code can reach that socket too: it is the sandbox user's own process, nothing is granted. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "berth.h"

/* At most this many bytes in one `stdin` operation (a guard; the server sends far less). */
#define MAX_STDIN_WRITE (8u * 1024u * 1024u)
/* Writers waiting while another is served. */
#define STDIN_BACKLOG 64

static int sock_path(char *out, size_t n, long pid) {
  int k = snprintf(out, n, "%s/procs/%ld/stdin.sock", g_state_dir, pid);
  return k < 0 || (size_t)k >= n ? -1 : 0;
}

int stdin_path_fits(void) {
  char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
  return sock_path(p, sizeof p, 4194304L) == 0; /* the longest pid */
}

int keeper_open(stdin_keeper *k, long pid, int pipe_wr) {
  *k = (stdin_keeper){.pipe = pipe_wr, .listen = -1, .client = -1};
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (sock_path(a.sun_path, sizeof a.sun_path, pid)) return errno = ENAMETOOLONG, -1;
  snprintf(k->path, sizeof k->path, "%s", a.sun_path);
  unlink(k->path); /* a socket of the sandbox's previous life */
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, STDIN_BACKLOG)) {
    int e = errno;
    close(fd);
    unlink(k->path);
    return errno = e, -1;
  }
  k->listen = fd;
  return 0;
}

static void drop_client(stdin_keeper *k) {
  if (k->client >= 0) close(k->client);
  free(k->rd.buf);
  k->client = -1;
  k->stalled = 0;
  k->failed = 0;
  k->pend = 0;
}

static void close_pipe(stdin_keeper *k) {
  if (k->pipe >= 0) close(k->pipe);
  k->pipe = -1;
}

/* Takes the next queued writer: a control connection carrying the client's fd and 'c' (close
 * after writing) or 'w'. Answers it ready, or EPIPE when stdin is already closed. */
static void take_writer(stdin_keeper *k) {
  int c = accept4(k->listen, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return;
  char flag = 0;
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  struct iovec iov = {&flag, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct pollfd p = {c, POLLIN, 0};
  /* the handler sends right after connecting; one that does not within 1 s is not a handler */
  ssize_t n = poll(&p, 1, 1000) == 1 ? recvmsg(c, &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) : -1;
  close(c);
  struct cmsghdr *h = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
  if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS || h->cmsg_len != CMSG_LEN(sizeof(int))) return;
  int fd;
  memcpy(&fd, CMSG_DATA(h), sizeof fd);
  if (k->pipe < 0) {
    reply_errno(fd, EPIPE, "the process's stdin was closed");
    close(fd);
    return;
  }
  k->client = fd;
  k->close_after = flag == 'c';
  k->written = 0;
  rd_init(&k->rd, fd);
  if (reply_ok(fd, "")) drop_client(k);
}

/* Answers the writer with an error. Its connection stays open, the rest of what it sends is
 * read and dropped until its `e` or close: closing with its bytes unread would reset the
 * connection, and the client could lose the answer to the reset. */
static void fail_writer(stdin_keeper *k, int err, const char *msg) {
  if (reply_errno(k->client, err, "%s (%zu bytes were written)", msg, k->written)) return drop_client(k);
  shutdown(k->client, SHUT_WR);
  k->failed = 1;
  k->stalled = 0;
}

/* When the shim is about to exit: answers the writer (unless it was answered), then lingers (at
 * most 1 s) for it to close, dropping what it still sends. */
static void fail_writer_last(stdin_keeper *k, const char *msg) {
  if (!k->failed) fail_writer(k, EPIPE, msg);
  if (k->client < 0) return;
  char b[IO_CHUNK];
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &t);
    long left = 1000 - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
    struct pollfd p = {k->client, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left) <= 0 || read(k->client, b, sizeof b) <= 0) break;
  }
  drop_client(k);
}

/* Moves the writer's frames into the pipe until it would block (stalled) or the writer is done. */
static void serve_writer(stdin_keeper *k) {
  frame f;
  k->stalled = 0;
  while (k->client >= 0) {
    int r = rd_peek(&k->rd, &f);
    if (r < 0) { drop_client(k); return; }
    if (r == 0) {
      ssize_t n = rd_fill(&k->rd, 1);
      if (n == -2) return;
      if (n <= 0) { drop_client(k); return; } /* gone: what was written stays written */
      continue;
    }
    if (k->failed) { /* answered already: drop input until the client is done */
      if (f.type == 'e') { drop_client(k); return; }
    } else if (f.type == 'i') {
      if (k->written - k->pend + f.len > MAX_STDIN_WRITE) {
        fail_writer(k, EFBIG, "at most 8 MiB per stdin write");
        if (k->client < 0) return;
        rd_consume(&k->rd, &f);
        continue;
      }
      while (k->pend < f.len) {
        ssize_t w = write(k->pipe, f.data + k->pend, f.len - k->pend);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) { k->stalled = 1; return; } /* backpressure: stop reading */
        if (w < 0) {
          close_pipe(k);
          fail_writer(k, EPIPE, "the process closed its stdin");
          break;
        }
        k->pend += (size_t)w;
        k->written += (size_t)w;
      }
      if (k->client < 0) return; /* the error answer could not be sent */
      k->pend = 0;
    } else if (f.type == 'e') {
      if (k->close_after) close_pipe(k);
      char fields[64];
      snprintf(fields, sizeof fields, ",\"written\":%zu,\"closed\":%s", k->written, k->pipe < 0 ? "true" : "false");
      reply_ok(k->client, fields);
      drop_client(k);
      return;
    } /* other frame types are ignored, as everywhere */
    rd_consume(&k->rd, &f);
  }
}

int keeper_pollfds(stdin_keeper *k, struct pollfd *p, int slots[3]) {
  int n = 0;
  slots[0] = slots[1] = slots[2] = -1;
  if (k->listen < 0) return 0;
  if (k->client < 0) {
    slots[0] = n;
    p[n++] = (struct pollfd){k->listen, POLLIN, 0};
  } else {
    slots[1] = n;
    p[n++] = (struct pollfd){k->client, (short)(k->stalled ? POLLRDHUP : POLLIN | POLLRDHUP), 0};
    if (k->stalled) {
      slots[2] = n;
      p[n++] = (struct pollfd){k->pipe, POLLOUT, 0};
    }
  }
  return n;
}

void keeper_service(stdin_keeper *k, const struct pollfd *p, const int slots[3]) {
  if (slots[0] >= 0 && p[slots[0]].revents) take_writer(k);
  if (slots[1] >= 0 && p[slots[1]].revents) {
    if (k->stalled && p[slots[1]].revents & (POLLRDHUP | POLLHUP | POLLERR)) drop_client(k);
    else serve_writer(k);
  }
  if (slots[2] >= 0 && p[slots[2]].revents && k->client >= 0) serve_writer(k);
}

void keeper_finish(stdin_keeper *k) {
  if (k->listen < 0) return;
  unlink(k->path); /* first: later writers find no socket, and their handler sees the status */
  if (k->client >= 0) fail_writer_last(k, "the process exited");
  close_pipe(k);
  for (;;) { /* writers queued before the unlink get an answer, not a reset */
    struct pollfd p = {k->listen, POLLIN, 0};
    if (poll(&p, 1, 0) != 1) break;
    take_writer(k);
  }
  close(k->listen);
  k->listen = -1;
}

int op_stdin(int sock, const jval *q) {
  long long pid;
  int close_after = jbool(q, "close", 0);
  if (jint(q, "pid", 1, (1LL << 22), &pid)) return reply_errno(sock, EINVAL, "pid must be a positive integer");
  if (close_after < 0) return reply_errno(sock, EINVAL, "close must be a boolean");
  char path[4200];
  struct stat st;
  snprintf(path, sizeof path, "%s/procs/%lld/cmd.json", g_state_dir, pid);
  if (stat(path, &st)) return reply_errno(sock, ESRCH, "process %lld not found", pid);
  snprintf(path, sizeof path, "%s/procs/%lld/status", g_state_dir, pid);
  if (!stat(path, &st)) return reply_errno(sock, EPIPE, "process %lld has exited", pid);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (sock_path(a.sun_path, sizeof a.sun_path, (long)pid)) return reply_errno(sock, ENAMETOOLONG, "state dir path too long");
  int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c < 0) return reply_errno(sock, errno, "socket: %s", strerror(errno));
  if (connect(c, (struct sockaddr *)&a, sizeof a)) {
    int e = errno;
    close(c);
    if (e == ENOENT && stat(path, &st)) /* (a status now: it exited since the check above) */
      return reply_errno(sock, EPIPE, "process %lld was not started with stdin: start it with stdin: true to write to it", pid);
    if (e == EAGAIN) return reply_errno(sock, EAGAIN, "too many writers are waiting for process %lld's stdin", pid);
    return reply_errno(sock, EPIPE, "process %lld has exited", pid);
  }
  /* The shim answers the client from here on (ready, then the result). */
  char flag = close_after ? 'c' : 'w';
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(int))];
  } u;
  memset(&u, 0, sizeof u);
  struct iovec iov = {&flag, 1};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *h = CMSG_FIRSTHDR(&m);
  h->cmsg_level = SOL_SOCKET;
  h->cmsg_type = SCM_RIGHTS;
  h->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(h), &sock, sizeof sock);
  ssize_t n;
  while ((n = sendmsg(c, &m, MSG_NOSIGNAL)) < 0 && errno == EINTR) {}
  close(c);
  if (n != 1) return reply_errno(sock, EPIPE, "process %lld has exited", pid);
  return 0;
}
