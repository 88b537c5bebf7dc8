/* mc_model_check, pattern translation and matching, and the error list. */
#include <time.h>

#include "model_test.h"

TestSuite(check, .init = t_setup, .fini = t_teardown);
TestSuite(pattern, .init = t_setup, .fini = t_teardown);
TestSuite(errors, .init = t_setup, .fini = t_teardown);

#define MODEL_OF(name_, ...)                                                   \
  const mc_field name_##_f[] = {__VA_ARGS__};                                  \
  const mc_model name_ = {.name = #name_,                                      \
                          .size = 64,                                          \
                          .fields = name_##_f,                                 \
                          .nfields = sizeof name_##_f / sizeof *name_##_f}

typedef struct {
  mc_slice s;
} one_str;
MC_MODEL(one_str, MC_STRING(one_str, s, MC_LEN(1, 3)));

/* ---- mc_model_check ------------------------------------------------------ */

Test(check, valid_models_pass) {
  MODEL_OF(ok,
           {.name = "a",
            .type = MC_T_STRING,
            MC_LEN(2, 2),
            MC_PATTERN("^\\w+$"),
            MC_ENUM("ab", "cd")},
           {.name = "b", .type = MC_T_INT, MC_MIN(3), MC_MAX(3)},
           {.name = "c", .type = MC_T_NUMBER, MC_GT(-1), MC_LT(1)},
           {.name = "d", .type = MC_T_BOOL},
           {.name = "e", .type = MC_T_OBJECT, .model = &one_str_model},
           {.name = "f",
            .type = MC_T_ARRAY,
            .items = MC_STRING_ITEMS(MC_ENUM("x"), MC_PATTERN("x"))},
           {.name = "g",
            .type = MC_T_ARRAY,
            .items = MC__ITEMS(MC_T_ARRAY, .items = MC_OBJECT_ITEMS(one_str))},
           {.name = "h", .type = MC_T_STRING, MC_EXAMPLE("{\"a\":[1]}")});
  cr_assert_eq(mc_model_check(&ok), 0);
  cr_assert_eq(mc_model_check(&one_str_model), 0);
  static const mc_model empty = {.name = "empty", .size = 1};
  cr_assert_eq(mc_model_check(&empty), 0);
}

Test(check, duplicate_field_names) {
  MODEL_OF(dup, {.name = "a", .type = MC_T_INT},
           {.name = "b", .type = MC_T_INT}, {.name = "a", .type = MC_T_STRING});
  cr_assert_eq(mc_model_check(&dup), MC_EINVAL);
}

Test(check, missing_names) {
  MODEL_OF(noname, {.name = NULL, .type = MC_T_INT});
  MODEL_OF(emptyname, {.name = "", .type = MC_T_INT});
  cr_assert_eq(mc_model_check(&noname), MC_EINVAL);
  cr_assert_eq(mc_model_check(&emptyname), MC_EINVAL);
  static const mc_model untitled = {.name = NULL, .size = 1};
  cr_assert_eq(mc_model_check(&untitled), MC_EINVAL);
  cr_assert_eq(mc_model_check(NULL), MC_EINVAL);
  static const mc_model nofields = {.name = "x", .size = 1, .nfields = 2};
  cr_assert_eq(mc_model_check(&nofields), MC_EINVAL);
}

Test(check, min_above_max) {
  MODEL_OF(m1, {.name = "a", .type = MC_T_INT, MC_MIN(5), MC_MAX(4)});
  MODEL_OF(m2, {.name = "a", .type = MC_T_NUMBER, MC_GT(1.5), MC_LT(1.25)});
  MODEL_OF(m3, {.name = "a", .type = MC_T_STRING, MC_LEN(3, 2)});
  MODEL_OF(m4, {.name = "a",
                .type = MC_T_ARRAY,
                .items = MC_INT_ITEMS(),
                MC_MIN_ITEMS(2),
                MC_MAX_ITEMS(1)});
  MODEL_OF(m5, {.name = "a",
                .type = MC_T_ARRAY,
                .items = MC_INT_ITEMS(MC_MIN(1), MC_MAX(0))});
  cr_assert_eq(mc_model_check(&m1), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m2), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m3), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m4), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m5), MC_EINVAL);
}

Test(check, enum_and_pattern_only_on_strings) {
  MODEL_OF(m1, {.name = "a", .type = MC_T_INT, MC_ENUM("1", "2")});
  MODEL_OF(m2, {.name = "a",
                .type = MC_T_ARRAY,
                .items = MC_STRING_ITEMS(),
                MC_ENUM("x")});
  MODEL_OF(
      m3,
      {.name = "a", .type = MC_T_ARRAY, .items = MC_INT_ITEMS(MC_ENUM("x"))});
  MODEL_OF(m4, {.name = "a", .type = MC_T_INT, MC_PATTERN("^1$")});
  MODEL_OF(m5, {.name = "a",
                .type = MC_T_STRING,
                .enum_values = (const char *const[]){NULL}});
  cr_assert_eq(mc_model_check(&m1), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m2), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m3), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m4), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m5), MC_EINVAL); /* nothing could match */
}

Test(check, arrays_need_items_objects_need_models) {
  MODEL_OF(m1, {.name = "a", .type = MC_T_ARRAY});
  MODEL_OF(m2, {.name = "a",
                .type = MC_T_ARRAY,
                .items = &(const mc_field){.name = ""}});
  MODEL_OF(m3, {.name = "a", .type = MC_T_OBJECT});
  MODEL_OF(m4,
           {.name = "a", .type = MC_T_ARRAY, .items = MC__ITEMS(MC_T_ARRAY)});
  MODEL_OF(m5, {.name = "a", .type = (mc_type)99});
  MODEL_OF(m6, {.name = "a", .type = (mc_type)0});
  cr_assert_eq(mc_model_check(&m1), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m2), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m3), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m4), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m5), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m6), MC_EINVAL);
}

Test(check, patterns_that_do_not_compile) {
  const char *bad[] = {"(", "[a", "a\\", "a{2,1}", "[\\D]", "[\\]]", "*a"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    const mc_field f[] = {
        {.name = "a", .type = MC_T_STRING, MC_PATTERN(bad[i])}};
    const mc_model m = {.name = "m", .size = 16, .fields = f, .nfields = 1};
    cr_assert_eq(mc_model_check(&m), MC_EINVAL, "%s", bad[i]);
  }
}

Test(check, problems_in_nested_models_are_found) {
  MODEL_OF(inner, {.name = "x", .type = MC_T_STRING, MC_PATTERN("(")});
  MODEL_OF(outer, {.name = "o", .type = MC_T_OBJECT, .model = &inner});
  MODEL_OF(outer2, {.name = "o",
                    .type = MC_T_ARRAY,
                    .items = &(const mc_field){
                        .name = "", .type = MC_T_OBJECT, .model = &inner}});
  cr_assert_eq(mc_model_check(&outer), MC_EINVAL);
  cr_assert_eq(mc_model_check(&outer2), MC_EINVAL);
}

Test(check, examples_must_be_json) {
  /* An example is copied into openapi.json as it is: refuse broken ones
   * at start-up rather than serve a broken document. */
  MODEL_OF(m1, {.name = "a", .type = MC_T_STRING, MC_EXAMPLE("Ann")});
  MODEL_OF(m2, {.name = "a", .type = MC_T_INT, MC_EXAMPLE("12")});
  cr_assert_eq(mc_model_check(&m1), MC_EINVAL);
  cr_assert_eq(mc_model_check(&m2), 0);
}

typedef struct ctree ctree;
struct ctree {
  MC_ARRAY_OF(ctree) left;
  MC_ARRAY_OF(ctree) right;
  MC_ARRAY_OF(ctree) more;
};
MC_MODEL_DECLARE(ctree);
MC_MODEL(ctree, MC_ARRAY(ctree, left, MC_OBJECT_ITEMS(ctree)),
         MC_ARRAY(ctree, right, MC_OBJECT_ITEMS(ctree)),
         MC_ARRAY(ctree, more, MC_OBJECT_ITEMS(ctree)));

Test(check, recursive_models_check_quickly, .timeout = 10) {
  /* Regression: the checker followed every path to depth 64, which is
   * 3^32 visits for a node with three recursive fields. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cr_assert_eq(mc_model_check(&ctree_model), 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  cr_assert_lt(t1.tv_sec - t0.tv_sec, 2);
}

/* ---- patterns ------------------------------------------------------------ */

static void ere(const char *in, const char *want) {
  char *out = mc__pattern_to_ere(in);
  if (!want) {
    cr_assert_null(out, "%s gave %s", in, out ? out : "");
    return;
  }
  cr_assert_not_null(out, "%s", in);
  cr_assert_str_eq(out, want, "from %s", in);
  free(out);
}

Test(pattern, shorthands_translate) {
  ere("\\d", "[0-9]");
  ere("\\D", "[^0-9]");
  ere("\\w+", "[A-Za-z0-9_]+");
  ere("\\W", "[^A-Za-z0-9_]");
  ere("\\s", "[[:space:]]");
  ere("\\S", "[^[:space:]]");
  ere("[\\d.]", "[0-9.]");
  ere("[^\\s,]", "[^[:space:],]");
  ere("[\\w-]", "[A-Za-z0-9_-]");
  ere("", "");
  ere("^a.b$", "^a.b$");
}

Test(pattern, classes_and_escapes) {
  ere("[]a]", "[]a]");
  ere("[^]a]", "[^]a]");
  ere("\\.", "\\.");
  ere("\\\\", "\\\\");
  ere("[\\\\]", "[\\]");
  ere("[\\.]", "[.]");
  ere("\\t\\n\\r", "\t\n\r"); /* ECMA control escapes are the characters */
  ere("[\\t ]", "[\t ]");
  ere("[\\D]", NULL);
  ere("[\\]]", NULL);
  ere("[abc", NULL);
}

typedef struct {
  mc_slice any;
  mc_slice start;
  mc_slice end;
  mc_slice three;
  mc_slice space;
  mc_slice word;
  mc_slice email;
  mc_slice angle;
  mc_slice tab;
  mc_slice nonspace;
  mc_slice chars;
  mc_slice name;
  mc_slice lower;
} pats;

MC_MODEL(pats, MC_STRING(pats, any, MC_PATTERN("b")),
         MC_STRING(pats, start, MC_PATTERN("^b")),
         MC_STRING(pats, end, MC_PATTERN("c$")),
         MC_STRING(pats, three, MC_PATTERN("^\\d{3}$")),
         MC_STRING(pats, space, MC_PATTERN("a\\sb")),
         MC_STRING(pats, word, MC_PATTERN("^\\w+$")),
         MC_STRING(pats, email, MC_PATTERN("^[\\w.+-]+@[\\w-]+\\.\\w+$")),
         MC_STRING(pats, angle, MC_PATTERN("^\\<a\\>$")),
         MC_STRING(pats, tab, MC_PATTERN("^a\\tb$")),
         MC_STRING(pats, nonspace, MC_PATTERN("^\\S+$")),
         MC_STRING(pats, chars, MC_PATTERN("^.{1,3}$")),
         MC_STRING(pats, name, MC_PATTERN("^[^<>]{1,2}$")),
         MC_STRING(pats, lower, MC_PATTERN("^[a-z]+$")));

static void match(const char *field, const char *value, bool want) {
  t_teardown();
  t_setup();
  char *json = mc_arena_sprintf(t_arena, "{\"%s\":\"%s\"}", field, value);
  void *o = NULL;
  int rc = t_decode(&pats_model, json, &o);
  cr_assert_eq(rc, want ? 0 : MC_EVALIDATION, "%s ~ %s: %s", field, value,
               t_errors_text());
  if (!want)
    cr_assert_str_eq(t_errs.items[0].type, "string_pattern_mismatch");
}

Test(pattern, json_schema_patterns_are_unanchored) {
  cr_assert_eq(mc_model_check(&pats_model), 0);
  match("any", "abc", true);
  match("any", "xyz", false);
  match("start", "bc", true);
  match("start", "abc", false);
  match("end", "abc", true);
  match("end", "abcd", false);
}

Test(pattern, shorthands_match_as_ecma) {
  match("three", "123", true);
  match("three", "1234", false);
  match("three", "12a", false);
  match("space", "xa\\tby", true);
  match("space", "a b", true);
  match("space", "ab", false);
  match("word", "ab_9Z", true);
  match("word", "a-b", false);
  match("email", "ann.b+x@ex-ample.org", true);
  match("email", "ann@example", false);
  match("nonspace", "a\\u00e9", true);
  match("nonspace", "a b", false);
}

Test(pattern, ecma_identity_and_control_escapes) {
  match("angle", "<a>", true);
  match("angle", "a", false);
  match("tab", "a\\tb", true);
  match("tab", "atb", false);
}

Test(pattern, dot_and_classes_take_characters_not_bytes) {
  /* as JSON Schema (and pydantic) count: é is one character */
  match("chars", "\\u00e9\\u00e9\\u00e9", true);
  match("chars", "\\ud83d\\ude00", true);
  match("chars", "\\u00e9\\u00e9\\u00e9\\u00e9", false);
  match("name", "\\u00e9\\u00e9", true);
  match("name", "\\u00e9<", false);
  match("lower", "abc", true);
  match("lower", "ab\\u00e9", false);
  match("lower", "aB", false);
}

Test(pattern, the_cache_keeps_its_own_copy) {
  /* Regression: the cache kept the declaration's pointer and compared
   * through it later, reading freed memory for run-time declarations. */
  char *p = strdup("^zz[0-9]$");
  cr_assert_not_null(mc__pattern_get(p));
  free(p);
  const regex_t *re = mc__pattern_get("^zz[0-9]$");
  cr_assert_not_null(re);
  cr_assert(mc__pattern_match(re, "zz7"));
  cr_assert(!mc__pattern_match(re, "zz"));
}

Test(pattern, compiled_once_and_shared) {
  const regex_t *a = mc__pattern_get("^x+$");
  cr_assert_not_null(a);
  cr_assert_eq(mc__pattern_get("^x+$"), a);
  cr_assert_null(mc__pattern_get("("));
  cr_assert_null(mc__pattern_get("("));
}

/* ---- error list ------------------------------------------------------- */

Test(errors, json_of_an_empty_list) {
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_model_errors_json(&t_errs, &b), 0);
  cr_assert_str_eq(b.ptr, "[]");
  mc_buf_free(&b);
}

Test(errors, json_escapes_msg_and_type_and_keeps_loc) {
  cr_assert_eq(mc_model_errors_add(&t_errs, "[\"body\",\"a\\\"b\",3]",
                                   "say \"hi\"\n", "t"),
               0);
  cr_assert_eq(mc_model_errors_add(&t_errs, "[\"query\"]", "m", "missing"), 0);
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_model_errors_json(&t_errs, &b), 0);
  cr_assert_str_eq(b.ptr, "[{\"loc\":[\"body\",\"a\\\"b\",3],\"msg\":\"say "
                          "\\\"hi\\\"\\n\",\"type\":\"t\"},{\"loc\":["
                          "\"query\"],\"msg\":\"m\",\"type\":\"missing\"}]");
  json_t *j = t_parse(b.ptr);
  cr_assert_eq(json_array_size(j), 2);
  mc_buf_free(&b);
}

Test(errors, add_copies_its_strings) {
  char loc[] = "[\"body\",\"x\"]", msg[] = "message", type[] = "kind";
  cr_assert_eq(mc_model_errors_add(&t_errs, loc, msg, type), 0);
  memset(loc, 'z', sizeof loc - 1);
  memset(msg, 'z', sizeof msg - 1);
  memset(type, 'z', sizeof type - 1);
  cr_assert_str_eq(t_errs.items[0].loc, "[\"body\",\"x\"]");
  cr_assert_str_eq(t_errs.items[0].msg, "message");
  cr_assert_str_eq(t_errs.items[0].type, "kind");
}

Test(errors, many_errors_grow_the_list) {
  for (int i = 0; i < 1000; i++) {
    char loc[32];
    snprintf(loc, sizeof loc, "[\"body\",%d]", i);
    cr_assert_eq(mc_model_errors_add(&t_errs, loc, "m", "t"), 0);
  }
  cr_assert_eq(t_errs.len, 1000);
  cr_assert_str_eq(t_errs.items[999].loc, "[\"body\",999]");
  cr_assert_str_eq(t_errs.items[0].loc, "[\"body\",0]");
}

Test(errors, out_of_memory) {
  mc_arena *small;
  cr_assert_eq(mc_arena_new(&small, 0, 256), 0);
  mc_model_errors e;
  mc_model_errors_init(&e, small);
  int err = 0;
  for (int i = 0; i < 100 && !err; i++)
    err = mc_model_errors_add(&e, "[\"body\"]", "a message", "t");
  cr_assert_eq(err, MC_ENOMEM);
  mc_arena_free(small);
}

Test(errors, json_respects_the_buffer_limit) {
  mc_model_errors_add(&t_errs, "[\"body\"]", "a long message here", "t");
  mc_buf b;
  mc_buf_init(&b, 10);
  cr_assert_eq(mc_model_errors_json(&t_errs, &b), MC_ETOOBIG);
  mc_buf_free(&b);
}
