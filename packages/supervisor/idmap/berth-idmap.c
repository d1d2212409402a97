/* berth-idmap: makes an idmapped mount for a root sandbox (host side; never inside a sandbox).
 *
 *   berth-idmap <host-base> <count> <source> <target> [ro]
 *
 * Clones the mount at <source> and attaches it at <target> with ids shifted: host id N shows as
 * <host-base>+N, so a template owned by host root reads as owned by root inside a user namespace
 * that maps 0..count-1 to <host-base>... The files themselves are not touched (no copy, no chown).
 * The user namespace that carries the mapping is made by a child that waits on a pipe; it exits
 * when the mount is done (the mount keeps a reference to the namespace, not to the process). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>

static int fail(const char *what) {
  fprintf(stderr, "berth-idmap: %s: %s\n", what, strerror(errno));
  return 1;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int parse_id(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || *s == '\0' || *end != '\0' || v > max) return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  unsigned long base, count;
  int ro = argc == 6 && strcmp(argv[5], "ro") == 0;
  if ((argc != 5 && !ro) || parse_id(argv[1], UINT_MAX, &base) || parse_id(argv[2], UINT_MAX, &count) ||
      count == 0 || base + count > UINT_MAX) {
    fprintf(stderr, "usage: berth-idmap <host-base> <count> <source> <target> [ro]\n");
    return 2;
  }
  int gate[2];
  if (pipe2(gate, O_CLOEXEC)) return fail("pipe");
  pid_t child = fork();
  if (child < 0) return fail("fork");
  if (child == 0) {
    close(gate[1]);
    if (unshare(CLONE_NEWUSER)) _exit(1);
    char c;
    /* Holds the namespace until the parent is done with it (the parent closes its end). */
    while (read(gate[0], &c, 1) < 0 && errno == EINTR) {}
    _exit(0);
  }
  close(gate[0]);
  int rc = 1;
  char path[64], map[96];
  /* The child must have unshared before its maps are written: wait until its user ns differs. */
  char self_ns[64] = "", child_ns[64] = "";
  readlink("/proc/self/ns/user", self_ns, sizeof self_ns - 1);
  snprintf(path, sizeof path, "/proc/%d/ns/user", child);
  for (int i = 0; i < 10000; i++) {
    memset(child_ns, 0, sizeof child_ns);
    if (readlink(path, child_ns, sizeof child_ns - 1) < 0) break;
    if (strcmp(self_ns, child_ns) != 0) break;
    usleep(100);
  }
  if (strcmp(self_ns, child_ns) == 0) {
    fprintf(stderr, "berth-idmap: the helper process did not enter a user namespace\n");
    goto out;
  }
  snprintf(map, sizeof map, "0 %lu %lu\n", base, count);
  snprintf(path, sizeof path, "/proc/%d/uid_map", child);
  if (write_file(path, map)) { fail("uid_map"); goto out; }
  snprintf(path, sizeof path, "/proc/%d/gid_map", child);
  if (write_file(path, map)) { fail("gid_map"); goto out; }
  snprintf(path, sizeof path, "/proc/%d/ns/user", child);
  int userns = open(path, O_RDONLY | O_CLOEXEC);
  if (userns < 0) { fail("open user namespace"); goto out; }
  int tree = syscall(SYS_open_tree, AT_FDCWD, argv[3], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) { fail("open_tree"); goto out; }
  struct mount_attr attr = {0};
  attr.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (ro ? MOUNT_ATTR_RDONLY : 0);
  attr.userns_fd = userns;
  if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr)) { fail("mount_setattr"); goto out; }
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, argv[4], MOVE_MOUNT_F_EMPTY_PATH)) { fail("move_mount"); goto out; }
  rc = 0;
out:
  close(gate[1]);
  waitpid(child, NULL, 0);
  return rc;
}
