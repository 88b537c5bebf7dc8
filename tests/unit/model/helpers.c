#include <stdarg.h>

#include "model_test.h"

mc_arena *t_arena;
mc_model_errors t_errs;

void t_setup(void) {
  cr_assert_eq(mc_arena_new(&t_arena, 0, 0), 0);
  mc_model_errors_init(&t_errs, t_arena);
}

void t_teardown(void) {
  mc_arena_free(t_arena);
  t_arena = NULL;
}

int t_decode_n(const mc_model *m, const char *json, size_t len, void *out) {
  return mc_model_decode_json(m, (mc_slice){json, len}, t_arena, "body",
                              (void **)out, &t_errs);
}

int t_decode(const mc_model *m, const char *json, void *out) {
  return t_decode_n(m, json, strlen(json), out);
}

const char *t_errors_text(void) {
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_model_errors_json(&t_errs, &b), 0);
  char *s = mc_arena_strndup(t_arena, b.ptr, b.len);
  mc_buf_free(&b);
  return s;
}

void t_expect_errors(size_t n, ...) {
  cr_assert_eq(t_errs.len, n, "expected %zu errors, got %s", n,
               t_errors_text());
  va_list ap;
  va_start(ap, n);
  for (size_t i = 0; i < n; i++) {
    const char *loc = va_arg(ap, const char *);
    const char *type = va_arg(ap, const char *);
    const char *msg = va_arg(ap, const char *);
    const mc_model_error *e = &t_errs.items[i];
    cr_assert_str_eq(e->loc, loc, "error %zu: %s", i, t_errors_text());
    cr_assert_str_eq(e->type, type, "error %zu: %s", i, t_errors_text());
    if (msg)
      cr_assert_str_eq(e->msg, msg, "error %zu: %s", i, t_errors_text());
  }
  va_end(ap);
}

const char *t_encode(const mc_model *m, const void *obj) {
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc_model_encode_json(m, obj, &b);
  cr_assert_eq(err, 0, "encode: %s", mc_err_name(err));
  char *s = mc_arena_strndup(t_arena, b.ptr ? b.ptr : "", b.len);
  mc_buf_free(&b);
  return s;
}

static void decref(void *j) {
  json_decref(j);
}

json_t *t_parse(const char *text) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
  cr_assert_not_null(j, "not JSON (%s): %s", je.text, text);
  cr_assert_eq(mc_arena_cleanup_add(t_arena, decref, j), 0);
  return j;
}

json_t *t_model_schema(const mc_model *m) {
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_model_schema_json(m, &b), 0);
  json_t *j = t_parse(b.ptr);
  mc_buf_free(&b);
  return j;
}

json_t *t_field_schema(const mc_field *f) {
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_field_schema_json(f, &b), 0);
  json_t *j = t_parse(b.ptr);
  mc_buf_free(&b);
  return j;
}

char *t_repeat(const char *s, size_t n) {
  size_t len = strlen(s);
  char *out = mc_arena_alloc(t_arena, len * n + 1);
  cr_assert_not_null(out);
  for (size_t i = 0; i < n; i++)
    memcpy(out + i * len, s, len);
  out[len * n] = 0;
  return out;
}
