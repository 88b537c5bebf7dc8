/* mc_model_decode_pairs: path and query parameters, coerced from strings
 * as FastAPI does. */
#include <math.h>

#include "model_test.h"

TestSuite(pairs, .init = t_setup, .fini = t_teardown);

typedef struct {
  int64_t page;
  double price;
  bool flag;
  mc_slice q;
  bool has_q;
  MC_ARRAY_OF(mc_slice) tag;
  MC_ARRAY_OF(int64_t) ids;
  int64_t def;
  mc_slice sdef;
  mc_slice code;
  int64_t big;
} qp;

MC_MODEL(qp, MC_INT(qp, page, MC_MIN(1)), MC_NUMBER(qp, price, MC_LT(100)),
         MC_BOOL(qp, flag),
         MC_STRING(qp, q, MC_LEN(1, 3), MC_PRESENT(qp, has_q)),
         MC_ARRAY(qp, tag, MC_STRING_ITEMS(MC_MAX_LEN(2)), MC_MAX_ITEMS(3)),
         MC_ARRAY(qp, ids, MC_INT_ITEMS(), MC_MIN_ITEMS(2)),
         MC_INT(qp, def, MC_DEFAULT(20)),
         MC_STRING(qp, sdef, MC_DEFAULT_STR("asc")),
         MC_STRING(qp, code, MC_PATTERN("^\\d+$")), MC_INT(qp, big));

typedef struct {
  int64_t id;
  mc_slice name;
} pp;

MC_MODEL(pp, MC_INT(pp, id, MC_REQUIRED), MC_STRING(pp, name, MC_REQUIRED));

/* Decodes alternating key, value strings (NULL-terminated) as a query. */
static int decode(const mc_model *m, void *obj, ...) {
  mc_slice keys[32], vals[32];
  size_t n = 0;
  va_list ap;
  va_start(ap, obj);
  const char *k;
  while ((k = va_arg(ap, const char *))) {
    keys[n] = mc_slice_cstr(k);
    vals[n++] = mc_slice_cstr(va_arg(ap, const char *));
  }
  va_end(ap);
  memset(obj, 0, m->size);
  return mc_model_decode_pairs(m, keys, vals, n, t_arena, "query", obj,
                               &t_errs);
}

Test(pairs, coerces_each_type) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "page", "12", "price", "9.5", "flag",
                      "true", "q", "abc", "big", "-9223372036854775808", NULL),
               0, "%s", t_errors_text());
  cr_assert_eq(o.page, 12);
  cr_assert_float_eq(o.price, 9.5, 0);
  cr_assert(o.flag);
  cr_assert_str_eq(o.q.ptr, "abc");
  cr_assert(o.has_q);
  cr_assert_eq(o.big, INT64_MIN);
}

Test(pairs, missing_optional_fields_take_defaults) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, NULL), 0);
  cr_assert_eq(o.def, 20);
  cr_assert_str_eq(o.sdef.ptr, "asc");
  cr_assert(!o.has_q);
  cr_assert_null(o.q.ptr);
  cr_assert_null(o.tag.items);
  cr_assert_eq(o.page, 0);
}

Test(pairs, missing_required_fields) {
  pp o;
  cr_assert_eq(decode(&pp_model, &o, "name", "x", NULL), MC_EVALIDATION);
  t_expect_one("[\"query\",\"id\"]", "missing", "Field required");
}

Test(pairs, integers) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "big", "+7", NULL), 0);
  cr_assert_eq(o.big, 7);
  cr_assert_eq(decode(&qp_model, &o, "big", "9223372036854775807", NULL), 0);
  cr_assert_eq(o.big, INT64_MAX);
  const char *bad[] = {"12a", "", "1.5", " 1", "1 ", "0x10", "-", "1e3"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t_teardown();
    t_setup();
    cr_assert_eq(decode(&qp_model, &o, "big", bad[i], NULL), MC_EVALIDATION,
                 "%s", bad[i]);
    t_expect_one(
        "[\"query\",\"big\"]", "int_parsing",
        "Input should be a valid integer, unable to parse string as an "
        "integer");
  }
}

Test(pairs, integers_beyond_64_bits) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "big", "9223372036854775808", "page",
                      "-99999999999999999999", NULL),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"query\",\"page\"]", "int_parsing_size",
                  "Input should be an integer that fits in 64 bits",
                  "[\"query\",\"big\"]", "int_parsing_size",
                  "Input should be an integer that fits in 64 bits");
}

Test(pairs, integer_constraints) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "page", "0", NULL), MC_EVALIDATION);
  t_expect_one("[\"query\",\"page\"]", "greater_than_equal",
               "Input should be greater than or equal to 1");
}

Test(pairs, numbers) {
  qp o;
  const char *good[] = {"1.5", "2", "-0.25", "1e1", ".5", "5.", "+3", "1E-2"};
  const double want[] = {1.5, 2, -0.25, 10, 0.5, 5, 3, 0.01};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    cr_assert_eq(decode(&qp_model, &o, "price", good[i], NULL), 0, "%s",
                 good[i]);
    cr_assert_float_eq(o.price, want[i], 1e-12, "%s", good[i]);
  }
  /* long but valid: not limited by a small copy buffer */
  char *tiny = mc_arena_sprintf(t_arena, "0.%s1", t_repeat("0", 80));
  cr_assert_eq(decode(&qp_model, &o, "price", tiny, NULL), 0);
  cr_assert_float_eq(o.price, 1e-81, 1e-90);
}

Test(pairs, numbers_refused) {
  qp o;
  const char *bad[] = {"nan",   "NaN",    "inf", "-inf", "Infinity",
                       "0x1p3", "0X10",   "",    " 1",   "\t1",
                       "\n1",   "1 ",     "1,5", "abc",  "1e",
                       "1e999", "-1e999", "--1", "1_0",  "nan(1)"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t_teardown();
    t_setup();
    cr_assert_eq(decode(&qp_model, &o, "price", bad[i], NULL), MC_EVALIDATION,
                 "%s", bad[i]);
    t_expect_one("[\"query\",\"price\"]", "float_parsing",
                 "Input should be a valid number, unable to parse string as a "
                 "number");
  }
}

Test(pairs, number_constraints) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "price", "100", NULL), MC_EVALIDATION);
  t_expect_one("[\"query\",\"price\"]", "less_than",
               "Input should be less than 100");
}

Test(pairs, booleans) {
  qp o;
  const char *yes[] = {"true", "1", "yes", "on", "t", "y", "TRUE", "Yes", "ON"};
  const char *no[] = {"false", "0", "no", "off", "f", "n", "False", "NO"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    cr_assert_eq(decode(&qp_model, &o, "flag", yes[i], NULL), 0, "%s", yes[i]);
    cr_assert(o.flag, "%s", yes[i]);
  }
  for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
    o.flag = true;
    cr_assert_eq(decode(&qp_model, &o, "flag", no[i], NULL), 0, "%s", no[i]);
    cr_assert(!o.flag, "%s", no[i]);
  }
  const char *bad[] = {"2", "", "truee", "nope", "-1", " true"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t_teardown();
    t_setup();
    cr_assert_eq(decode(&qp_model, &o, "flag", bad[i], NULL), MC_EVALIDATION,
                 "%s", bad[i]);
    t_expect_one("[\"query\",\"flag\"]", "bool_parsing",
                 "Input should be a valid boolean, unable to interpret input");
  }
}

Test(pairs, strings_checked_and_copied) {
  qp o;
  char v[] = "\xc3\xa9\xc3\xa9";
  cr_assert_eq(decode(&qp_model, &o, "q", v, "code", "123", NULL), 0);
  v[0] = 'x'; /* the decoded value is a copy */
  cr_assert_str_eq(o.q.ptr, "\xc3\xa9\xc3\xa9");
  cr_assert_eq(o.q.len, 4);
  cr_assert_eq(decode(&qp_model, &o, "q", "", "code", "12a", NULL),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"query\",\"q\"]", "string_too_short",
                  "String should have at least 1 character",
                  "[\"query\",\"code\"]", "string_pattern_mismatch",
                  "String should match pattern '^\\d+$'");
}

Test(pairs, invalid_utf8_refused) {
  const char *bad[] = {
      "\xff",    "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
      "\xe2\x82"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t_teardown();
    t_setup();
    qp o;
    cr_assert_eq(decode(&qp_model, &o, "q", bad[i], NULL), MC_EVALIDATION,
                 "%zu", i);
    t_expect_one("[\"query\",\"q\"]", "string_unicode",
                 "Input should be a valid string, unable to parse raw data as "
                 "a unicode string");
  }
}

Test(pairs, embedded_nul_refused) {
  qp o;
  memset(&o, 0, sizeof o);
  mc_slice k = MC_LIT("q"), v = {"a\0b", 3};
  cr_assert_eq(mc_model_decode_pairs(&qp_model, &k, &v, 1, t_arena, "query", &o,
                                     &t_errs),
               MC_EVALIDATION);
  t_expect_one("[\"query\",\"q\"]", "string_unicode", NULL);
}

Test(pairs, repeated_keys_fill_arrays_in_order) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "tag", "a", "page", "1", "tag", "b", "ids",
                      "5", "tag", "c", "ids", "-6", NULL),
               0, "%s", t_errors_text());
  cr_assert_eq(o.tag.len, 3);
  cr_assert_str_eq(o.tag.items[0].ptr, "a");
  cr_assert_str_eq(o.tag.items[2].ptr, "c");
  cr_assert_eq(o.ids.len, 2);
  cr_assert_eq(o.ids.items[1], -6);
}

Test(pairs, array_item_errors_carry_the_index) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "ids", "1", "ids", "x", "tag", "ok", "tag",
                      "long", "ids", "99999999999999999999", NULL),
               MC_EVALIDATION);
  t_expect_errors(3, "[\"query\",\"tag\",1]", "string_too_long",
                  "String should have at most 2 characters",
                  "[\"query\",\"ids\",1]", "int_parsing", NULL,
                  "[\"query\",\"ids\",2]", "int_parsing_size", NULL);
}

Test(pairs, array_lengths) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "ids", "1", "tag", "a", "tag", "b", "tag",
                      "c", "tag", "toolong", NULL),
               MC_EVALIDATION);
  /* too long: one error, as for JSON; the items are not looked at */
  t_expect_errors(2, "[\"query\",\"tag\"]", "too_long",
                  "List should have at most 3 items after validation, not 4",
                  "[\"query\",\"ids\"]", "too_short",
                  "List should have at least 2 items after validation, not 1");
}

Test(pairs, repeated_scalar_key_takes_the_last_value_as_fastapi) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "page", "x", "page", "3", NULL), 0);
  cr_assert_eq(o.page, 3);
}

Test(pairs, unknown_and_differently_cased_keys_are_ignored) {
  qp o;
  cr_assert_eq(decode(&qp_model, &o, "Page", "x", "zzz", "1", "pag", "x", NULL),
               0);
  cr_assert_eq(o.page, 0);
}

Test(pairs, object_fields_cannot_be_parameters) {
  typedef struct {
    pp inner;
  } wrap;
  static const mc_field f[] = {{.name = "inner",
                                .type = MC_T_OBJECT,
                                .offset = offsetof(wrap, inner),
                                .model = &pp_model}};
  static const mc_model m = {
      .name = "wrap", .size = sizeof(wrap), .fields = f, .nfields = 1};
  wrap o;
  cr_assert_eq(decode(&m, &o, NULL), 0);
  cr_assert_eq(decode(&m, &o, "inner", "x", NULL), MC_EVALIDATION);
  t_expect_one("[\"query\",\"inner\"]", "unsupported", NULL);
}

Test(pairs, path_parameters_and_errors_accumulate) {
  pp o;
  memset(&o, 0, sizeof o);
  mc_slice keys[] = {MC_LIT("id"), MC_LIT("name")};
  mc_slice vals[] = {MC_LIT("abc"), MC_LIT("n")};
  cr_assert_eq(mc_model_decode_pairs(&pp_model, keys, vals, 2, t_arena, "path",
                                     &o, &t_errs),
               MC_EVALIDATION);
  qp q;
  cr_assert_eq(decode(&qp_model, &q, "page", "1", NULL), 0);
  cr_assert_eq(decode(&qp_model, &q, "page", "0", NULL), MC_EVALIDATION);
  t_expect_errors(2, "[\"path\",\"id\"]", "int_parsing", NULL,
                  "[\"query\",\"page\"]", "greater_than_equal", NULL);
}

Test(pairs, keys_are_slices_not_c_strings) {
  pp o;
  memset(&o, 0, sizeof o);
  const char *buf = "idname42xyz";
  mc_slice keys[] = {{buf, 2}, {buf + 2, 4}};
  mc_slice vals[] = {{buf + 6, 2}, {buf + 8, 3}};
  cr_assert_eq(mc_model_decode_pairs(&pp_model, keys, vals, 2, t_arena, "path",
                                     &o, &t_errs),
               0);
  cr_assert_eq(o.id, 42);
  cr_assert_str_eq(o.name.ptr, "xyz");
  cr_assert_eq(o.name.len, 3);
}
