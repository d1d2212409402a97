/* berth-init: shared declarations. See ../PROTOCOL.md for the wire protocol. */
#ifndef BERTH_H
#define BERTH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#define BERTH_VERSION "1"
/* Largest frame payload in either direction (the client enforces the same bound). */
#define MAX_FRAME (1u << 20)
/* Chunk size for output and file data frames. */
#define IO_CHUNK (64u * 1024u)

/* ---- json.c: a tiny, bounded JSON reader and writer ---- */
enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
typedef struct jval {
  enum jtype type;
  int boolean;
  double num;
  char *str;        /* J_STR: decoded bytes, NUL-terminated */
  size_t len;       /* J_STR: length; J_ARR/J_OBJ: number of items */
  struct jval **items;
  char **keys;      /* J_OBJ only */
} jval;

jval *json_parse(const char *s, size_t n);
jval *jget(const jval *obj, const char *key);
/* A string field without embedded NUL bytes, or NULL. */
const char *jstr(const jval *obj, const char *key);
/* An integer field in [lo, hi]; returns 0 when present and valid, -1 otherwise. */
int jint(const jval *obj, const char *key, long long lo, long long hi, long long *out);
/* A boolean field; `def` when absent; -1 when present but not a boolean. */
int jbool(const jval *obj, const char *key, int def);

typedef struct {
  char *buf;
  size_t len, cap;
} jbuf;
void jb_init(jbuf *b);
void jb_free(jbuf *b);
void jb_raw(jbuf *b, const char *s, size_t n);
void jb_puts(jbuf *b, const char *s);
void jb_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal: escapes quotes, control chars; invalid UTF-8 bytes become U+FFFD. */
void jb_str(jbuf *b, const char *s, size_t n);
void jb_cstr(jbuf *b, const char *s);
void jb_iso_time(jbuf *b, const struct timespec *ts);

/* ---- frame.c: framing over the connection ---- */
typedef struct {
  int fd;
  unsigned char *buf;
  size_t start, end, cap;
} reader;
typedef struct {
  char type;
  unsigned char *data;
  uint32_t len;
} frame;

void rd_init(reader *r, int fd);
/* One recv into the buffer: >0 bytes read, 0 peer closed, -1 error, -2 would block. */
ssize_t rd_fill(reader *r, int nonblocking);
/* 1: a whole frame is at the head (valid until rd_consume); 0: need more; -1: protocol error. */
int rd_peek(reader *r, frame *f);
void rd_consume(reader *r, const frame *f);
/* Blocks for the next whole frame: 0 ok, -1 closed or protocol error. */
int rd_next(reader *r, frame *f);

int send_all(int fd, const void *p, size_t n);
int send_frame(int fd, char type, const void *p, size_t n);
int send_json(int fd, char type, jbuf *b);
int reply_ok(int fd, const char *fields); /* fields: "" or ",\"k\":v" */
int reply_errno(int fd, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same, for a process that could not be started: adds "phase" (setup, chdir, landlock, exec:
 * the step that failed, for the client to switch on) and "reason" (strerror of err). */
int reply_phase(int fd, int err, const char *phase, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
const char *errno_name(int err);
const char *signal_name(int sig, char *buf, size_t n);
int exit_json(jbuf *b, int status);

/* ---- main.c ---- */
extern const char *g_state_dir;
/* The foreground process group a handler kills on SIGTERM or disconnect (0: none). */
extern volatile pid_t g_fg_pgid;
/* A temp file a handler removes on SIGTERM (empty: none). */
extern char g_tmp_path[4096];

/* ---- exec.c ---- */
typedef struct {
  char **argv;
  char **envp;
  const char *cwd;
  /* NULL: no confinement; else the only paths (NULL-terminated) the process may change (Landlock). */
  char **writable;
} launch_spec;
/* Parses cmd/env/cwd of a request; answers EINVAL itself and returns -1 when malformed. */
int parse_launch(int sock, const jval *q, launch_spec *ls);
/* Forks and execs in a new session with the given stdio; -1 (and *err, *what) when it failed. */
pid_t launch(const launch_spec *ls, int in, int out, int errfd, int ctty, int *err, const char **what);
/* The protocol's phase for launch's `what`: setup (pipe, fork, dup2), chdir, landlock or exec. */
const char *launch_phase(const char *what);
void child_reset_signals(void);
int op_exec(int sock, reader *rd, const jval *q);

/* ---- procs.c ---- */
int op_spawn(int sock, const jval *q);
int op_procs(int sock, const jval *q);
int op_proc(int sock, const jval *q);
int op_signal(int sock, const jval *q);

/* ---- stdin.c: the kept stdin of a background process, served by its shim ---- */
struct pollfd;
typedef struct {
  int pipe;       /* write end of the process's stdin; -1 once closed */
  int listen;     /* $STATE/procs/<pid>/stdin.sock; -1 when stdin is not kept */
  int client;     /* the writer being served (one at a time); -1 when none */
  int close_after, stalled, failed; /* failed: answered with an error, input is dropped */
  size_t pend, written; /* bytes of the head frame already in the pipe; bytes this writer wrote */
  reader rd;
  char path[4200];
} stdin_keeper;
/* 1 when the socket path of any pid fits in sun_path (checked before a process is started). */
int stdin_path_fits(void);
/* Binds the process's stdin socket; -1 with errno when it cannot. */
int keeper_open(stdin_keeper *k, long pid, int pipe_wr);
/* Adds the keeper's fds to p (at most 2); slots say where (-1: not polled). Returns how many. */
int keeper_pollfds(stdin_keeper *k, struct pollfd *p, int slots[3]);
void keeper_service(stdin_keeper *k, const struct pollfd *p, const int slots[3]);
/* The process exited: answers the writer and queued ones EPIPE, removes the socket. */
void keeper_finish(stdin_keeper *k);
int op_stdin(int sock, const jval *q);

/* ---- logs.c ---- */
int op_logs(int sock, const jval *q);

/* ---- files.c ---- */
int op_stat(int sock, const jval *q);
int op_list(int sock, const jval *q);
int op_read(int sock, const jval *q);
int op_write(int sock, reader *rd, const jval *q);
int op_remove(int sock, const jval *q);
int op_mkdir(int sock, const jval *q);
int op_move(int sock, const jval *q);
int mkdir_parents(const char *path, int include_last);
void entry_json(jbuf *b, const char *name, const struct stat *st);

/* ---- watch.c ---- */
int op_watch(int sock, reader *rd, const jval *q);
/* Marks processes of an earlier life of the sandbox (no status) as killed; at start. */
void procs_close_stale(void);
/* ---- dial.c ---- */
int op_dial(int sock, reader *rd, const jval *q);

/* tool.c: `berth-init --tool CMD`, a tool's shell as the OOM killer's first choice (not PID 1). */
int tool_main(int argc, char **argv);

/* ---- util ---- */
int set_cloexec(int fd);
int set_nonblock(int fd);
/* Reads at most `max` bytes of a small file into a NUL-terminated malloc'd buffer. */
char *read_small_file(const char *path, size_t max, size_t *len);
int write_all(int fd, const void *p, size_t n);
/* Writes a file atomically (temp + rename). */
int write_file_atomic(const char *path, const char *data, size_t len);

#endif
