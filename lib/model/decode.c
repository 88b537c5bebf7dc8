/* Decoding into declared models: JSON bodies (through jansson) and string
 * pairs (path and query parameters). Every violation is reported, each
 * with its location, as FastAPI does; nothing stops at the first. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_int.h"

typedef struct loc_elem {
  const char *key; /* NULL for an array index */
  size_t keylen;
  size_t idx;
} loc_elem;

#define MAX_PATH (MC__MODEL_MAX_DEPTH + 4)

typedef struct dec {
  mc_arena *a;
  mc_model_errors *errs;
  const char *where;
  loc_elem path[MAX_PATH];
  int npath;
  int depth;
  int fatal; /* MC_ENOMEM or MC_ETOOBIG: stop and report it */
} dec;

static void push_key(dec *d, const char *key, size_t len) {
  d->path[d->npath++] = (loc_elem){key, len, 0};
}

static void push_idx(dec *d, size_t idx) {
  d->path[d->npath++] = (loc_elem){NULL, 0, idx};
}

static void pop(dec *d) {
  d->npath--;
}

static void fail(dec *d, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(dec *d, const char *type, const char *fmt, ...) {
  if (d->fatal)
    return;
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  mc_buf loc;
  mc_buf_init(&loc, 0);
  int err = mc_buf_append_char(&loc, '[');
  if (!err && d->where)
    err = mc_buf_append_json_str(&loc, d->where, strlen(d->where));
  for (int i = 0; !err && i < d->npath; i++) {
    if (i || d->where)
      err = mc_buf_append_char(&loc, ',');
    if (err)
      break;
    if (d->path[i].key)
      err = mc_buf_append_json_str(&loc, d->path[i].key, d->path[i].keylen);
    else
      err = mc_buf_appendf(&loc, "%zu", d->path[i].idx);
  }
  if (!err)
    err = mc_buf_append_char(&loc, ']');
  if (!err)
    err = mc_model_errors_add(d->errs, loc.ptr, msg, type);
  if (err)
    d->fatal = MC_ENOMEM;
  mc_buf_free(&loc);
}

/* Reports that the input nests deeper than the decoder follows, at the
 * root as a JSON error, and stops decoding. */
static void too_deep(dec *d) {
  int npath = d->npath;
  d->npath = 0;
  fail(d, "json_invalid", "JSON decode error: nesting deeper than %d levels",
       MC__MODEL_MAX_DEPTH);
  d->npath = npath;
  if (!d->fatal)
    d->fatal = MC_ETOOBIG;
}

/* A limit as people read it: whole values without a decimal point, others
 * in full (never rounded to six digits by %g). */
static const char *limit_text(double x, char buf[40]) {
  if (x == floor(x) && fabs(x) < 1e17)
    snprintf(buf, 40, "%.0f", x);
  else
    mc__number_text(x, buf);
  return buf;
}

/* An integer field's bound, exactly as the comparison uses it. */
static long double int_bound(double x) {
  if (x == 0x1p63) /* MC_MAX(INT64_MAX) and friends, rounded up */
    return (long double)INT64_MAX;
  return (long double)x;
}

static const char *int_limit_text(double x, char buf[40]) {
  if (x == floor(x) && fabs(x) <= 0x1p63)
    snprintf(buf, 40, "%lld", (long long)mc__int_of_double(x));
  else
    mc__number_text(x, buf);
  return buf;
}

static const char *plural(size_t n) {
  return n == 1 ? "" : "s";
}

/* ---- checks shared by JSON and pairs ------------------------------------ */

/* One error per value at most, as pydantic: the first failed constraint
 * in the order length, pattern, enum. */
static void check_string(dec *d, const mc_field *f, const char *s, size_t n) {
  if (f->has_min_len || f->has_max_len) {
    size_t chars = mc__utf8_len(s, n);
    if (f->has_min_len && chars < f->min_len) {
      fail(d, "string_too_short", "String should have at least %zu character%s",
           f->min_len, plural(f->min_len));
      return;
    }
    if (f->has_max_len && chars > f->max_len) {
      fail(d, "string_too_long", "String should have at most %zu character%s",
           f->max_len, plural(f->max_len));
      return;
    }
  }
  if (f->pattern) {
    const regex_t *re = mc__pattern_get(f->pattern);
    /* s is NUL-terminated (an arena copy) and holds no NUL (jansson and the
     * pairs decoder refuse them), so regexec sees the whole value. */
    if (!re || !mc__pattern_match(re, s)) {
      fail(d, "string_pattern_mismatch", "String should match pattern '%s'",
           f->pattern);
      return;
    }
  }
  if (f->enum_values) {
    for (const char *const *e = f->enum_values; *e; e++)
      if (strlen(*e) == n && memcmp(*e, s, n) == 0)
        return;
    char list[400];
    size_t len = 0;
    list[0] = 0;
    for (const char *const *e = f->enum_values; *e && len < sizeof list - 8;
         e++) {
      const char *sep = e == f->enum_values ? "" : e[1] ? ", " : " or ";
      int w = snprintf(list + len, sizeof list - len, "%s'%s'", sep, *e);
      if (w < 0)
        break;
      len += (size_t)w;
    }
    fail(d, "enum", "Input should be %s", list);
  }
}

static void check_number(dec *d, const mc_field *f, double v) {
  char t[40];
  if (f->has_min) {
    if (f->exclusive_min && !(v > f->min))
      fail(d, "greater_than", "Input should be greater than %s",
           limit_text(f->min, t));
    else if (!f->exclusive_min && !(v >= f->min))
      fail(d, "greater_than_equal",
           "Input should be greater than or equal to %s",
           limit_text(f->min, t));
  }
  if (f->has_max) {
    if (f->exclusive_max && !(v < f->max))
      fail(d, "less_than", "Input should be less than %s",
           limit_text(f->max, t));
    else if (!f->exclusive_max && !(v <= f->max))
      fail(d, "less_than_equal", "Input should be less than or equal to %s",
           limit_text(f->max, t));
  }
}

static void check_int(dec *d, const mc_field *f, int64_t v) {
  /* long double holds every int64 exactly, so bounds near 2^63 compare
   * exactly too. */
  long double x = (long double)v;
  char t[40];
  if (f->has_min &&
      !(f->exclusive_min ? x > int_bound(f->min) : x >= int_bound(f->min)))
    fail(d, f->exclusive_min ? "greater_than" : "greater_than_equal",
         f->exclusive_min ? "Input should be greater than %s"
                          : "Input should be greater than or equal to %s",
         int_limit_text(f->min, t));
  if (f->has_max &&
      !(f->exclusive_max ? x < int_bound(f->max) : x <= int_bound(f->max)))
    fail(d, f->exclusive_max ? "less_than" : "less_than_equal",
         f->exclusive_max ? "Input should be less than %s"
                          : "Input should be less than or equal to %s",
         int_limit_text(f->max, t));
}

static bool utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) {
      if (c == 0)
        return false;
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0)
      len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
      len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
      len = 4, cp = c & 0x07;
    else
      return false;
    if (n - i < len)
      return false;
    for (size_t k = 1; k < len; k++) {
      if ((p[i + k] & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

/* ---- defaults ------------------------------------------------------------ */

static void set_default(const mc_field *f, void *dst) {
  if (!f->has_default)
    return;
  switch (f->type) {
  case MC_T_STRING:
    if (f->def_str)
      *(mc_slice *)dst = mc_slice_cstr(f->def_str);
    break;
  case MC_T_INT:
    *(int64_t *)dst = mc__int_of_double(f->def_num);
    break;
  case MC_T_NUMBER:
    *(double *)dst = f->def_num;
    break;
  case MC_T_BOOL:
    *(bool *)dst = f->def_num != 0;
    break;
  default:
    break;
  }
}

/* ---- JSON ------------------------------------------------------------------
 */

static void decode_value(dec *d, const mc_field *f, json_t *v, void *dst);

static void decode_object(dec *d, const mc_model *m, json_t *v, char *base) {
  if (!json_is_object(v)) {
    /* the type FastAPI reports, as it validates with from_attributes */
    fail(d, "model_attributes_type",
         "Input should be a valid dictionary or object to extract fields from");
    return;
  }
  if (d->depth >= MC__MODEL_MAX_DEPTH || d->npath >= MAX_PATH - 1) {
    too_deep(d);
    return;
  }
  d->depth++;
  for (size_t i = 0; i < m->nfields && !d->fatal; i++) {
    const mc_field *f = &m->fields[i];
    json_t *x = json_object_get(v, f->name);
    push_key(d, f->name, strlen(f->name));
    if (!x) {
      if (f->required)
        fail(d, "missing", "Field required");
      else
        set_default(f, base + f->offset);
    } else if (json_is_null(x) && (f->nullable || !f->required)) {
      set_default(f, base + f->offset);
    } else {
      if (f->has_present)
        *(bool *)(base + f->present_offset) = true;
      decode_value(d, f, x, base + f->offset);
    }
    pop(d);
  }
  if (m->forbid_extra) {
    const char *key;
    json_t *x;
    json_object_foreach(v, key, x) {
      bool known = false;
      for (size_t i = 0; i < m->nfields && !known; i++)
        known = strcmp(m->fields[i].name, key) == 0;
      if (!known) {
        push_key(d, key, strlen(key));
        fail(d, "extra_forbidden", "Extra inputs are not permitted");
        pop(d);
      }
    }
  }
  d->depth--;
}

static void decode_array(dec *d, const mc_field *f, json_t *v, mc__array *dst) {
  if (!json_is_array(v)) {
    fail(d, "list_type", "Input should be a valid list");
    return;
  }
  size_t n = json_array_size(v);
  if (f->has_max_len && n > f->max_len) {
    /* Too long: say so and do not spend time on the items. */
    fail(d, "too_long",
         "List should have at most %zu item%s after validation, not %zu",
         f->max_len, plural(f->max_len), n);
    return;
  }
  if (f->has_min_len && n < f->min_len)
    fail(d, "too_short",
         "List should have at least %zu item%s after validation, not %zu",
         f->min_len, plural(f->min_len), n);
  if (d->depth >= MC__MODEL_MAX_DEPTH || d->npath >= MAX_PATH - 1) {
    too_deep(d);
    return;
  }
  size_t sz = mc__field_csize(f->items);
  char *items = mc_arena_calloc(d->a, n ? n * sz : 1);
  if (!items) {
    d->fatal = MC_ENOMEM;
    return;
  }
  d->depth++;
  for (size_t i = 0; i < n && !d->fatal; i++) {
    push_idx(d, i);
    json_t *x = json_array_get(v, i);
    if (json_is_null(x) && f->items->nullable)
      ; /* a null item stays zero */
    else
      decode_value(d, f->items, x, items + i * sz);
    pop(d);
  }
  d->depth--;
  dst->items = items;
  dst->len = n;
}

static void decode_value(dec *d, const mc_field *f, json_t *v, void *dst) {
  switch (f->type) {
  case MC_T_STRING: {
    if (!json_is_string(v)) {
      fail(d, "string_type", "Input should be a valid string");
      return;
    }
    size_t n = json_string_length(v);
    char *s = mc_arena_strndup(d->a, json_string_value(v), n);
    if (!s) {
      d->fatal = MC_ENOMEM;
      return;
    }
    *(mc_slice *)dst = (mc_slice){s, n};
    check_string(d, f, s, n);
    return;
  }
  case MC_T_INT: {
    int64_t x;
    if (json_is_integer(v)) {
      x = json_integer_value(v);
    } else if (json_is_real(v)) {
      double r = json_real_value(v);
      if (r != floor(r)) {
        fail(d, "int_from_float",
             "Input should be a valid integer, got a "
             "number with a fractional part");
        return;
      }
      if (!(r >= -9223372036854775808.0 && r < 9223372036854775808.0)) {
        fail(d, "int_parsing_size",
             "Input should be an integer that fits in 64 bits");
        return;
      }
      x = (int64_t)r;
    } else {
      fail(d, "int_type", "Input should be a valid integer");
      return;
    }
    *(int64_t *)dst = x;
    check_int(d, f, x);
    return;
  }
  case MC_T_NUMBER: {
    if (!json_is_number(v)) {
      fail(d, "float_type", "Input should be a valid number");
      return;
    }
    double x = json_number_value(v);
    *(double *)dst = x;
    check_number(d, f, x);
    return;
  }
  case MC_T_BOOL:
    if (!json_is_boolean(v)) {
      fail(d, "bool_type", "Input should be a valid boolean");
      return;
    }
    *(bool *)dst = json_is_true(v);
    return;
  case MC_T_OBJECT:
    decode_object(d, f->model, v, dst);
    return;
  case MC_T_ARRAY:
    decode_array(d, f, v, dst);
    return;
  }
}

/* Whether arrays and objects in JSON text nest deeper than limit, counted
 * without recursion. Strings are skipped; the text need not be valid, as
 * jansson judges that afterwards. */
static bool nests_deeper_than(const char *s, size_t n, int limit) {
  int depth = 0;
  bool in_str = false;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
    } else if (c == '"') {
      in_str = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit)
        return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      depth--;
    }
  }
  return false;
}

/* The double an integer token beyond 64 bits is read as: the nearest one,
 * kept outside the int64 range (the nearest to -2^63-1 is -2^63 itself)
 * and finite (a JSON number may have any number of digits). */
static double wide_int_value(const char *s, size_t n) {
  char *t = strndup(s, n);
  double d = t ? strtod(t, NULL) : HUGE_VAL;
  free(t);
  if (!isfinite(d))
    d = copysign(DBL_MAX, s[0] == '-' ? -1.0 : 1.0);
  if (d == -0x1p63)
    d = nextafter(d, -HUGE_VAL);
  return d;
}

/* Copies JSON text with each integer that does not fit in 64 bits written
 * as a real, so that jansson reads it (as a double) and the field that
 * holds it gets a validation error, while every other integer keeps its
 * exact value. Returns a malloc'd copy with its length, or NULL. */
static char *widen_big_ints(const char *s, size_t n, size_t *outlen) {
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc_buf_reserve(&b, n + 16);
  bool in_str = false;
  size_t i = 0;
  while (i < n && !err) {
    char c = s[i];
    bool digit = c >= '0' && c <= '9';
    if (in_str || c == '"' || !(digit || c == '-')) {
      size_t len = in_str && c == '\\' && i + 1 < n ? 2 : 1;
      if (c == '"')
        in_str = !in_str;
      err = mc_buf_append(&b, s + i, len);
      i += len;
      continue;
    }
    /* a number token: -?digits(.digits)?([eE][+-]?digits)? */
    size_t j = i + (c == '-');
    while (j < n && s[j] >= '0' && s[j] <= '9')
      j++;
    bool integer = true;
    if (j < n && s[j] == '.') {
      integer = false;
      for (j++; j < n && s[j] >= '0' && s[j] <= '9'; j++)
        ;
    }
    if (j < n && (s[j] == 'e' || s[j] == 'E')) {
      integer = false;
      j += j + 1 < n && (s[j + 1] == '+' || s[j + 1] == '-') ? 2 : 1;
      while (j < n && s[j] >= '0' && s[j] <= '9')
        j++;
    }
    int64_t v;
    if (integer && j > i + (c == '-') &&
        mc_slice_to_i64((mc_slice){s + i, j - i}, &v) == MC_ETOOBIG)
      err = mc_buf_appendf(&b, "%.17g", wide_int_value(s + i, j - i));
    else
      err = mc_buf_append(&b, s + i, j - i);
    i = j;
  }
  if (err) {
    mc_buf_free(&b);
    return NULL;
  }
  *outlen = b.len;
  return b.ptr;
}

int mc_model_decode_json(const mc_model *m, mc_slice json, mc_arena *a,
                         const char *where, void **out, mc_model_errors *errs) {
  dec d = {.a = a, .errs = errs, .where = where};
  const char *text = json.ptr ? json.ptr : "";
  size_t len = json.ptr ? json.len : 0;
  size_t before = errs->len;
  /* jansson recurses once per level, and handlers run on small fiber
   * stacks: refuse deep text before it is parsed. */
  if (nests_deeper_than(text, len, MC__MODEL_MAX_DEPTH)) {
    too_deep(&d);
    return d.fatal;
  }
  json_error_t je;
  const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
  json_t *root = json_loadb(text, len, flags, &je);
  if (!root && json_error_code(&je) == json_error_numeric_overflow) {
    /* An integer beyond 64 bits is still JSON: the field that holds it
     * gets a proper validation error. */
    size_t wide_len;
    char *wide = widen_big_ints(text, len, &wide_len);
    if (!wide)
      return MC_ENOMEM;
    root = json_loadb(wide, wide_len, flags, &je);
    free(wide);
  }
  if (!root) {
    fail(&d, "json_invalid", "JSON decode error: %s (line %d, column %d)",
         je.text, je.line, je.column);
    return d.fatal ? d.fatal : MC_EPARSE;
  }
  void *obj = mc_arena_calloc(a, m->size ? m->size : 1);
  if (!obj) {
    json_decref(root);
    return MC_ENOMEM;
  }
  decode_object(&d, m, root, obj);
  json_decref(root);
  *out = obj;
  if (d.fatal)
    return d.fatal;
  return errs->len > before ? MC_EVALIDATION : 0;
}

/* ---- string pairs ----------------------------------------------------------
 */

static bool word_eq(mc_slice s, const char *w) {
  return mc_slice_eq_nocase(s, mc_slice_cstr(w));
}

static void coerce(dec *d, const mc_field *f, mc_slice s, void *dst) {
  switch (f->type) {
  case MC_T_STRING: {
    if (!utf8_valid(s.ptr, s.len)) {
      fail(d, "string_unicode",
           "Input should be a valid string, unable to "
           "parse raw data as a unicode string");
      return;
    }
    char *c = mc_arena_strndup(d->a, s.ptr, s.len);
    if (!c) {
      d->fatal = MC_ENOMEM;
      return;
    }
    *(mc_slice *)dst = (mc_slice){c, s.len};
    check_string(d, f, c, s.len);
    return;
  }
  case MC_T_INT: {
    int64_t v;
    int err = mc_slice_to_i64(s, &v);
    if (err == MC_ETOOBIG) {
      fail(d, "int_parsing_size",
           "Input should be an integer that fits in 64 bits");
      return;
    }
    if (err) {
      fail(d, "int_parsing",
           "Input should be a valid integer, unable to "
           "parse string as an integer");
      return;
    }
    *(int64_t *)dst = v;
    check_int(d, f, v);
    return;
  }
  case MC_T_NUMBER: {
    double v = 0;
    char c0 = s.len ? s.ptr[0] : 0;
    /* strtod also skips leading white space and reads hex, "nan" and
     * "inf"; a number here is decimal and finite. */
    bool ok = (c0 >= '0' && c0 <= '9') || c0 == '-' || c0 == '+' || c0 == '.';
    if (ok && (memchr(s.ptr, 'x', s.len) || memchr(s.ptr, 'X', s.len)))
      ok = false;
    if (ok) {
      char *buf = mc_arena_strndup(d->a, s.ptr, s.len), *end;
      if (!buf) {
        d->fatal = MC_ENOMEM;
        return;
      }
      v = strtod(buf, &end);
      ok = *end == 0 && isfinite(v);
    }
    if (!ok) {
      fail(d, "float_parsing",
           "Input should be a valid number, unable to "
           "parse string as a number");
      return;
    }
    *(double *)dst = v;
    check_number(d, f, v);
    return;
  }
  case MC_T_BOOL:
    if (word_eq(s, "true") || word_eq(s, "1") || word_eq(s, "yes") ||
        word_eq(s, "on") || word_eq(s, "t") || word_eq(s, "y"))
      *(bool *)dst = true;
    else if (word_eq(s, "false") || word_eq(s, "0") || word_eq(s, "no") ||
             word_eq(s, "off") || word_eq(s, "f") || word_eq(s, "n"))
      *(bool *)dst = false;
    else
      fail(d, "bool_parsing",
           "Input should be a valid boolean, unable to interpret input");
    return;
  case MC_T_OBJECT:
  case MC_T_ARRAY:
    fail(d, "unsupported", "This field cannot be given as a parameter");
    return;
  }
}

int mc_model_decode_pairs(const mc_model *m, const mc_slice *keys,
                          const mc_slice *values, size_t n, mc_arena *a,
                          const char *where, void *obj, mc_model_errors *errs) {
  dec d = {.a = a, .errs = errs, .where = where};
  size_t before = errs->len;
  char *base = obj;
  for (size_t i = 0; i < m->nfields && !d.fatal; i++) {
    const mc_field *f = &m->fields[i];
    mc_slice name = mc_slice_cstr(f->name);
    /* a repeated key fills an array; otherwise its last value counts, as
     * with FastAPI (Starlette's query dict keeps the last) */
    size_t count = 0, last = 0;
    for (size_t k = 0; k < n; k++)
      if (mc_slice_eq(keys[k], name))
        count++, last = k;
    push_key(&d, f->name, name.len);
    if (count == 0) {
      if (f->required)
        fail(&d, "missing", "Field required");
      else
        set_default(f, base + f->offset);
    } else if (f->type == MC_T_ARRAY) {
      /* ?tag=a&tag=b fills an array, item by item */
      if (f->has_present)
        *(bool *)(base + f->present_offset) = true;
      if (f->has_max_len && count > f->max_len) {
        /* as for JSON: say so and do not spend time on the items */
        fail(&d, "too_long",
             "List should have at most %zu item%s after validation, not %zu",
             f->max_len, plural(f->max_len), count);
        pop(&d);
        continue;
      }
      if (f->has_min_len && count < f->min_len)
        fail(&d, "too_short",
             "List should have at least %zu item%s after validation, not %zu",
             f->min_len, plural(f->min_len), count);
      size_t sz = mc__field_csize(f->items);
      char *items = mc_arena_calloc(a, count * sz);
      if (!items) {
        d.fatal = MC_ENOMEM;
        break;
      }
      size_t j = 0;
      for (size_t k = 0; k < n && !d.fatal; k++) {
        if (!mc_slice_eq(keys[k], name))
          continue;
        push_idx(&d, j);
        coerce(&d, f->items, values[k], items + j * sz);
        pop(&d);
        j++;
      }
      ((mc__array *)(base + f->offset))->items = items;
      ((mc__array *)(base + f->offset))->len = count;
    } else {
      if (f->has_present)
        *(bool *)(base + f->present_offset) = true;
      coerce(&d, f, values[last], base + f->offset);
    }
    pop(&d);
  }
  if (d.fatal)
    return d.fatal;
  return errs->len > before ? MC_EVALIDATION : 0;
}
