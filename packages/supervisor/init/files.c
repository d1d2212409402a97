/* File operations. init runs as the sandbox user, so the kernel does the permission checks;
 * these functions only add lstat semantics, atomic writes and symlink-safe recursive removal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth.h"

#define MAX_LIST 100000
#define MAX_REMOVE_DEPTH 512

static const char *path_arg(int sock, const jval *q, const char *key) {
  const char *p = jstr(q, key);
  if (!p || !*p || strlen(p) >= 4096) {
    reply_errno(sock, EINVAL, "%s must be a non-empty string without NUL, shorter than 4096 bytes", key);
    return NULL;
  }
  return p;
}

static const char *base_name(const char *path) {
  size_t n = strlen(path);
  while (n > 1 && path[n - 1] == '/') n--;
  const char *b = path + n;
  while (b > path && b[-1] != '/') b--;
  return b;
}

void entry_json(jbuf *b, const char *name, const struct stat *st) {
  const char *type = S_ISREG(st->st_mode) ? "file" : S_ISDIR(st->st_mode) ? "dir" : S_ISLNK(st->st_mode) ? "symlink" : "other";
  jb_puts(b, "{\"name\":");
  jb_cstr(b, name);
  jb_printf(b, ",\"type\":\"%s\",\"size\":%lld,\"mode\":%u,\"mtime\":", type, (long long)st->st_size,
            (unsigned)(st->st_mode & 07777));
  jb_iso_time(b, &st->st_mtim);
  jb_puts(b, "}");
}

int op_stat(int sock, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  struct stat st;
  if (lstat(path, &st)) return reply_errno(sock, errno, "stat %s: %s", path, strerror(errno));
  jbuf b;
  jb_init(&b);
  jb_puts(&b, "{\"ok\":true,\"entry\":");
  char nm[4096];
  size_t n = strlen(base_name(path));
  snprintf(nm, sizeof nm, "%s", base_name(path));
  while (n > 1 && nm[n - 1] == '/') nm[--n] = 0;
  entry_json(&b, nm, &st);
  jb_puts(&b, "}");
  return send_json(sock, 'r', &b);
}

typedef struct {
  char *name;
  struct stat st;
} dent;

static int by_name(const void *a, const void *b) { return strcmp(((const dent *)a)->name, ((const dent *)b)->name); }

int op_list(int sock, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return reply_errno(sock, errno, "list %s: %s", path, strerror(errno));
  DIR *d = fdopendir(fd);
  if (!d) return reply_errno(sock, errno, "list %s: %s", path, strerror(errno));
  dent *v = NULL;
  size_t n = 0, cap = 0;
  int truncated = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (n == MAX_LIST) { truncated = 1; break; }
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      v = realloc(v, cap * sizeof *v);
      if (!v) return reply_errno(sock, ENOMEM, "list %s: out of memory", path);
    }
    if (fstatat(fd, e->d_name, &v[n].st, AT_SYMLINK_NOFOLLOW)) continue; /* vanished meanwhile */
    v[n++].name = strdup(e->d_name);
  }
  qsort(v, n, sizeof *v, by_name);
  /* Entries go in batches of r frames below the frame limit; `more` says another follows. */
  jbuf b, one;
  jb_init(&b);
  jb_init(&one);
  jb_puts(&b, "{\"ok\":true,\"entries\":[");
  size_t inbatch = 0;
  for (size_t i = 0; i < n; i++) {
    one.len = 0;
    entry_json(&one, v[i].name, &v[i].st);
    if (inbatch && b.len + one.len + 64 > MAX_FRAME) {
      jb_puts(&b, "],\"more\":true}");
      if (send_json(sock, 'r', &b)) return -1;
      b.len = 0;
      jb_puts(&b, "{\"ok\":true,\"entries\":[");
      inbatch = 0;
    }
    if (inbatch++) jb_puts(&b, ",");
    jb_raw(&b, one.buf, one.len);
  }
  jb_printf(&b, "],\"more\":false,\"truncated\":%s}", truncated ? "true" : "false");
  return send_json(sock, 'r', &b);
}

int op_read(int sock, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  /* O_NONBLOCK so a FIFO cannot hang the handler; only regular files are read */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return reply_errno(sock, errno, "read %s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st)) return reply_errno(sock, errno, "read %s: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return reply_errno(sock, EISDIR, "read %s: is a directory", path);
  if (!S_ISREG(st.st_mode)) return reply_errno(sock, EINVAL, "read %s: not a regular file", path);
  fcntl(fd, F_SETFL, 0);
  char fields[64];
  snprintf(fields, sizeof fields, ",\"size\":%lld", (long long)st.st_size);
  if (reply_ok(sock, fields)) return -1;
  /* Exactly `size` bytes at most, so the announced size stays true if the file grows. */
  size_t chunk = 256 * 1024, left = (size_t)st.st_size;
  char *buf = malloc(chunk);
  while (buf && left > 0) {
    ssize_t n = read(fd, buf, left < chunk ? left : chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (send_frame(sock, '1', buf, (size_t)n)) return -1;
    left -= (size_t)n;
  }
  return send_frame(sock, 'e', NULL, 0);
}

/* mkdir -p of `path` (or only of its parent when !include_last). */
int mkdir_parents(const char *path, int include_last) {
  char p[4096];
  if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) { errno = ENAMETOOLONG; return -1; }
  size_t n = strlen(p);
  while (n > 1 && p[n - 1] == '/') p[--n] = 0;
  if (!include_last) {
    char *s = strrchr(p, '/');
    if (!s) return 0;
    if (s == p) return 0;
    *s = 0;
  }
  struct stat st;
  if (!stat(p, &st)) {
    if (S_ISDIR(st.st_mode)) return 0;
    errno = include_last ? EEXIST : ENOTDIR;
    return -1;
  }
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0755) && errno != EEXIST) return -1;
    *s = '/';
  }
  if (mkdir(p, 0755) && errno != EEXIST) return -1;
  if (stat(p, &st)) return -1;
  if (!S_ISDIR(st.st_mode)) { errno = include_last ? EEXIST : ENOTDIR; return -1; }
  return 0;
}

int op_mkdir(int sock, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  if (mkdir_parents(path, 1)) return reply_errno(sock, errno, "mkdir %s: %s", path, strerror(errno));
  return reply_ok(sock, "");
}

int op_move(int sock, const jval *q) {
  const char *from = path_arg(sock, q, "from");
  if (!from) return -1;
  const char *to = path_arg(sock, q, "to");
  if (!to) return -1;
  struct stat st;
  if (lstat(from, &st)) return reply_errno(sock, errno, "move %s: %s", from, strerror(errno));
  if (mkdir_parents(to, 0) || rename(from, to))
    return reply_errno(sock, errno, "move %s to %s: %s", from, to, strerror(errno));
  return reply_ok(sock, "");
}

/* Empties the directory `dfd` (which it closes) without ever following a symlink. */
static int remove_tree(int dfd, int depth) {
  if (depth > MAX_REMOVE_DEPTH) { close(dfd); errno = ELOOP; return -1; }
  DIR *d = fdopendir(dfd);
  if (!d) { close(dfd); return -1; }
  int rc = 0;
  struct dirent *e;
  /* Two passes: entries removed during readdir may hide others; the second pass catches them. */
  for (int pass = 0; pass < 2 && rc == 0; pass++, rewinddir(d))
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (!unlinkat(dfd, e->d_name, 0)) continue; /* files and symlinks: the common case */
    if (errno == ENOENT) continue;
    if (errno != EISDIR && errno != EPERM) { rc = -1; break; }
    int sub = openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      if (errno == ENOTDIR) errno = EPERM; /* unlinkat refused a non-directory */
      rc = -1;
      break;
    }
    if (remove_tree(sub, depth + 1) || unlinkat(dfd, e->d_name, AT_REMOVEDIR)) { rc = -1; break; }
  }
  int saved = errno;
  closedir(d);
  errno = saved;
  return rc;
}

int op_remove(int sock, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  int rec = jbool(q, "recursive", 0);
  if (rec < 0) return reply_errno(sock, EINVAL, "recursive must be a boolean");
  struct stat st;
  if (lstat(path, &st)) return reply_errno(sock, errno, "remove %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (unlink(path)) return reply_errno(sock, errno, "remove %s: %s", path, strerror(errno));
    return reply_ok(sock, "");
  }
  if (rec) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || remove_tree(fd, 0)) return reply_errno(sock, errno, "remove %s: %s", path, strerror(errno));
  }
  if (rmdir(path)) {
    int err = errno == EEXIST ? ENOTEMPTY : errno;
    return reply_errno(sock, err, "remove %s: %s", path, strerror(err));
  }
  return reply_ok(sock, "");
}

int op_write(int sock, reader *rd, const jval *q) {
  const char *path = path_arg(sock, q, "path");
  if (!path) return -1;
  long long mode = -1;
  if (jget(q, "mode") && jget(q, "mode")->type != J_NULL && jint(q, "mode", 0, 07777, &mode))
    return reply_errno(sock, EINVAL, "mode must be a number between 0 and 07777");
  struct stat st;
  if (!lstat(path, &st)) {
    if (S_ISDIR(st.st_mode)) return reply_errno(sock, EISDIR, "write %s: is a directory", path);
    if (mode < 0 && S_ISREG(st.st_mode)) mode = st.st_mode & 07777; /* overwrite keeps the mode */
  }
  if (mode < 0) mode = 0644;
  if (mkdir_parents(path, 0)) return reply_errno(sock, errno, "write %s: %s", path, strerror(errno));
  /* The temp file sits next to the target so rename(2) is atomic; a signal handler removes it. */
  const char *base = base_name(path);
  int dl = (int)(base - path);
  if (snprintf(g_tmp_path, sizeof g_tmp_path, "%.*s.%s.berth-XXXXXX", dl, path, base) >= (int)sizeof g_tmp_path) {
    g_tmp_path[0] = 0;
    return reply_errno(sock, ENAMETOOLONG, "write %s: name too long", path);
  }
  int fd = mkostemp(g_tmp_path, O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    g_tmp_path[0] = 0;
    return reply_errno(sock, err, "write %s: %s", path, strerror(err));
  }
  fchmod(fd, (mode_t)mode);
  if (reply_ok(sock, "")) goto abort;
  size_t total = 0;
  frame f;
  for (;;) {
    if (rd_next(rd, &f)) goto abort; /* client gone or broken frame: leave nothing behind */
    if (f.type == 'e') break;
    if (f.type != 'i') {
      reply_errno(sock, EINVAL, "write %s: unexpected frame", path);
      goto abort;
    }
    if (write_all(fd, f.data, f.len)) {
      int err = errno;
      reply_errno(sock, err, "write %s: %s", path, strerror(err));
      goto abort;
    }
    total += f.len;
    rd_consume(rd, &f);
  }
  if (close(fd)) { fd = -1; reply_errno(sock, errno, "write %s: %s", path, strerror(errno)); goto abort; }
  fd = -1;
  if (rename(g_tmp_path, path)) { reply_errno(sock, errno, "write %s: %s", path, strerror(errno)); goto abort; }
  g_tmp_path[0] = 0;
  char fields[64];
  snprintf(fields, sizeof fields, ",\"size\":%zu", total);
  return reply_ok(sock, fields);
abort:
  if (fd >= 0) close(fd);
  unlink(g_tmp_path);
  g_tmp_path[0] = 0;
  return -1;
}
