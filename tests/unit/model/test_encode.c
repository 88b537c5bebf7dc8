/* mc_model_encode_json: field order, nulls, numbers, escaping, nesting,
 * limits, and decode -> encode round trips. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "model_test.h"

TestSuite(encode, .init = t_setup, .fini = t_teardown);
TestSuite(roundtrip, .init = t_setup, .fini = t_teardown);

typedef struct {
  mc_slice city;
  int64_t zip;
} eaddr;

MC_MODEL(eaddr, MC_STRING(eaddr, city, MC_REQUIRED), MC_INT(eaddr, zip));

typedef MC_ARRAY_OF(int64_t) eint_list;

typedef struct {
  mc_slice s;
  int64_t i;
  double n;
  bool b;
  eaddr o;
  MC_ARRAY_OF(mc_slice) tags;
  MC_ARRAY_OF(eaddr) addrs;
  MC_ARRAY_OF(eint_list) grid;
  int64_t maybe;
  bool has_maybe;
  eaddr opt;
  bool has_opt;
} everything;

MC_MODEL(everything, MC_STRING(everything, s), MC_INT(everything, i),
         MC_NUMBER(everything, n), MC_BOOL(everything, b),
         MC_OBJECT(everything, o, eaddr),
         MC_ARRAY(everything, tags, MC_STRING_ITEMS()),
         MC_ARRAY(everything, addrs, MC_OBJECT_ITEMS(eaddr)),
         MC_ARRAY(everything, grid,
                  MC__ITEMS(MC_T_ARRAY, .items = MC_INT_ITEMS())),
         MC_INT(everything, maybe, MC_PRESENT(everything, has_maybe)),
         MC_OBJECT(everything, opt, eaddr, MC_PRESENT(everything, has_opt)));

Test(encode, zero_struct_in_field_order) {
  everything e;
  memset(&e, 0, sizeof e);
  cr_assert_str_eq(t_encode(&everything_model, &e),
                   "{\"s\":null,\"i\":0,\"n\":0.0,\"b\":false,\"o\":{\"city\":"
                   "null,\"zip\":0},\"tags\":null,\"addrs\":null,\"grid\":"
                   "null,\"maybe\":null,\"opt\":null}");
}

Test(encode, every_type_filled) {
  mc_slice tags[] = {MC_LIT("a"), MC_LIT("")};
  eaddr addrs[] = {{MC_LIT("X"), 1}, {MC_SLICE_NULL, 2}};
  int64_t r0[] = {1, 2}, r1[] = {0};
  eint_list rows[] = {{r0, 2}, {r1, 0}, {NULL, 0}};
  everything e = {.s = MC_LIT("hi"),
                  .i = -7,
                  .n = 2.5,
                  .b = true,
                  .o = {MC_LIT("Oslo"), 150},
                  .tags = {tags, 2},
                  .addrs = {addrs, 2},
                  .grid = {rows, 3},
                  .maybe = 5,
                  .has_maybe = true,
                  .opt = {MC_LIT("Y"), 3},
                  .has_opt = true};
  cr_assert_str_eq(
      t_encode(&everything_model, &e),
      "{\"s\":\"hi\",\"i\":-7,\"n\":2.5,\"b\":true,\"o\":{\"city\":"
      "\"Oslo\",\"zip\":150},\"tags\":[\"a\",\"\"],\"addrs\":[{"
      "\"city\":\"X\",\"zip\":1},{\"city\":null,\"zip\":2}],"
      "\"grid\":[[1,2],[],null],\"maybe\":5,\"opt\":{\"city\":"
      "\"Y\",\"zip\":3}}");
}

Test(encode, presence_false_writes_null_whatever_the_value) {
  everything e;
  memset(&e, 0, sizeof e);
  e.maybe = 42;
  e.opt.city = MC_LIT("z");
  const char *s = t_encode(&everything_model, &e);
  cr_assert(strstr(s, "\"maybe\":null,\"opt\":null}") != NULL, "%s", s);
}

Test(encode, empty_string_is_not_null) {
  everything e;
  memset(&e, 0, sizeof e);
  e.s = (mc_slice){"", 0};
  const char *s = t_encode(&everything_model, &e);
  cr_assert(strncmp(s, "{\"s\":\"\",", 8) == 0, "%s", s);
}

Test(encode, string_escaping) {
  everything e;
  memset(&e, 0, sizeof e);
  e.s = MC_LIT("a\"b\\c\n\t\r\b\f\x01\x1f/\xc3\xa9\xf0\x9f\x98\x80");
  const char *s = t_encode(&everything_model, &e);
  json_t *j = t_parse(s);
  const char *back = json_string_value(json_object_get(j, "s"));
  cr_assert_str_eq(back, "a\"b\\c\n\t\r\b\f\x01\x1f/\xc3\xa9\xf0\x9f\x98\x80");
  cr_assert(strstr(s, "\\u0001") != NULL, "%s", s);
}

Test(encode, invalid_utf8_replaced_output_stays_json) {
  everything e;
  memset(&e, 0, sizeof e);
  e.s = MC_LIT("a\xff"
               "b");
  json_t *j = t_parse(t_encode(&everything_model, &e));
  cr_assert_str_eq(json_string_value(json_object_get(j, "s")), "a\xef\xbf\xbd"
                                                               "b");
}

Test(encode, slices_are_not_nul_terminated) {
  everything e;
  memset(&e, 0, sizeof e);
  e.s = (mc_slice){"abcdef", 3};
  const char *s = t_encode(&everything_model, &e);
  cr_assert(strncmp(s, "{\"s\":\"abc\",", 11) == 0, "%s", s);
}

Test(encode, int64_extremes) {
  everything e;
  memset(&e, 0, sizeof e);
  e.i = INT64_MIN;
  const char *s = t_encode(&everything_model, &e);
  cr_assert(strstr(s, "\"i\":-9223372036854775808,") != NULL, "%s", s);
  e.i = INT64_MAX;
  s = t_encode(&everything_model, &e);
  cr_assert(strstr(s, "\"i\":9223372036854775807,") != NULL, "%s", s);
}

/* The number as encoded in field n. */
static const char *num(double v) {
  everything e;
  memset(&e, 0, sizeof e);
  e.n = v;
  const char *s = t_encode(&everything_model, &e);
  const char *p = strstr(s, "\"n\":");
  cr_assert_not_null(p);
  p += 4;
  return mc_arena_strndup(t_arena, p, strcspn(p, ","));
}

Test(encode, numbers_shortest_form) {
  cr_assert_str_eq(num(2.5), "2.5");
  cr_assert_str_eq(num(0.1), "0.1");
  cr_assert_str_eq(num(-0.1), "-0.1");
  cr_assert_str_eq(num(1.0 / 3), "0.3333333333333333");
  cr_assert_str_eq(num(0.1 + 0.2), "0.30000000000000004");
  cr_assert_str_eq(num(1e300), "1e+300");
  cr_assert_str_eq(num(1e-7), "1e-07");
  cr_assert_str_eq(num(123456.789), "123456.789");
  cr_assert_str_eq(num(5e-324), "5e-324");
  cr_assert_str_eq(num(DBL_MAX), "1.7976931348623157e+308");
  cr_assert_str_eq(num(DBL_MIN), "2.2250738585072014e-308");
}

Test(encode, whole_numbers_keep_a_fraction_as_python) {
  /* A number field is a float: pydantic writes 2.0, and 0 already was 0.0. */
  cr_assert_str_eq(num(0.0), "0.0");
  cr_assert_str_eq(num(-0.0), "-0.0");
  cr_assert_str_eq(num(2.0), "2.0");
  cr_assert_str_eq(num(-150.0), "-150.0");
  cr_assert_str_eq(num(1e15), "1e+15");
}

Test(encode, non_finite_numbers_are_null) {
  cr_assert_str_eq(num(NAN), "null");
  cr_assert_str_eq(num(INFINITY), "null");
  cr_assert_str_eq(num(-INFINITY), "null");
}

/* Significant digits of a number's text, trailing zeros not counted. */
static int sig_digits(const char *s) {
  int n = 0, zeros = 0;
  bool started = false;
  for (; *s && *s != 'e'; s++) {
    if (*s < '0' || *s > '9')
      continue;
    if (*s == '0' && !started)
      continue;
    started = true;
    if (*s == '0') {
      zeros++;
    } else {
      n += zeros + 1;
      zeros = 0;
    }
  }
  return n;
}

Test(encode, numbers_round_trip) {
  double vals[] = {0.1,
                   1.0 / 3,
                   2.0 / 3,
                   M_PI,
                   M_E,
                   1e-300,
                   1e300,
                   DBL_MIN,
                   DBL_MAX,
                   5e-324,
                   123456789.123456789,
                   9007199254740993.0,
                   -1.5e-10,
                   4.35,
                   0.3};
  for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
    const char *s = num(vals[i]);
    cr_assert_eq(strtod(s, NULL), vals[i], "%s", s);
  }
  srand(7);
  for (int i = 0; i < 5000; i++) {
    uint64_t bits =
        ((uint64_t)rand() << 42) ^ ((uint64_t)rand() << 21) ^ (uint64_t)rand();
    double v;
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v))
      continue;
    const char *s = num(v);
    cr_assert_eq(strtod(s, NULL), v, "%s", s);
    /* shortest: one significant digit fewer does not read back */
    int digits = sig_digits(s);
    if (digits > 1) {
      char shorter[400];
      snprintf(shorter, sizeof shorter, "%.*g", digits - 1, v);
      cr_assert_neq(strtod(shorter, NULL), v, "%s vs %s", s, shorter);
    }
  }
}

Test(encode, appends_to_the_buffer) {
  everything e;
  memset(&e, 0, sizeof e);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_cstr(&b, "x=");
  cr_assert_eq(mc_model_encode_json(&eaddr_model, &e.o, &b), 0);
  cr_assert_str_eq(b.ptr, "x={\"city\":null,\"zip\":0}");
  mc_buf_free(&b);
}

Test(encode, buffer_limit_restores_the_buffer) {
  everything e;
  memset(&e, 0, sizeof e);
  for (size_t limit = 3; limit < 60; limit++) {
    mc_buf b;
    mc_buf_init(&b, limit);
    mc_buf_append_cstr(&b, "ab");
    cr_assert_eq(mc_model_encode_json(&everything_model, &e, &b), MC_ETOOBIG);
    cr_assert_eq(b.len, 2);
    cr_assert_str_eq(b.ptr, "ab");
    mc_buf_free(&b);
  }
}

typedef struct enode enode;
struct enode {
  int64_t v;
  MC_ARRAY_OF(enode) kids;
};

MC_MODEL_DECLARE(enode);
MC_MODEL(enode, MC_INT(enode, v),
         MC_ARRAY(enode, kids, MC_OBJECT_ITEMS(enode)));

static enode *chain(size_t n) {
  enode *nodes = mc_arena_calloc(t_arena, n * sizeof *nodes);
  for (size_t i = 0; i < n; i++) {
    nodes[i].v = (int64_t)i;
    if (i + 1 < n)
      nodes[i].kids = (typeof(nodes[i].kids)){&nodes[i + 1], 1};
  }
  return nodes;
}

Test(encode, nesting_limit) {
  mc_buf b;
  mc_buf_init(&b, 0);
  /* 32 objects and 31 arrays: 63 levels, as the decoder allows */
  cr_assert_eq(mc_model_encode_json(&enode_model, chain(32), &b), 0);
  mc_buf_reset(&b);
  cr_assert_eq(mc_model_encode_json(&enode_model, chain(33), &b), MC_ETOOBIG);
  cr_assert_eq(b.len, 0);
  mc_buf_free(&b);
}

/* ---- round trips ------------------------------------------------------- */

Test(roundtrip, decode_then_encode_gives_the_canonical_text) {
  const char *in =
      "{ \"grid\":[[1, 2],[]], \"s\":\"h\\u00e9\\n\", \"i\":-7,\"n\":0.5,"
      "\"b\":true,\"o\":{\"zip\":1,\"city\":\"c\"},\"tags\":[\"a\"],"
      "\"addrs\":[{\"city\":\"d\"}],\"maybe\":3,\"opt\":null}";
  const char *want =
      "{\"s\":\"h\xc3\xa9\\n\",\"i\":-7,\"n\":0.5,\"b\":true,\"o\":{\"city\":"
      "\"c\",\"zip\":1},\"tags\":[\"a\"],\"addrs\":[{\"city\":\"d\",\"zip\":0}"
      "],\"grid\":[[1,2],[]],\"maybe\":3,\"opt\":null}";
  everything *e = NULL;
  cr_assert_eq(t_decode(&everything_model, in, &e), 0, "%s", t_errors_text());
  const char *out = t_encode(&everything_model, e);
  cr_assert_str_eq(out, want);
  everything *again = NULL;
  cr_assert_eq(t_decode(&everything_model, out, &again), 0);
  cr_assert_str_eq(t_encode(&everything_model, again), want);
}

Test(roundtrip, numbers_survive) {
  const char *in = "{\"n\":0.30000000000000004,\"i\":9007199254740993}";
  everything *e = NULL;
  cr_assert_eq(t_decode(&everything_model, in, &e), 0);
  const char *out = t_encode(&everything_model, e);
  cr_assert(strstr(out, "\"i\":9007199254740993,\"n\":0.30000000000000004,"),
            "%s", out);
}

Test(roundtrip, deep_recursive_model) {
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_model_encode_json(&enode_model, chain(32), &b), 0);
  enode *n = NULL;
  cr_assert_eq(t_decode(&enode_model, b.ptr, &n), 0);
  cr_assert_str_eq(t_encode(&enode_model, n), b.ptr);
  mc_buf_free(&b);
}
