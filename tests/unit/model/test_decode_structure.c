/* JSON decoding of structure: nested objects, arrays (of objects, of
 * arrays), null handling, defaults, presence flags, unknown keys, malformed
 * and hostile input. */
#include "model_test.h"

TestSuite(decode_object, .init = t_setup, .fini = t_teardown);
TestSuite(decode_array, .init = t_setup, .fini = t_teardown);
TestSuite(decode_null, .init = t_setup, .fini = t_teardown);
TestSuite(decode_default, .init = t_setup, .fini = t_teardown);
TestSuite(decode_extra, .init = t_setup, .fini = t_teardown);
TestSuite(decode_invalid, .init = t_setup, .fini = t_teardown);
TestSuite(decode_depth, .init = t_setup, .fini = t_teardown);

/* ---- nested objects ------------------------------------------------------ */

typedef struct {
  mc_slice city;
  int64_t zip;
} addr;

MC_MODEL(addr, MC_STRING(addr, city, MC_REQUIRED, MC_MIN_LEN(1)),
         MC_INT(addr, zip, MC_MIN(0)));

typedef struct {
  mc_slice name;
  addr home;
  addr work;
  bool has_work;
} person;

MC_MODEL(person, MC_STRING(person, name, MC_REQUIRED),
         MC_OBJECT(person, home, addr, MC_REQUIRED),
         MC_OBJECT(person, work, addr, MC_PRESENT(person, has_work)));

Test(decode_object, nested_happy_path) {
  person *o = NULL;
  cr_assert_eq(t_decode(&person_model,
                        "{\"name\":\"Ann\",\"home\":{\"city\":\"Oslo\",\"zip\":"
                        "150},\"work\":{\"city\":\"Bergen\"}}",
                        &o),
               0);
  cr_assert_str_eq(o->home.city.ptr, "Oslo");
  cr_assert_eq(o->home.zip, 150);
  cr_assert(o->has_work);
  cr_assert_str_eq(o->work.city.ptr, "Bergen");
  cr_assert_eq(o->work.zip, 0);
}

Test(decode_object, errors_inside_carry_the_full_loc) {
  person *o = NULL;
  cr_assert_eq(t_decode(&person_model,
                        "{\"name\":\"Ann\",\"home\":{\"zip\":-1},\"work\":{"
                        "\"city\":\"\"}}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(3, "[\"body\",\"home\",\"city\"]", "missing",
                  "Field required", "[\"body\",\"home\",\"zip\"]",
                  "greater_than_equal",
                  "Input should be greater than or equal to 0",
                  "[\"body\",\"work\",\"city\"]", "string_too_short",
                  "String should have at least 1 character");
}

Test(decode_object, not_an_object) {
  person *o = NULL;
  cr_assert_eq(t_decode(&person_model,
                        "{\"name\":\"Ann\",\"home\":\"Oslo\",\"work\":[]}", &o),
               MC_EVALIDATION);
  t_expect_errors(
      2, "[\"body\",\"home\"]", "model_attributes_type",
      "Input should be a valid dictionary or object to extract fields from",
      "[\"body\",\"work\"]", "model_attributes_type",
      "Input should be a valid dictionary or object to extract fields from");
  cr_assert(o->has_work); /* given, though wrong */
}

Test(decode_object, missing_required_and_absent_optional) {
  person *o = NULL;
  cr_assert_eq(t_decode(&person_model, "{\"name\":\"Ann\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"home\"]", "missing", "Field required");
  cr_assert(!o->has_work);
  cr_assert_null(o->work.city.ptr);
}

Test(decode_object, required_object_given_null_is_a_type_error) {
  person *o = NULL;
  cr_assert_eq(t_decode(&person_model,
                        "{\"name\":\"A\",\"home\":null,\"work\":null}", &o),
               MC_EVALIDATION);
  t_expect_one(
      "[\"body\",\"home\"]", "model_attributes_type",
      "Input should be a valid dictionary or object to extract fields from");
  cr_assert(!o->has_work); /* optional null counts as absent */
}

/* ---- arrays ---------------------------------------------------------------
 */

typedef MC_ARRAY_OF(int64_t) int_list;

typedef struct {
  MC_ARRAY_OF(mc_slice) tags;
  MC_ARRAY_OF(int64_t) nums;
  MC_ARRAY_OF(addr) addrs;
  MC_ARRAY_OF(int_list) grid;
  MC_ARRAY_OF(mc_slice) maybe;
  MC_ARRAY_OF(bool) flags;
  MC_ARRAY_OF(double) reals;
  MC_ARRAY_OF(mc_slice) one;
} arrs;

MC_MODEL(arrs,
         MC_ARRAY(arrs, tags, MC_STRING_ITEMS(MC_MAX_LEN(3)), MC_MIN_ITEMS(1),
                  MC_MAX_ITEMS(3)),
         MC_ARRAY(arrs, nums, MC_INT_ITEMS(MC_MIN(0))),
         MC_ARRAY(arrs, addrs, MC_OBJECT_ITEMS(addr)),
         MC_ARRAY(arrs, grid,
                  MC__ITEMS(MC_T_ARRAY, .items = MC_INT_ITEMS(MC_MAX(9)),
                            MC_MAX_ITEMS(2))),
         MC_ARRAY(arrs, maybe, MC_STRING_ITEMS(MC_NULLABLE)),
         MC_ARRAY(arrs, flags, MC_BOOL_ITEMS()),
         MC_ARRAY(arrs, reals, MC_NUMBER_ITEMS(MC_LT(1))),
         MC_ARRAY(arrs, one, MC_STRING_ITEMS(), MC_LEN(1, 1)));

Test(decode_array, happy_path_of_each_item_type) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model,
                        "{\"tags\":[\"a\",\"bc\"],\"nums\":[0,5],\"addrs\":[{"
                        "\"city\":\"X\"},{\"city\":\"Y\",\"zip\":2}],\"grid\":"
                        "[[1,2],[],[9]],\"maybe\":[\"m\"],\"flags\":[true,"
                        "false],\"reals\":[0.5,-1],\"one\":[\"x\"]}",
                        &o),
               0, "%s", t_errors_text());
  cr_assert_eq(o->tags.len, 2);
  cr_assert_str_eq(o->tags.items[1].ptr, "bc");
  cr_assert_eq(o->nums.items[1], 5);
  cr_assert_eq(o->addrs.len, 2);
  cr_assert_str_eq(o->addrs.items[1].city.ptr, "Y");
  cr_assert_eq(o->addrs.items[1].zip, 2);
  cr_assert_eq(o->grid.len, 3);
  cr_assert_eq(o->grid.items[0].len, 2);
  cr_assert_eq(o->grid.items[0].items[1], 2);
  cr_assert_eq(o->grid.items[1].len, 0);
  cr_assert_not_null(o->grid.items[1].items); /* given, though empty */
  cr_assert_eq(o->grid.items[2].items[0], 9);
  cr_assert(o->flags.items[0] && !o->flags.items[1]);
  cr_assert_float_eq(o->reals.items[1], -1.0, 0);
}

Test(decode_array, too_short_and_too_long) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model, "{\"tags\":[]}", &o), MC_EVALIDATION);
  /* too long: one error, the items are not looked at */
  cr_assert_eq(t_decode(&arrs_model, "{\"tags\":[\"a\",\"b\",\"c\",5]}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&arrs_model, "{\"one\":[\"a\",\"b\"]}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&arrs_model, "{\"one\":[]}", &o), MC_EVALIDATION);
  t_expect_errors(4, "[\"body\",\"tags\"]", "too_short",
                  "List should have at least 1 item after validation, not 0",
                  "[\"body\",\"tags\"]", "too_long",
                  "List should have at most 3 items after validation, not 4",
                  "[\"body\",\"one\"]", "too_long",
                  "List should have at most 1 item after validation, not 2",
                  "[\"body\",\"one\"]", "too_short",
                  "List should have at least 1 item after validation, not 0");
}

Test(decode_array, item_errors_carry_the_index) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model,
                        "{\"tags\":[\"a\",\"abcd\",null],\"nums\":[1,-1,2,-3],"
                        "\"flags\":[true,0],\"reals\":[1]}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(
      6, "[\"body\",\"tags\",1]", "string_too_long",
      "String should have at most 3 characters", "[\"body\",\"tags\",2]",
      "string_type", "Input should be a valid string", "[\"body\",\"nums\",1]",
      "greater_than_equal", "Input should be greater than or equal to 0",
      "[\"body\",\"nums\",3]", "greater_than_equal",
      "Input should be greater than or equal to 0", "[\"body\",\"flags\",1]",
      "bool_type", "Input should be a valid boolean", "[\"body\",\"reals\",0]",
      "less_than", "Input should be less than 1");
}

Test(decode_array, not_a_list) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model,
                        "{\"tags\":\"a\",\"nums\":{},\"grid\":[1,[2]]}", &o),
               MC_EVALIDATION);
  t_expect_errors(
      3, "[\"body\",\"tags\"]", "list_type", "Input should be a valid list",
      "[\"body\",\"nums\"]", "list_type", "Input should be a valid list",
      "[\"body\",\"grid\",0]", "list_type", "Input should be a valid list");
}

Test(decode_array, arrays_of_objects) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model,
                        "{\"addrs\":[{\"city\":\"x\"},{},\"s\",{\"city\":\"y\","
                        "\"zip\":-2}]}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(
      3, "[\"body\",\"addrs\",1,\"city\"]", "missing", "Field required",
      "[\"body\",\"addrs\",2]", "model_attributes_type",
      "Input should be a valid dictionary or object to extract fields from",
      "[\"body\",\"addrs\",3,\"zip\"]", "greater_than_equal",
      "Input should be greater than or equal to 0");
}

Test(decode_array, arrays_of_arrays) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model, "{\"grid\":[[1,2],[3,10]]}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&arrs_model, "{\"grid\":[[1],[2,3,4],[\"x\"]]}", &o),
               MC_EVALIDATION);
  t_expect_errors(
      3, "[\"body\",\"grid\",1,1]", "less_than_equal",
      "Input should be less than or equal to 9", "[\"body\",\"grid\",1]",
      "too_long", "List should have at most 2 items after validation, not 3",
      "[\"body\",\"grid\",2,0]", "int_type", "Input should be a valid integer");
}

Test(decode_array, nullable_items_stay_zero) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model, "{\"maybe\":[\"a\",null,\"b\"]}", &o), 0);
  cr_assert_eq(o->maybe.len, 3);
  cr_assert_null(o->maybe.items[1].ptr);
  cr_assert_str_eq(o->maybe.items[2].ptr, "b");
}

Test(decode_array, absent_and_empty_differ) {
  arrs *o = NULL;
  cr_assert_eq(t_decode(&arrs_model, "{\"nums\":[]}", &o), 0);
  cr_assert_not_null(o->nums.items);
  cr_assert_eq(o->nums.len, 0);
  cr_assert_null(o->reals.items);
  cr_assert_eq(o->reals.len, 0);
}

/* ---- null -------------------------------------------------------------- */

typedef struct {
  mc_slice req_null;
  int64_t opt;
  bool has_opt;
  int64_t opt_def;
  mc_slice req;
  MC_ARRAY_OF(int64_t) arr;
  bool has_arr;
  mc_slice opt_null;
} nulls;

MC_MODEL(nulls, MC_STRING(nulls, req_null, MC_REQUIRED, MC_NULLABLE),
         MC_INT(nulls, opt, MC_PRESENT(nulls, has_opt)),
         MC_INT(nulls, opt_def, MC_DEFAULT(7)),
         MC_STRING(nulls, req, MC_REQUIRED),
         MC_ARRAY(nulls, arr, MC_INT_ITEMS(), MC_PRESENT(nulls, has_arr)),
         MC_STRING(nulls, opt_null, MC_NULLABLE, MC_DEFAULT_STR("d")));

Test(decode_null, null_is_absent_for_nullable_and_optional_fields) {
  nulls *o = NULL;
  cr_assert_eq(t_decode(&nulls_model,
                        "{\"req_null\":null,\"opt\":null,\"opt_def\":null,"
                        "\"req\":\"x\",\"arr\":null,\"opt_null\":null}",
                        &o),
               0, "%s", t_errors_text());
  cr_assert_null(o->req_null.ptr);
  cr_assert_eq(o->opt, 0);
  cr_assert(!o->has_opt);
  cr_assert_eq(o->opt_def, 7);
  cr_assert_null(o->arr.items);
  cr_assert(!o->has_arr);
  cr_assert_str_eq(o->opt_null.ptr, "d");
}

Test(decode_null, required_nullable_still_required_required_null_is_type) {
  nulls *o = NULL;
  cr_assert_eq(t_decode(&nulls_model, "{\"req\":null}", &o), MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"req_null\"]", "missing", "Field required",
                  "[\"body\",\"req\"]", "string_type",
                  "Input should be a valid string");
}

Test(decode_null, values_given_set_presence) {
  nulls *o = NULL;
  cr_assert_eq(t_decode(&nulls_model,
                        "{\"req_null\":\"v\",\"opt\":0,\"req\":\"x\",\"arr\":"
                        "[]}",
                        &o),
               0);
  cr_assert_str_eq(o->req_null.ptr, "v");
  cr_assert(o->has_opt);
  cr_assert(o->has_arr);
  cr_assert_eq(o->opt_def, 7);
}

Test(decode_null, presence_false_when_absent) {
  nulls *o = NULL;
  cr_assert_eq(t_decode(&nulls_model, "{\"req_null\":\"v\",\"req\":\"x\"}", &o),
               0);
  cr_assert(!o->has_opt);
  cr_assert(!o->has_arr);
}

/* ---- defaults ------------------------------------------------------------ */

typedef struct {
  mc_slice s;
  int64_t i;
  double n;
  bool b;
  bool t;
  int64_t big;
  int64_t small;
  int64_t none;
} defs;

MC_MODEL(defs, MC_STRING(defs, s, MC_DEFAULT_STR("dflt")),
         MC_INT(defs, i, MC_DEFAULT(-42)), MC_NUMBER(defs, n, MC_DEFAULT(2.5)),
         MC_BOOL(defs, b, MC_DEFAULT(true)), MC_BOOL(defs, t),
         MC_INT(defs, big, MC_DEFAULT(INT64_MAX)),
         MC_INT(defs, small, MC_DEFAULT(INT64_MIN)), MC_INT(defs, none));

Test(decode_default, absent_fields_take_defaults) {
  defs *o = NULL;
  cr_assert_eq(t_decode(&defs_model, "{}", &o), 0);
  cr_assert_str_eq(o->s.ptr, "dflt");
  cr_assert_eq(o->s.len, 4);
  cr_assert_eq(o->i, -42);
  cr_assert_float_eq(o->n, 2.5, 0);
  cr_assert(o->b);
  cr_assert(!o->t);
  cr_assert_eq(o->none, 0);
}

Test(decode_default, int64_limit_defaults_stay_in_range) {
  /* Regression: (int64_t)(double)INT64_MAX is out of range (UB); the
   * default INT64_MAX came back as INT64_MIN on x86. */
  defs *o = NULL;
  cr_assert_eq(t_decode(&defs_model, "{}", &o), 0);
  cr_assert_eq(o->big, INT64_MAX);
  cr_assert_eq(o->small, INT64_MIN);
}

Test(decode_default, given_values_win_null_takes_default) {
  defs *o = NULL;
  cr_assert_eq(t_decode(&defs_model,
                        "{\"s\":\"x\",\"i\":1,\"n\":0,\"b\":false,\"t\":true}",
                        &o),
               0);
  cr_assert_str_eq(o->s.ptr, "x");
  cr_assert_eq(o->i, 1);
  cr_assert_float_eq(o->n, 0.0, 0);
  cr_assert(!o->b);
  cr_assert(o->t);
  cr_assert_eq(t_decode(&defs_model, "{\"s\":null,\"i\":null,\"b\":null}", &o),
               0);
  cr_assert_str_eq(o->s.ptr, "dflt");
  cr_assert_eq(o->i, -42);
  cr_assert(o->b);
}

/* ---- unknown keys ------------------------------------------------------- */

typedef struct {
  int64_t a;
} strict_t;

static const mc_field strict_fields[] = {MC_INT(strict_t, a)};
const mc_model strict_model = {.name = "strict",
                               .size = sizeof(strict_t),
                               .fields = strict_fields,
                               .nfields = 1,
                               .forbid_extra = true};

typedef struct {
  strict_t inner;
  int64_t b;
} lax_t;

MC_MODEL(lax_t, MC_OBJECT(lax_t, inner, strict), MC_INT(lax_t, b));

Test(decode_extra, forbid_extra_names_each_unknown_key) {
  strict_t *o = NULL;
  cr_assert_eq(t_decode(&strict_model, "{\"b\":2,\"a\":1,\"c\\\"d\":3}", &o),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"b\"]", "extra_forbidden",
                  "Extra inputs are not permitted", "[\"body\",\"c\\\"d\"]",
                  "extra_forbidden", "Extra inputs are not permitted");
  cr_assert_eq(o->a, 1);
}

Test(decode_extra, unknown_keys_ignored_by_default) {
  lax_t *o = NULL;
  cr_assert_eq(t_decode(&lax_t_model,
                        "{\"b\":1,\"zzz\":[1,{\"q\":null}],\"inner\":{\"a\":"
                        "2}}",
                        &o),
               0);
  cr_assert_eq(o->b, 1);
  cr_assert_eq(o->inner.a, 2);
}

Test(decode_extra, nested_strict_model) {
  lax_t *o = NULL;
  cr_assert_eq(
      t_decode(&lax_t_model, "{\"x\":1,\"inner\":{\"a\":\"s\",\"z\":1}}", &o),
      MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"inner\",\"a\"]", "int_type",
                  "Input should be a valid integer",
                  "[\"body\",\"inner\",\"z\"]", "extra_forbidden",
                  "Extra inputs are not permitted");
}

/* ---- not JSON, or not an object ---------------------------------------- */

Test(decode_invalid, malformed_json_is_one_json_invalid_error) {
  const char *bad[] = {
      "",
      "{",
      "{\"a\":}",
      "[1,]",
      "{'a':1}",
      "{\"a\":1} x",
      "nul",
      "{\"a\":\"\xff\"}",
      "{\"a\":\"\\u0000\"}",
      "{\"a\":01}",
      "{\"a\":NaN}",
      "{\"a\":1}{}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    t_teardown();
    t_setup();
    void *o = NULL;
    cr_assert_eq(t_decode(&strict_model, bad[i], &o), MC_EPARSE, "%s", bad[i]);
    cr_assert_null(o, "%s", bad[i]);
    t_expect_one("[\"body\"]", "json_invalid", NULL);
    cr_assert(strncmp(t_errs.items[0].msg, "JSON decode error", 17) == 0, "%s",
              t_errs.items[0].msg);
  }
}

Test(decode_invalid, message_gives_the_position) {
  void *o = NULL;
  cr_assert_eq(t_decode(&strict_model, "{\n  \"a\": ]\n}", &o), MC_EPARSE);
  cr_assert(strstr(t_errs.items[0].msg, "line 2") != NULL, "%s",
            t_errs.items[0].msg);
}

Test(decode_invalid, null_slice_is_malformed) {
  void *o = NULL;
  cr_assert_eq(mc_model_decode_json(&strict_model, MC_SLICE_NULL, t_arena,
                                    "body", &o, &t_errs),
               MC_EPARSE);
  t_expect_one("[\"body\"]", "json_invalid", NULL);
}

Test(decode_invalid, text_is_not_assumed_nul_terminated) {
  void *o = NULL;
  cr_assert_eq(t_decode_n(&strict_model, "{\"a\":1}garbage", 7, &o), 0);
  cr_assert_eq(((strict_t *)o)->a, 1);
}

Test(decode_invalid, duplicate_keys_are_refused) {
  void *o = NULL;
  cr_assert_eq(t_decode(&strict_model, "{\"a\":1,\"a\":2}", &o), MC_EPARSE);
  t_expect_one("[\"body\"]", "json_invalid", NULL);
  cr_assert_eq(t_decode(&lax_t_model, "{\"inner\":{\"a\":1,\"a\":1}}", &o),
               MC_EPARSE);
  cr_assert_eq(t_decode(&lax_t_model, "{\"zzz\":{\"q\":1,\"q\":1}}", &o),
               MC_EPARSE);
}

Test(decode_invalid, root_that_is_not_an_object) {
  const char *roots[] = {"[]",   "[{\"a\":1}]", "5",     "\"s\"",
                         "null", "true",        " -1.5 "};
  for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
    t_teardown();
    t_setup();
    void *o = NULL;
    cr_assert_eq(t_decode(&strict_model, roots[i], &o), MC_EVALIDATION, "%s",
                 roots[i]);
    cr_assert_not_null(o);
    t_expect_one(
        "[\"body\"]", "model_attributes_type",
        "Input should be a valid dictionary or object to extract fields from");
  }
}

Test(decode_invalid, out_of_memory) {
  mc_arena *small;
  cr_assert_eq(mc_arena_new(&small, 0, 512), 0);
  mc_model_errors e;
  mc_model_errors_init(&e, small);
  char *json =
      mc_arena_sprintf(t_arena, "{\"nums\":[%s1]}", t_repeat("1,", 1000));
  void *o = NULL;
  cr_assert_eq(mc_model_decode_json(&arrs_model, mc_slice_cstr(json), small,
                                    "body", &o, &e),
               MC_ENOMEM);
  mc_arena_free(small);
}

/* ---- depth ------------------------------------------------------------- */

typedef struct tnode tnode;
struct tnode {
  int64_t v;
  MC_ARRAY_OF(tnode) kids;
};

MC_MODEL_DECLARE(tnode);
MC_MODEL(tnode, MC_INT(tnode, v),
         MC_ARRAY(tnode, kids, MC_OBJECT_ITEMS(tnode)));

/* n nested objects {"v":1,"kids":[{...}]}: 2n-1 containers deep. */
static char *tree(size_t n) {
  mc_buf b;
  mc_buf_init(&b, 0);
  for (size_t i = 1; i < n; i++)
    mc_buf_appendf(&b, "{\"v\":%zu,\"kids\":[", i);
  mc_buf_appendf(&b, "{\"v\":%zu}", n);
  for (size_t i = 1; i < n; i++)
    mc_buf_append_cstr(&b, "]}");
  char *s = mc_arena_strndup(t_arena, b.ptr, b.len);
  mc_buf_free(&b);
  return s;
}

Test(decode_depth, recursive_model_to_the_limit) {
  tnode *o = NULL;
  cr_assert_eq(t_decode(&tnode_model, tree(32), &o), 0); /* 63 deep */
  size_t levels = 1;
  for (tnode *n = o; n->kids.len; n = &n->kids.items[0])
    levels++;
  cr_assert_eq(levels, 32);
}

Test(decode_depth, recursive_model_beyond_the_limit) {
  tnode *o = NULL;
  cr_assert_eq(t_decode(&tnode_model, tree(33), &o), MC_ETOOBIG); /* 65 */
  t_expect_one("[\"body\"]", "json_invalid", NULL);
}

Test(decode_depth, deep_json_in_an_ignored_key) {
  void *o = NULL;
  char *ok = mc_arena_sprintf(t_arena, "{\"x\":%s%s}", t_repeat("[", 63),
                              t_repeat("]", 63));
  cr_assert_eq(t_decode(&strict_model, ok, &o), MC_EVALIDATION); /* extra */
  char *deep = mc_arena_sprintf(t_arena, "{\"x\":%s%s}", t_repeat("[", 64),
                                t_repeat("]", 64));
  cr_assert_eq(t_decode(&lax_t_model, deep, &o), MC_ETOOBIG);
}

Test(decode_depth, very_deep_json_refused_without_recursing) {
  /* jansson recurses per level; a fiber's stack is small. */
  void *o = NULL;
  size_t n = 200000;
  char *deep =
      mc_arena_sprintf(t_arena, "%s%s", t_repeat("[", n), t_repeat("]", n));
  cr_assert_eq(t_decode(&lax_t_model, deep, &o), MC_ETOOBIG);
  char *unclosed = t_repeat("{\"a\":", n);
  cr_assert_eq(t_decode(&lax_t_model, unclosed, &o), MC_ETOOBIG);
}

Test(decode_depth, brackets_inside_strings_do_not_count) {
  void *o = NULL;
  char *s = mc_arena_sprintf(t_arena, "{\"b\":1,\"x\":\"%s\\\"%s\"}",
                             t_repeat("[", 100), t_repeat("{", 100));
  cr_assert_eq(t_decode(&lax_t_model, s, &o), 0, "%s", t_errors_text());
}
