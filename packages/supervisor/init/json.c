/* A tiny JSON reader and writer. Input is bounded by the frame size, nesting by MAX_DEPTH;
 * every failure returns NULL so callers answer EINVAL instead of crashing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "berth.h"

#define MAX_DEPTH 32

typedef struct {
  const char *p, *end;
  int depth;
} parser;

static void *xalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) abort(); /* handlers are short-lived forks; OOM is fatal to this one connection only */
  return p;
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static int hex4(parser *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return -1;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = ps->p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return -1;
  }
  ps->p += 4;
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes a string literal (ps->p at the opening quote). Output never exceeds input length. */
static char *parse_string(parser *ps, size_t *len) {
  ps->p++;
  const char *s = ps->p;
  while (ps->p < ps->end && *ps->p != '"') {
    if (*ps->p == '\\') ps->p++;
    ps->p++;
  }
  if (ps->p >= ps->end) return NULL;
  size_t cap = (size_t)(ps->p - s) + 1;
  parser in = {s, ps->p, 0};
  ps->p++;
  char *out = xalloc(cap), *o = out;
  while (in.p < in.end) {
    unsigned char c = (unsigned char)*in.p++;
    if (c < 0x20) return NULL;
    if (c != '\\') { *o++ = (char)c; continue; }
    if (in.p >= in.end) return NULL;
    char e = *in.p++;
    switch (e) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp;
        if (hex4(&in, &cp)) return NULL;
        if (cp >= 0xD800 && cp < 0xDC00 && in.end - in.p >= 6 && in.p[0] == '\\' && in.p[1] == 'u') {
          parser look = {in.p + 2, in.end, 0};
          unsigned lo;
          if (!hex4(&look, &lo) && lo >= 0xDC00 && lo < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            in.p = look.p;
          }
        }
        if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
        o += put_utf8(o, cp);                          /* \uXXXX is 6 bytes, UTF-8 at most 4 */
        break;
      }
      default: return NULL;
    }
  }
  *o = 0;
  *len = (size_t)(o - out);
  return out;
}

static jval *parse_value(parser *ps);

static jval *parse_container(parser *ps, int obj) {
  if (++ps->depth > MAX_DEPTH) return NULL;
  jval *v = xalloc(sizeof *v);
  v->type = obj ? J_OBJ : J_ARR;
  size_t cap = 0;
  ps->p++;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (obj ? '}' : ']')) { ps->p++; ps->depth--; return v; }
  for (;;) {
    char *key = NULL;
    if (obj) {
      skip_ws(ps);
      size_t kl;
      if (ps->p >= ps->end || *ps->p != '"' || !(key = parse_string(ps, &kl))) return NULL;
      if (strlen(key) != kl) return NULL;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') return NULL;
      ps->p++;
    }
    jval *item = parse_value(ps);
    if (!item) return NULL;
    if (v->len == cap) {
      cap = cap ? cap * 2 : 8;
      v->items = xrealloc(v->items, cap * sizeof *v->items);
      if (obj) v->keys = xrealloc(v->keys, cap * sizeof *v->keys);
    }
    if (obj) v->keys[v->len] = key;
    v->items[v->len++] = item;
    skip_ws(ps);
    if (ps->p >= ps->end) return NULL;
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == (obj ? '}' : ']')) { ps->p++; break; }
    return NULL;
  }
  ps->depth--;
  return v;
}

static int match(parser *ps, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n)) return 0;
  ps->p += n;
  return 1;
}

static jval *parse_value(parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end) return NULL;
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, c == '{');
  jval *v = xalloc(sizeof *v);
  if (c == '"') {
    v->type = J_STR;
    v->str = parse_string(ps, &v->len);
    return v->str ? v : NULL;
  }
  if (match(ps, "null")) { v->type = J_NULL; return v; }
  if (match(ps, "true")) { v->type = J_BOOL; v->boolean = 1; return v; }
  if (match(ps, "false")) { v->type = J_BOOL; return v; }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char tmp[64];
    size_t n = 0;
    while (ps->p < ps->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", *ps->p)) tmp[n++] = *ps->p++;
    tmp[n] = 0;
    char *endp;
    v->type = J_NUM;
    v->num = strtod(tmp, &endp);
    return *endp == 0 && n > 0 ? v : NULL;
  }
  return NULL;
}

jval *json_parse(const char *s, size_t n) {
  parser ps = {s, s + n, 0};
  jval *v = parse_value(&ps);
  if (!v) return NULL;
  skip_ws(&ps);
  return ps.p == ps.end ? v : NULL;
}

jval *jget(const jval *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (size_t i = 0; i < obj->len; i++)
    if (!strcmp(obj->keys[i], key)) return obj->items[i];
  return NULL;
}

const char *jstr(const jval *obj, const char *key) {
  jval *v = jget(obj, key);
  if (!v || v->type != J_STR || strlen(v->str) != v->len) return NULL;
  return v->str;
}

int jint(const jval *obj, const char *key, long long lo, long long hi, long long *out) {
  jval *v = jget(obj, key);
  if (!v || v->type != J_NUM || v->num != v->num || v->num < (double)lo || v->num > (double)hi) return -1;
  long long i = (long long)v->num;
  if ((double)i != v->num) return -1;
  *out = i;
  return 0;
}

int jbool(const jval *obj, const char *key, int def) {
  jval *v = jget(obj, key);
  if (!v || v->type == J_NULL) return def;
  return v->type == J_BOOL ? v->boolean : -1;
}

/* ---- writer ---- */

void jb_init(jbuf *b) { b->buf = NULL; b->len = b->cap = 0; }
void jb_free(jbuf *b) { free(b->buf); jb_init(b); }

static void jb_reserve(jbuf *b, size_t n) {
  if (b->len + n + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n + 1) cap *= 2;
  b->buf = xrealloc(b->buf, cap);
  b->cap = cap;
}

void jb_raw(jbuf *b, const char *s, size_t n) {
  jb_reserve(b, n);
  memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = 0;
}

void jb_puts(jbuf *b, const char *s) { jb_raw(b, s, strlen(s)); }

void jb_printf(jbuf *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  jb_raw(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Length of a valid UTF-8 sequence at s (no overlongs, surrogates or > U+10FFFF), else 0. */
static size_t utf8_len(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned cp;
  if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
  else return 0;
  if (n < len) return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    return 0;
  return len;
}

void jb_str(jbuf *b, const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  jb_reserve(b, n + 2);
  b->buf[b->len++] = '"';
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      size_t j = i;
      while (j < n && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\') j++;
      jb_raw(b, str + i, j - i);
      i = j;
    } else if (c == '"') { jb_raw(b, "\\\"", 2); i++; }
    else if (c == '\\') { jb_raw(b, "\\\\", 2); i++; }
    else if (c == '\n') { jb_raw(b, "\\n", 2); i++; }
    else if (c == '\t') { jb_raw(b, "\\t", 2); i++; }
    else if (c == '\r') { jb_raw(b, "\\r", 2); i++; }
    else if (c < 0x20) { jb_printf(b, "\\u%04x", c); i++; }
    else {
      size_t l = utf8_len(s + i, n - i);
      if (l) { jb_raw(b, str + i, l); i += l; }
      else { jb_raw(b, "\\ufffd", 6); i++; }
    }
  }
  jb_raw(b, "\"", 1);
}

void jb_cstr(jbuf *b, const char *s) { jb_str(b, s, strlen(s)); }

void jb_iso_time(jbuf *b, const struct timespec *ts) {
  struct tm tm;
  time_t t = ts->tv_sec;
  if (!gmtime_r(&t, &tm)) { jb_puts(b, "null"); return; }
  jb_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\"", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}
