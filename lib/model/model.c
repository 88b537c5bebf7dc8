/* Model plumbing: the error list, patterns, sizes and numbers that the
 * decoder, encoder and schema writer share. */
#include <float.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "model/model_int.h"

/* ---- errors ----------------------------------------------------------- */

void mc_model_errors_init(mc_model_errors *e, mc_arena *a) {
  e->items = NULL;
  e->len = 0;
  e->cap = 0;
  e->arena = a;
}

int mc_model_errors_add(mc_model_errors *e, const char *loc_json,
                        const char *msg, const char *type) {
  if (e->len == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 8;
    mc_model_error *items = mc_arena_alloc(e->arena, cap * sizeof *items);
    if (!items)
      return MC_ENOMEM;
    if (e->len)
      memcpy(items, e->items, e->len * sizeof *items);
    e->items = items;
    e->cap = cap;
  }
  /* type is copied too: callers may build it, and a dangling type would
   * only show when the response is written. */
  char *loc = mc_arena_strndup(e->arena, loc_json, strlen(loc_json));
  char *m = mc_arena_strndup(e->arena, msg, strlen(msg));
  char *t = mc_arena_strndup(e->arena, type, strlen(type));
  if (!loc || !m || !t)
    return MC_ENOMEM;
  e->items[e->len++] = (mc_model_error){loc, m, t};
  return 0;
}

int mc_model_errors_json(const mc_model_errors *e, mc_buf *out) {
  int err = mc_buf_append_char(out, '[');
  for (size_t i = 0; !err && i < e->len; i++) {
    const mc_model_error *x = &e->items[i];
    err = mc_buf_append_cstr(out, i ? ",{\"loc\":" : "{\"loc\":");
    if (!err)
      err = mc_buf_append_cstr(out, x->loc);
    if (!err)
      err = mc_buf_append_cstr(out, ",\"msg\":");
    if (!err)
      err = mc_buf_append_json_str(out, x->msg, strlen(x->msg));
    if (!err)
      err = mc_buf_append_cstr(out, ",\"type\":");
    if (!err)
      err = mc_buf_append_json_str(out, x->type, strlen(x->type));
    if (!err)
      err = mc_buf_append_char(out, '}');
  }
  if (!err)
    err = mc_buf_append_char(out, ']');
  return err;
}

/* ---- sizes -------------------------------------------------------------- */

size_t mc__field_csize(const mc_field *f) {
  switch (f->type) {
  case MC_T_STRING:
    return sizeof(mc_slice);
  case MC_T_INT:
    return sizeof(int64_t);
  case MC_T_NUMBER:
    return sizeof(double);
  case MC_T_BOOL:
    return sizeof(bool);
  case MC_T_OBJECT:
    return f->model ? f->model->size : 0;
  case MC_T_ARRAY:
    return sizeof(mc__array);
  }
  return 0;
}

int64_t mc__int_of_double(double x) {
  if (isnan(x))
    return 0;
  if (x >= 0x1p63) /* (double)INT64_MAX rounds up to 2^63 */
    return INT64_MAX;
  if (x <= -0x1p63)
    return INT64_MIN;
  return (int64_t)x;
}

/* ---- text ---------------------------------------------------------------- */

size_t mc__utf8_len(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)s[i] & 0xC0) != 0x80;
  return count;
}

void mc__number_text(double v, char buf[40]) {
  /* For normal doubles, 15 significant digits that read back are also the
   * fewest that do (a double has more than 15 digits of precision), so
   * shorter tries are needed only for subnormals, whose precision is less. */
  int prec = fabs(v) < DBL_MIN ? 1 : 15;
  for (; prec <= 17; prec++) {
    snprintf(buf, 40, "%.*g", prec, v);
    if (strtod(buf, NULL) == v)
      break;
  }
}

int mc__json_number(mc_buf *b, double v) {
  if (!isfinite(v))
    return mc_buf_append_cstr(b, "null");
  char tmp[40];
  mc__number_text(v, tmp);
  /* A number field holds a float: write whole values as 2.0, as Python
   * and pydantic do, so readers that type by syntax see a float. */
  if (!strpbrk(tmp, ".e"))
    strcat(tmp, ".0");
  return mc_buf_append_cstr(b, tmp);
}

/* ---- patterns ------------------------------------------------------------ */

/* The character an ECMA-262 control escape (\t, \n, ...) stands for; 0
 * when c is not one. */
static char control_escape(char c, bool in_class) {
  switch (c) {
  case 't':
    return '\t';
  case 'n':
    return '\n';
  case 'r':
    return '\r';
  case 'f':
    return '\f';
  case 'v':
    return '\v';
  case 'b': /* backspace in a class, a word boundary outside */
    return in_class ? '\b' : 0;
  }
  return 0;
}

char *mc__pattern_to_ere(const char *p) {
  mc_buf b;
  mc_buf_init(&b, 0);
  bool in_class = false;
  int err = 0;
  for (size_t i = 0; p[i] && !err; i++) {
    char c = p[i];
    if (c == '[' && !in_class) {
      in_class = true;
      err = mc_buf_append_char(&b, c);
      /* a ']' right after '[' or '[^' is literal */
      if (!err && p[i + 1] == '^')
        err = mc_buf_append_char(&b, p[++i]);
      if (!err && p[i + 1] == ']')
        err = mc_buf_append_char(&b, p[++i]);
      continue;
    }
    if (c == ']' && in_class) {
      in_class = false;
      err = mc_buf_append_char(&b, c);
      continue;
    }
    if (c != '\\' || !p[i + 1]) {
      err = mc_buf_append_char(&b, c);
      continue;
    }
    char n = p[++i];
    const char *in = NULL, *out = NULL;
    switch (n) {
    case 'd':
      in = "0-9", out = "[0-9]";
      break;
    case 'D':
      out = "[^0-9]";
      break;
    case 'w':
      in = "A-Za-z0-9_", out = "[A-Za-z0-9_]";
      break;
    case 'W':
      out = "[^A-Za-z0-9_]";
      break;
    case 's':
      in = "[:space:]", out = "[[:space:]]";
      break;
    case 'S':
      out = "[^[:space:]]";
      break;
    }
    char ctl = control_escape(n, in_class);
    bool alnum = (n >= 'a' && n <= 'z') || (n >= 'A' && n <= 'Z') ||
                 (n >= '0' && n <= '9');
    if (ctl) {
      err = mc_buf_append_char(&b, ctl);
    } else if (in_class) {
      if (in)
        err = mc_buf_append_cstr(&b, in);
      else if (out || alnum) /* negated shorthand, \x41, \p{L}, ... */
        goto refuse;
      else if (n == '\\')
        err = mc_buf_append_char(&b, '\\'); /* literal in an ERE class */
      else if (n == ']' || n == '-' || n == '^')
        /* ERE has no escapes in classes; these need placement tricks we do
         * not attempt. Refuse rather than mis-match. */
        goto refuse;
      else
        err = mc_buf_append_char(&b, n);
    } else if (out) {
      err = mc_buf_append_cstr(&b, out);
    } else if (n == 'b' || n == 'B' || (n >= '1' && n <= '9')) {
      /* word boundaries and back-references mean the same in glibc's ERE */
      err = mc_buf_append_char(&b, '\\');
      if (!err)
        err = mc_buf_append_char(&b, n);
    } else if (alnum) {
      /* \x41, \u00e9, \p{L}, \0, ...: ERE would read a plain letter */
      goto refuse;
    } else if (n == '<' || n == '>' || n == '`' || n == '\'') {
      /* literal in ECMA-262, word and buffer anchors in glibc */
      err = mc_buf_appendf(&b, "[%c]", n);
    } else {
      err = mc_buf_append_char(&b, '\\');
      if (!err)
        err = mc_buf_append_char(&b, n);
    }
  }
  if (err || in_class)
    goto refuse;
  if (!b.ptr && mc_buf_append(&b, "", 0) != 0) /* empty pattern */
    goto refuse;
  return b.ptr;
refuse:
  mc_buf_free(&b);
  return NULL;
}

typedef struct pattern_entry {
  char *pattern; /* a copy: declarations built at run time may go away */
  regex_t re;
  bool ok;
  struct pattern_entry *next;
} pattern_entry;

static uv_once_t patterns_once = UV_ONCE_INIT;
static uv_mutex_t patterns_lock;
static pattern_entry *patterns;
/* Patterns are compiled and run in a UTF-8 locale so that "." and classes
 * take a character, not a byte, as JSON Schema means; (locale_t)0 where
 * the C library has no C.UTF-8, and then they work on bytes. */
static locale_t utf8_locale;

static void patterns_init(void) {
  uv_mutex_init(&patterns_lock);
  utf8_locale = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
}

/* A new cache entry for pattern, failed compilations included so that
 * they are not retried. NULL when out of memory. Called locked. */
static pattern_entry *pattern_add(const char *pattern) {
  pattern_entry *e = calloc(1, sizeof *e);
  if (!e || !(e->pattern = strdup(pattern))) {
    free(e);
    return NULL;
  }
  char *ere = mc__pattern_to_ere(pattern);
  locale_t old = utf8_locale ? uselocale(utf8_locale) : (locale_t)0;
  e->ok = ere && regcomp(&e->re, ere, REG_EXTENDED | REG_NOSUB) == 0;
  if (old)
    uselocale(old);
  free(ere);
  e->next = patterns;
  patterns = e;
  return e;
}

const regex_t *mc__pattern_get(const char *pattern) {
  uv_once(&patterns_once, patterns_init);
  uv_mutex_lock(&patterns_lock);
  pattern_entry *e = patterns;
  while (e && strcmp(e->pattern, pattern) != 0)
    e = e->next;
  if (!e)
    e = pattern_add(pattern);
  uv_mutex_unlock(&patterns_lock);
  return e && e->ok ? &e->re : NULL;
}

bool mc__pattern_match(const regex_t *re, const char *s) {
  locale_t old = utf8_locale ? uselocale(utf8_locale) : (locale_t)0;
  bool match = regexec(re, s, 0, NULL, 0) == 0;
  if (old)
    uselocale(old);
  return match;
}

/* ---- checking declarations ---------------------------------------------- */

/* The models already checked, so that recursive and shared models are
 * looked at once: following every path instead is exponential in the
 * number of recursive fields. */
typedef struct check_ctx {
  const mc_model **seen;
  size_t n, cap;
} check_ctx;

static int check_field(check_ctx *c, const mc_field *f);

static int check_model(check_ctx *c, const mc_model *m) {
  if (!m || !m->name || (m->nfields && !m->fields))
    return MC_EINVAL;
  for (size_t i = 0; i < c->n; i++)
    if (c->seen[i] == m)
      return 0;
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 16;
    const mc_model **seen = realloc(c->seen, cap * sizeof *seen);
    if (!seen)
      return MC_ENOMEM;
    c->seen = seen;
    c->cap = cap;
  }
  c->seen[c->n++] = m; /* before the fields, so cycles end */
  for (size_t i = 0; i < m->nfields; i++) {
    if (!m->fields[i].name || !m->fields[i].name[0])
      return MC_EINVAL;
    for (size_t k = 0; k < i; k++)
      if (strcmp(m->fields[k].name, m->fields[i].name) == 0)
        return MC_EINVAL;
    int err = check_field(c, &m->fields[i]);
    if (err)
      return err;
  }
  return 0;
}

static int check_field(check_ctx *c, const mc_field *f) {
  if (f->pattern && (f->type != MC_T_STRING || !mc__pattern_get(f->pattern)))
    return MC_EINVAL;
  /* an empty enum refuses every value */
  if (f->enum_values && (f->type != MC_T_STRING || !f->enum_values[0]))
    return MC_EINVAL;
  if (f->has_min && f->has_max && f->min > f->max)
    return MC_EINVAL;
  if (f->has_min_len && f->has_max_len && f->min_len > f->max_len)
    return MC_EINVAL;
  if (f->example) {
    /* copied into openapi.json as it is: refuse what would break it */
    json_t *j = json_loads(f->example, JSON_DECODE_ANY, NULL);
    if (!j)
      return MC_EINVAL;
    json_decref(j);
  }
  switch (f->type) {
  case MC_T_STRING:
  case MC_T_INT:
  case MC_T_NUMBER:
  case MC_T_BOOL:
    return 0;
  case MC_T_OBJECT:
    return check_model(c, f->model);
  case MC_T_ARRAY:
    if (!f->items || f->items->type == 0)
      return MC_EINVAL;
    return check_field(c, f->items);
  }
  return MC_EINVAL;
}

int mc_model_check(const mc_model *m) {
  check_ctx c = {0};
  int err = check_model(&c, m);
  free(c.seen);
  return err;
}
