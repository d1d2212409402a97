/* watch: inotify events on a path (and, when recursive, every directory below it, including
 * ones created later) as `w` frames until the client closes the connection. */
#include <dirent.h>
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

#define MAX_WATCHES 65536
#define MASK (IN_CREATE | IN_MOVED_TO | IN_MODIFY | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB | IN_DELETE_SELF)

typedef struct {
  int wd;
  char *path;
} wentry;

static wentry *ws;
static size_t nws, capws;
static int ino;

static const char *wd_path(int wd) {
  for (size_t i = 0; i < nws; i++)
    if (ws[i].wd == wd) return ws[i].path;
  return NULL;
}

static void add_watch(const char *path, int recursive, int depth) {
  if (nws >= MAX_WATCHES || depth > 64) return;
  int wd = inotify_add_watch(ino, path, MASK | IN_DONT_FOLLOW | (depth ? IN_ONLYDIR : 0));
  if (wd < 0) return;
  if (!wd_path(wd)) {
    if (nws == capws) {
      capws = capws ? capws * 2 : 64;
      ws = realloc(ws, capws * sizeof *ws);
      if (!ws) abort();
    }
    ws[nws].wd = wd;
    ws[nws++].path = strdup(path);
  }
  if (!recursive) return;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (!d) {
    if (fd >= 0) close(fd);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char sub[8192];
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    add_watch(sub, recursive, depth + 1);
  }
  closedir(d);
}

static int send_event(int sock, const char *type, const char *dir, const char *name) {
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"type\":");
  jb_cstr(&b, type);
  jb_puts(&b, ",\"path\":");
  if (name && *name) {
    size_t dl = strlen(dir);
    char *p = malloc(dl + strlen(name) + 2);
    sprintf(p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", name);
    jb_cstr(&b, p);
    free(p);
  } else {
    jb_cstr(&b, dir);
  }
  jb_puts(&b, "}");
  int rc = send_json(sock, 'w', &b);
  jb_free(&b);
  return rc;
}

int op_watch(int sock, reader *rd, const jval *q) {
  (void)rd;
  const char *path = jstr(q, "path");
  if (!path || !*path || strlen(path) >= 4096) return reply_errno(sock, EINVAL, "path must be a non-empty string");
  int rec = jbool(q, "recursive", 0);
  if (rec < 0) return reply_errno(sock, EINVAL, "recursive must be a boolean");
  char root[4096];
  snprintf(root, sizeof root, "%s", path);
  size_t rl = strlen(root);
  while (rl > 1 && root[rl - 1] == '/') root[--rl] = 0;
  struct stat st;
  if (lstat(root, &st)) return reply_errno(sock, errno, "watch %s: %s", root, strerror(errno));
  ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (ino < 0) return reply_errno(sock, errno, "watch %s: %s (inotify instances)", root, strerror(errno));
  if (inotify_add_watch(ino, root, MASK | IN_DONT_FOLLOW) < 0) { /* report why the root cannot be watched */
    /* inotify says ENOSPC when the watch limit is reached: that is no disk space matter */
    int e = errno == ENOSPC ? EMFILE : errno;
    return reply_errno(sock, e, "watch %s: %s", root, errno == ENOSPC ? "too many inotify watches" : strerror(errno));
  }
  add_watch(root, rec && S_ISDIR(st.st_mode), 0);
  if (reply_ok(sock, "")) return -1;

  char *buf = malloc(64 * 1024);
  char last[8192] = "";
  for (;;) {
    struct pollfd p[2] = {{ino, POLLIN, 0}, {sock, POLLIN | POLLRDHUP, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (p[1].revents) return 0; /* the client closed (it sends nothing on a watch) */
    ssize_t n = read(ino, buf, 64 * 1024);
    if (n <= 0) continue;
    last[0] = 0;
    for (char *c = buf; c < buf + n;) {
      struct inotify_event *e = (struct inotify_event *)c;
      c += sizeof *e + e->len;
      const char *dir = wd_path(e->wd);
      if (!dir) continue;
      const char *type = e->mask & (IN_CREATE | IN_MOVED_TO)             ? "create"
                         : e->mask & (IN_DELETE | IN_MOVED_FROM)         ? "delete"
                         : e->mask & (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB) ? "modify"
                                                                          : NULL;
      if (e->mask & IN_DELETE_SELF && e->wd == ws[0].wd && !e->len) type = "delete";
      if (e->mask & IN_IGNORED) {
        for (size_t i = 0; i < nws; i++)
          if (ws[i].wd == e->wd) ws[i].wd = -1; /* the kernel dropped it */
      }
      if (!type) continue;
      const char *name = e->len ? e->name : NULL;
      /* Collapse repeats within one read (a write is often MODIFY+CLOSE_WRITE). */
      char key[8192];
      snprintf(key, sizeof key, "%s\n%d\n%s", type, e->wd, name ? name : "");
      if (!strcmp(key, last)) continue;
      snprintf(last, sizeof last, "%s", key);
      if (send_event(sock, type, dir, name)) return -1;
      if (rec && e->mask & IN_ISDIR && e->mask & (IN_CREATE | IN_MOVED_TO) && name) {
        char sub[8192];
        snprintf(sub, sizeof sub, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
        add_watch(sub, 1, 1);
      }
    }
  }
}
