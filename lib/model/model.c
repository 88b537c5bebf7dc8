/* Model plumbing: the error list, patterns, sizes and numbers that the
 * decoder, encoder and schema writer share. */
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
  char *loc = mc_arena_strndup(e->arena, loc_json, strlen(loc_json));
  char *m = mc_arena_strndup(e->arena, msg, strlen(msg));
  if (!loc || !m)
    return MC_ENOMEM;
  e->items[e->len++] = (mc_model_error){loc, m, type};
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

/* ---- text ---------------------------------------------------------------- */

size_t mc__utf8_len(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++)
    count += ((unsigned char)s[i] & 0xC0) != 0x80;
  return count;
}

int mc__json_number(mc_buf *b, double v) {
  if (!isfinite(v))
    return mc_buf_append_cstr(b, "null");
  if (v == 0)
    return mc_buf_append_cstr(b, signbit(v) ? "-0.0" : "0.0");
  char tmp[40];
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (strtod(tmp, NULL) == v)
      break;
  }
  return mc_buf_append_cstr(b, tmp);
}

/* ---- patterns ------------------------------------------------------------ */

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
      if (p[i + 1] == '^')
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
    if (in_class) {
      if (in)
        err = mc_buf_append_cstr(&b, in);
      else if (out) { /* negated shorthand inside a class: not expressible */
        mc_buf_free(&b);
        return NULL;
      } else if (n == ']' || n == '\\' || n == '-' || n == '^') {
        /* ERE has no escapes in classes; these need placement tricks we do
         * not attempt. Refuse rather than mis-match. */
        if (n == '\\')
          err = mc_buf_append_char(&b, '\\');
        else {
          mc_buf_free(&b);
          return NULL;
        }
      } else {
        err = mc_buf_append_char(&b, n);
      }
    } else if (out) {
      err = mc_buf_append_cstr(&b, out);
    } else {
      err = mc_buf_append_char(&b, '\\');
      if (!err)
        err = mc_buf_append_char(&b, n);
    }
  }
  if (err || in_class) {
    mc_buf_free(&b);
    return NULL;
  }
  if (!b.ptr) /* empty pattern */
    mc_buf_append_char(&b, 0), b.len = 0;
  return b.ptr;
}

typedef struct pattern_entry {
  const char *pattern; /* the declaration's pointer: one entry per field */
  regex_t re;
  bool ok;
  struct pattern_entry *next;
} pattern_entry;

static uv_once_t patterns_once = UV_ONCE_INIT;
static uv_mutex_t patterns_lock;
static pattern_entry *patterns;

static void patterns_init(void) {
  uv_mutex_init(&patterns_lock);
}

const regex_t *mc__pattern_get(const char *pattern) {
  uv_once(&patterns_once, patterns_init);
  uv_mutex_lock(&patterns_lock);
  pattern_entry *e = patterns;
  while (e && e->pattern != pattern && strcmp(e->pattern, pattern) != 0)
    e = e->next;
  if (!e && (e = calloc(1, sizeof *e))) {
    e->pattern = pattern;
    char *ere = mc__pattern_to_ere(pattern);
    e->ok = ere && regcomp(&e->re, ere, REG_EXTENDED | REG_NOSUB) == 0;
    free(ere);
    e->next = patterns;
    patterns = e;
  }
  uv_mutex_unlock(&patterns_lock);
  return e && e->ok ? &e->re : NULL;
}

/* ---- checking declarations ---------------------------------------------- */

static int check_field(const mc_field *f, int depth);

static int check_model(const mc_model *m, int depth) {
  if (!m || !m->name || (m->nfields && !m->fields))
    return MC_EINVAL;
  if (depth > MC__MODEL_MAX_DEPTH)
    return 0; /* recursive models: checked once is enough */
  for (size_t i = 0; i < m->nfields; i++) {
    if (!m->fields[i].name || !m->fields[i].name[0])
      return MC_EINVAL;
    for (size_t k = 0; k < i; k++)
      if (strcmp(m->fields[k].name, m->fields[i].name) == 0)
        return MC_EINVAL;
    int err = check_field(&m->fields[i], depth + 1);
    if (err)
      return err;
  }
  return 0;
}

static int check_field(const mc_field *f, int depth) {
  if (f->pattern && (f->type != MC_T_STRING || !mc__pattern_get(f->pattern)))
    return MC_EINVAL;
  if (f->enum_values && f->type != MC_T_STRING)
    return MC_EINVAL;
  if (f->has_min && f->has_max && f->min > f->max)
    return MC_EINVAL;
  if (f->has_min_len && f->has_max_len && f->min_len > f->max_len)
    return MC_EINVAL;
  switch (f->type) {
  case MC_T_STRING:
  case MC_T_INT:
  case MC_T_NUMBER:
  case MC_T_BOOL:
    return 0;
  case MC_T_OBJECT:
    return check_model(f->model, depth);
  case MC_T_ARRAY:
    if (!f->items || f->items->type == 0)
      return MC_EINVAL;
    return check_field(f->items, depth + 1);
  }
  return MC_EINVAL;
}

int mc_model_check(const mc_model *m) {
  return check_model(m, 0);
}
