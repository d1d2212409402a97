/* dial {port}: a TCP connection to a port inside the sandbox, for exposed ports and
 * port-forward. Connects to 127.0.0.1 (then ::1) from inside the sandbox's network namespace,
 * answers `r {"ok":true}`, then relays raw bytes both ways (no more frames) until both
 * directions are closed. Works whatever the sandbox's egress policy is. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "berth.h"

static int connect_loopback(int port, int *err) {
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a4, sizeof a4) == 0) return fd;
  *err = errno;
  if (fd >= 0) close(fd);
  fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&a6, sizeof a6) == 0) return fd;
  if (fd >= 0) close(fd);
  return -1; /* *err keeps the IPv4 reason: it is the one people expect */
}

/* Copies what is readable on `from` to `to`; 0 on EOF, -1 on error, 1 otherwise. */
static int pump(int from, int to, char *buf, size_t n) {
  ssize_t r = read(from, buf, n);
  if (r == 0) return 0;
  if (r < 0) return errno == EINTR || errno == EAGAIN ? 1 : -1;
  return send_all(to, buf, (size_t)r) ? -1 : 1;
}

int op_dial(int sock, reader *rd, const jval *q) {
  long long port;
  if (jint(q, "port", 1, 65535, &port)) return reply_errno(sock, EINVAL, "port must be 1..65535");
  int err = 0;
  int fd = connect_loopback((int)port, &err);
  if (fd < 0) return reply_errno(sock, err, "nothing accepts connections on port %lld in the sandbox", port);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (reply_ok(sock, "")) return -1;
  /* Bytes the client sent right after its request are already in the reader's buffer. */
  if (rd->end > rd->start && send_all(fd, rd->buf + rd->start, rd->end - rd->start)) return -1;
  static char buf[IO_CHUNK];
  int open_in = 1, open_out = 1; /* client->port, port->client */
  while (open_in || open_out) {
    struct pollfd p[2] = {{.fd = open_in ? sock : -1, .events = POLLIN}, {.fd = open_out ? fd : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      int r = pump(sock, fd, buf, sizeof buf);
      if (r < 0) break;
      if (r == 0) { open_in = 0; shutdown(fd, SHUT_WR); }
    }
    if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      int r = pump(fd, sock, buf, sizeof buf);
      if (r < 0) break;
      if (r == 0) { open_out = 0; shutdown(sock, SHUT_WR); }
    }
  }
  close(fd);
  return 0;
}
