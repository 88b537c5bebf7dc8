/* JSON decoding of scalar fields: strings, integers, numbers, booleans,
 * each constraint and each pydantic-style error. */
#include <float.h>
#include <math.h>

#include "model_test.h"

TestSuite(decode_string, .init = t_setup, .fini = t_teardown);
TestSuite(decode_int, .init = t_setup, .fini = t_teardown);
TestSuite(decode_number, .init = t_setup, .fini = t_teardown);
TestSuite(decode_bool, .init = t_setup, .fini = t_teardown);
TestSuite(decode_every, .init = t_setup, .fini = t_teardown);

/* ---- the example of the header: every violation is reported ------------ */

typedef struct {
  mc_slice message;
  int64_t count;
  MC_ARRAY_OF(mc_slice) tags;
} echo_in;

MC_MODEL(echo_in, MC_STRING(echo_in, message, MC_REQUIRED, MC_LEN(1, 256)),
         MC_INT(echo_in, count, MC_REQUIRED, MC_MIN(1), MC_MAX(100)),
         MC_ARRAY(echo_in, tags, MC_STRING_ITEMS(), MC_MAX_ITEMS(10)));

Test(decode_every, echo_two_violations_both_reported) {
  echo_in *o = NULL;
  cr_assert_eq(t_decode(&echo_in_model, "{\"message\":\"\",\"count\":0}", &o),
               MC_EVALIDATION);
  cr_assert_not_null(o);
  t_expect_errors(2, "[\"body\",\"message\"]", "string_too_short",
                  "String should have at least 1 character",
                  "[\"body\",\"count\"]", "greater_than_equal",
                  "Input should be greater than or equal to 1");
}

Test(decode_every, echo_valid) {
  echo_in *o = NULL;
  cr_assert_eq(t_decode(&echo_in_model,
                        "{\"message\":\"hi\",\"count\":100,"
                        "\"tags\":[\"a\",\"b\"]}",
                        &o),
               0);
  t_expect_none();
  cr_assert_str_eq(o->message.ptr, "hi");
  cr_assert_eq(o->message.len, 2);
  cr_assert_eq(o->count, 100);
  cr_assert_eq(o->tags.len, 2);
  cr_assert_str_eq(o->tags.items[1].ptr, "b");
}

Test(decode_every, echo_empty_object_reports_each_missing_field) {
  echo_in *o = NULL;
  cr_assert_eq(t_decode(&echo_in_model, "{}", &o), MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"message\"]", "missing", "Field required",
                  "[\"body\",\"count\"]", "missing", "Field required");
  cr_assert_null(o->tags.items);
}

Test(decode_every, echo_violations_in_three_fields) {
  echo_in *o = NULL;
  const char *json = "{\"message\":5,\"count\":101,\"tags\":[\"a\",1,\"c\","
                     "null]}";
  cr_assert_eq(t_decode(&echo_in_model, json, &o), MC_EVALIDATION);
  t_expect_errors(
      4, "[\"body\",\"message\"]", "string_type",
      "Input should be a valid string", "[\"body\",\"count\"]",
      "less_than_equal", "Input should be less than or equal to 100",
      "[\"body\",\"tags\",1]", "string_type", "Input should be a valid string",
      "[\"body\",\"tags\",3]", "string_type", "Input should be a valid string");
}

Test(decode_every, errors_are_appended_to_an_existing_list) {
  cr_assert_eq(mc_model_errors_add(&t_errs, "[\"path\",\"id\"]",
                                   "Field "
                                   "required",
                                   "missing"),
               0);
  echo_in *o = NULL;
  cr_assert_eq(t_decode(&echo_in_model, "{\"message\":\"x\",\"count\":0}", &o),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"path\",\"id\"]", "missing", "Field required",
                  "[\"body\",\"count\"]", "greater_than_equal", NULL);
}

Test(decode_every, earlier_errors_do_not_make_a_valid_body_fail) {
  mc_model_errors_add(&t_errs, "[\"query\",\"q\"]", "Field required",
                      "missing");
  echo_in *o = NULL;
  cr_assert_eq(t_decode(&echo_in_model, "{\"message\":\"x\",\"count\":1}", &o),
               0);
  cr_assert_eq(t_errs.len, 1);
}

Test(decode_every, no_where_means_locs_start_at_the_field) {
  echo_in *o = NULL;
  const char *json = "{\"message\":\"x\",\"tags\":[1]}";
  cr_assert_eq(mc_model_decode_json(&echo_in_model, mc_slice_cstr(json),
                                    t_arena, NULL, (void **)&o, &t_errs),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"count\"]", "missing", "Field required", "[\"tags\",0]",
                  "string_type", NULL);
}

Test(decode_every, where_names_the_first_loc_element) {
  echo_in *o = NULL;
  const char *json = "{\"message\":\"x\"}";
  cr_assert_eq(mc_model_decode_json(&echo_in_model, mc_slice_cstr(json),
                                    t_arena, "payload", (void **)&o, &t_errs),
               MC_EVALIDATION);
  t_expect_one("[\"payload\",\"count\"]", "missing", "Field required");
}

/* ---- strings ------------------------------------------------------------ */

typedef struct {
  mc_slice s;
  mc_slice code;
  mc_slice color;
  mc_slice opt;
  mc_slice one;
  mc_slice pick;
  mc_slice only;
  mc_slice digits;
} strs;

MC_MODEL(strs, MC_STRING(strs, s, MC_LEN(2, 4)),
         MC_STRING(strs, code, MC_PATTERN("^[A-Z]{3}-\\d+$")),
         MC_STRING(strs, color, MC_ENUM("red", "green", "blue")),
         MC_STRING(strs, opt), MC_STRING(strs, one, MC_LEN(1, 1)),
         MC_STRING(strs, pick, MC_ENUM("a", "b")),
         MC_STRING(strs, only, MC_ENUM("only")),
         MC_STRING(strs, digits, MC_MIN_LEN(3), MC_PATTERN("^[0-9]+$")));

Test(decode_string, happy_path_copies_into_the_arena) {
  strs *o = NULL;
  const char *json =
      "{\"s\":\"abc\",\"code\":\"ABC-12\",\"color\":\"green\",\"opt\":\"\"}";
  cr_assert_eq(t_decode(&strs_model, json, &o), 0);
  t_expect_none();
  cr_assert_eq(o->s.len, 3);
  cr_assert_str_eq(o->s.ptr, "abc"); /* NUL-terminated */
  cr_assert(o->s.ptr < json || o->s.ptr > json + strlen(json));
  cr_assert_str_eq(o->code.ptr, "ABC-12");
  cr_assert_str_eq(o->color.ptr, "green");
  cr_assert_not_null(o->opt.ptr); /* given, though empty */
  cr_assert_eq(o->opt.len, 0);
  cr_assert_null(o->one.ptr); /* absent */
  cr_assert_eq(o->one.len, 0);
}

Test(decode_string, escapes_are_decoded) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model,
                        "{\"opt\":\"a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\"}",
                        &o),
               0);
  cr_assert_eq(o->opt.len, 1 + 1 + 1 + 1 + 1 + 1 + 2 + 4);
  cr_assert_eq(memcmp(o->opt.ptr, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80", 13), 0);
}

Test(decode_string, length_counts_code_points_not_bytes) {
  strs *o = NULL;
  /* é is two bytes, 😀 four: still one character each */
  cr_assert_eq(t_decode(&strs_model, "{\"s\":\"\xc3\xa9\xc3\xa9\"}", &o), 0);
  cr_assert_eq(t_decode(&strs_model,
                        "{\"s\":\"\xf0\x9f\x98\x80\xf0\x9f\x98\x80\xf0\x9f\x98"
                        "\x80\xf0\x9f\x98\x80\"}",
                        &o),
               0);
  cr_assert_eq(t_decode(&strs_model, "{\"one\":\"\xf0\x9f\x98\x80\"}", &o), 0);
  t_expect_none();
}

Test(decode_string, too_short) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"s\":\"\xc3\xa9\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"s\"]", "string_too_short",
               "String should have at least 2 characters");
  cr_assert_str_eq(o->s.ptr, "\xc3\xa9"); /* the partly filled struct */
}

Test(decode_string, too_long) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"s\":\"\xc3\xa9\xc3\xa9xyz\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"s\"]", "string_too_long",
               "String should have at most 4 characters");
}

Test(decode_string, singular_character_in_messages) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"one\":\"\"}", &o), MC_EVALIDATION);
  t_expect_one("[\"body\",\"one\"]", "string_too_short",
               "String should have at least 1 character");
  t_teardown();
  t_setup();
  cr_assert_eq(t_decode(&strs_model, "{\"one\":\"ab\"}", &o), MC_EVALIDATION);
  t_expect_one("[\"body\",\"one\"]", "string_too_long",
               "String should have at most 1 character");
}

Test(decode_string, pattern_mismatch_quotes_the_declared_pattern) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"code\":\"abc-12\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"code\"]", "string_pattern_mismatch",
               "String should match pattern '^[A-Z]{3}-\\d+$'");
}

Test(decode_string, pattern_is_anchored_only_where_it_says) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"code\":\"ABC-12x\"}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&strs_model, "{\"code\":\"xABC-12\"}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_errs.len, 2);
}

Test(decode_string, one_error_per_value_as_pydantic) {
  /* pydantic stops at the first failed constraint of a value: length,
   * then pattern. */
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model, "{\"digits\":\"ab\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"digits\"]", "string_too_short",
               "String should have at least 3 characters");
  t_teardown();
  t_setup();
  cr_assert_eq(t_decode(&strs_model, "{\"digits\":\"abc\"}", &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"digits\"]", "string_pattern_mismatch",
               "String should match pattern '^[0-9]+$'");
}

Test(decode_string, enum_lists_values_with_or) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model,
                        "{\"color\":\"purple\",\"pick\":\"c\",\"only\":\"x\"}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(3, "[\"body\",\"color\"]", "enum",
                  "Input should be 'red', 'green' or 'blue'",
                  "[\"body\",\"pick\"]", "enum", "Input should be 'a' or 'b'",
                  "[\"body\",\"only\"]", "enum", "Input should be 'only'");
}

Test(decode_string, enum_matches_whole_values_case_sensitively) {
  strs *o = NULL;
  const char *bad[] = {"Red", "re", "redd", "", " red"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char json[64];
    snprintf(json, sizeof json, "{\"color\":\"%s\"}", bad[i]);
    cr_assert_eq(t_decode(&strs_model, json, &o), MC_EVALIDATION, "%s", bad[i]);
  }
  cr_assert_eq(t_errs.len, 5);
  cr_assert_eq(t_decode(&strs_model, "{\"color\":\"blue\"}", &o), 0);
}

Test(decode_string, wrong_json_types) {
  strs *o = NULL;
  cr_assert_eq(t_decode(&strs_model,
                        "{\"s\":12,\"code\":true,\"color\":[],\"opt\":{},"
                        "\"one\":1.5}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(
      5, "[\"body\",\"s\"]", "string_type", "Input should be a valid string",
      "[\"body\",\"code\"]", "string_type", "Input should be a valid string",
      "[\"body\",\"color\"]", "string_type", "Input should be a valid string",
      "[\"body\",\"opt\"]", "string_type", "Input should be a valid string",
      "[\"body\",\"one\"]", "string_type", "Input should be a valid string");
}

Test(decode_string, long_enum_list_message_is_bounded) {
  static const char *const many[] = {
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
      "ccccccccccccccccccccccccccccccccccccccccccccccccc",
      "ddddddddddddddddddddddddddddddddddddddddddddddddd",
      "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
      "fffffffffffffffffffffffffffffffffffffffffffffffff",
      "ggggggggggggggggggggggggggggggggggggggggggggggggg",
      "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh",
      "iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii",
      "jjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjjj",
      NULL};
  typedef struct {
    mc_slice v;
  } big_enum;
  static const mc_field fields[] = {
      {.name = "v", .type = MC_T_STRING, .enum_values = many}};
  static const mc_model m = {.name = "big_enum",
                             .size = sizeof(big_enum),
                             .fields = fields,
                             .nfields = 1};
  big_enum *o = NULL;
  cr_assert_eq(t_decode(&m, "{\"v\":\"zzz\"}", &o), MC_EVALIDATION);
  cr_assert_eq(t_errs.len, 1);
  cr_assert_str_eq(t_errs.items[0].type, "enum");
  cr_assert(strncmp(t_errs.items[0].msg, "Input should be 'aaa", 20) == 0);
  cr_assert(strlen(t_errs.items[0].msg) < 512);
}

/* ---- integers ------------------------------------------------------------ */

typedef struct {
  int64_t a;
  int64_t b;
  int64_t c;
  int64_t neg;
} ints;

MC_MODEL(ints, MC_INT(ints, a, MC_MIN(1), MC_MAX(100)),
         MC_INT(ints, b, MC_GT(0), MC_LT(10)), MC_INT(ints, c),
         MC_INT(ints, neg, MC_MIN(-5), MC_LT(-1)));

Test(decode_int, inclusive_bounds_accepted) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"a\":1,\"b\":1,\"neg\":-5}", &o), 0);
  cr_assert_eq(o->a, 1);
  cr_assert_eq(o->neg, -5);
  cr_assert_eq(t_decode(&ints_model, "{\"a\":100,\"b\":9,\"neg\":-2}", &o), 0);
  cr_assert_eq(o->a, 100);
  cr_assert_eq(o->b, 9);
  t_expect_none();
}

Test(decode_int, minimum_and_maximum) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"a\":0}", &o), MC_EVALIDATION);
  cr_assert_eq(t_decode(&ints_model, "{\"a\":101}", &o), MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"a\"]", "greater_than_equal",
                  "Input should be greater than or equal to 1",
                  "[\"body\",\"a\"]", "less_than_equal",
                  "Input should be less than or equal to 100");
}

Test(decode_int, exclusive_bounds) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"b\":0}", &o), MC_EVALIDATION);
  cr_assert_eq(t_decode(&ints_model, "{\"b\":10}", &o), MC_EVALIDATION);
  cr_assert_eq(t_decode(&ints_model, "{\"neg\":-1}", &o), MC_EVALIDATION);
  cr_assert_eq(t_decode(&ints_model, "{\"neg\":-6}", &o), MC_EVALIDATION);
  t_expect_errors(
      4, "[\"body\",\"b\"]", "greater_than", "Input should be greater than 0",
      "[\"body\",\"b\"]", "less_than", "Input should be less than 10",
      "[\"body\",\"neg\"]", "less_than", "Input should be less than -1",
      "[\"body\",\"neg\"]", "greater_than_equal",
      "Input should be greater than or equal to -5");
}

Test(decode_int, wrong_json_types) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model,
                        "{\"a\":\"12\",\"b\":true,\"c\":[1],\"neg\":{}}", &o),
               MC_EVALIDATION);
  t_expect_errors(
      4, "[\"body\",\"a\"]", "int_type", "Input should be a valid integer",
      "[\"body\",\"b\"]", "int_type", "Input should be a valid integer",
      "[\"body\",\"c\"]", "int_type", "Input should be a valid integer",
      "[\"body\",\"neg\"]", "int_type", "Input should be a valid integer");
}

Test(decode_int, fraction_refused_whole_float_accepted) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"c\":1.5}", &o), MC_EVALIDATION);
  t_expect_one(
      "[\"body\",\"c\"]", "int_from_float",
      "Input should be a valid integer, got a number with a fractional part");
  cr_assert_eq(t_decode(&ints_model, "{\"c\":3.0,\"a\":1e2}", &o), 0);
  cr_assert_eq(o->c, 3);
  cr_assert_eq(o->a, 100);
  cr_assert_eq(t_decode(&ints_model, "{\"c\":-0.0}", &o), 0);
  cr_assert_eq(o->c, 0);
}

Test(decode_int, int64_extremes_exact) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"c\":9223372036854775807}", &o), 0);
  cr_assert_eq(o->c, INT64_MAX);
  cr_assert_eq(t_decode(&ints_model, "{\"c\":-9223372036854775808}", &o), 0);
  cr_assert_eq(o->c, INT64_MIN);
  cr_assert_eq(t_decode(&ints_model, "{\"c\":9007199254740993}", &o), 0);
  cr_assert_eq(o->c, 9007199254740993LL); /* not rounded through a double */
}

Test(decode_int, beyond_64_bits_is_a_validation_error_not_a_parse_error) {
  const char *big[] = {
      "9223372036854775808",
      "-9223372036854775809",
      "100000000000000000000000000000",
      "-100000000000000000000000000000",
  };
  for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
    t_teardown();
    t_setup();
    char json[128];
    snprintf(json, sizeof json, "{\"c\":%s}", big[i]);
    ints *o = NULL;
    cr_assert_eq(t_decode(&ints_model, json, &o), MC_EVALIDATION, "%s", big[i]);
    t_expect_one("[\"body\",\"c\"]", "int_parsing_size",
                 "Input should be an integer that fits in 64 bits");
  }
}

Test(decode_int, integer_beyond_double_range_is_a_validation_error) {
  char *json = mc_arena_sprintf(t_arena, "{\"c\":-1%s}", t_repeat("0", 400));
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, json, &o), MC_EVALIDATION);
  t_expect_one("[\"body\",\"c\"]", "int_parsing_size", NULL);
}

Test(decode_int, huge_integer_elsewhere_does_not_round_other_integers) {
  /* Regression: a 64-bit overflow anywhere made the decoder re-read every
   * integer as a double, rounding exact values and refusing INT64_MAX. */
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model,
                        "{\"c\":9007199254740993,\"junk\":"
                        "123456789012345678901234567890}",
                        &o),
               0);
  t_expect_none();
  cr_assert_eq(o->c, 9007199254740993LL);
  cr_assert_eq(t_decode(&ints_model,
                        "{\"c\":9223372036854775807,\"junk\":[1,"
                        "99999999999999999999]}",
                        &o),
               0);
  t_expect_none();
  cr_assert_eq(o->c, INT64_MAX);
}

Test(decode_int, huge_integer_in_an_array_item) {
  typedef struct {
    MC_ARRAY_OF(int64_t) v;
  } il;
  const mc_field f[] = {
      {.name = "v", .type = MC_T_ARRAY, .items = MC_INT_ITEMS(MC_MIN(0))}};
  const mc_model m = {
      .name = "il", .size = sizeof(il), .fields = f, .nfields = 1};
  il *o = NULL;
  cr_assert_eq(t_decode(&m, "{\"v\":[1,-99999999999999999999,-1,2]}", &o),
               MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"v\",1]", "int_parsing_size", NULL,
                  "[\"body\",\"v\",2]", "greater_than_equal", NULL);
  cr_assert_eq(o->v.items[3], 2);
}

Test(decode_int, huge_integer_and_a_syntax_error_is_a_parse_error) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"c\":99999999999999999999,}", &o),
               MC_EPARSE);
  t_expect_one("[\"body\"]", "json_invalid", NULL);
}

Test(decode_int, huge_numbers_inside_strings_are_left_alone) {
  typedef struct {
    mc_slice s;
    int64_t c;
  } si;
  static const mc_field f[] = {
      {.name = "s", .type = MC_T_STRING, .offset = offsetof(si, s)},
      {.name = "c", .type = MC_T_INT, .offset = offsetof(si, c)}};
  static const mc_model m = {
      .name = "si", .size = sizeof(si), .fields = f, .nfields = 2};
  si *o = NULL;
  cr_assert_eq(t_decode(&m,
                        "{\"s\":\"\\\"99999999999999999999\",\"c\":"
                        "99999999999999999999}",
                        &o),
               MC_EVALIDATION);
  t_expect_one("[\"body\",\"c\"]", "int_parsing_size", NULL);
  cr_assert_str_eq(o->s.ptr, "\"99999999999999999999");
}

Test(decode_int, float_out_of_int64_range) {
  ints *o = NULL;
  cr_assert_eq(t_decode(&ints_model, "{\"c\":1e19}", &o), MC_EVALIDATION);
  cr_assert_eq(t_decode(&ints_model, "{\"c\":-1e300}", &o), MC_EVALIDATION);
  t_expect_errors(2, "[\"body\",\"c\"]", "int_parsing_size", NULL,
                  "[\"body\",\"c\"]", "int_parsing_size", NULL);
}

typedef struct {
  int64_t full;
  int64_t gt_min;
  int64_t lt_max;
  int64_t min_max;
  int64_t max_2p53;
  int64_t min_neg_2p53;
} lims;

MC_MODEL(lims, MC_INT(lims, full, MC_MIN(INT64_MIN), MC_MAX(INT64_MAX)),
         MC_INT(lims, gt_min, MC_GT(INT64_MIN)),
         MC_INT(lims, lt_max, MC_LT(INT64_MAX)),
         MC_INT(lims, min_max, MC_MIN(INT64_MAX)),
         MC_INT(lims, max_2p53, MC_MAX(9007199254740992)),
         MC_INT(lims, min_neg_2p53, MC_MIN(-9007199254740992)));

Test(decode_int, bounds_at_int64_limits_accept_the_limits) {
  lims *o = NULL;
  cr_assert_eq(t_decode(&lims_model,
                        "{\"full\":9223372036854775807,\"gt_min\":"
                        "-9223372036854775807,\"lt_max\":9223372036854775806,"
                        "\"min_max\":9223372036854775807,\"max_2p53\":"
                        "9007199254740992,\"min_neg_2p53\":-9007199254740992}",
                        &o),
               0, "%s", t_errors_text());
  cr_assert_eq(o->min_max, INT64_MAX);
  cr_assert_eq(t_decode(&lims_model, "{\"full\":-9223372036854775808}", &o), 0);
  cr_assert_eq(o->full, INT64_MIN);
}

Test(decode_int, bounds_at_int64_limits_refuse_beyond) {
  lims *o = NULL;
  cr_assert_eq(t_decode(&lims_model,
                        "{\"gt_min\":-9223372036854775808,\"lt_max\":"
                        "9223372036854775807,\"min_max\":9223372036854775806,"
                        "\"max_2p53\":9007199254740993,\"min_neg_2p53\":"
                        "-9007199254740993}",
                        &o),
               MC_EVALIDATION);
  t_expect_errors(
      5, "[\"body\",\"gt_min\"]", "greater_than",
      "Input should be greater than -9223372036854775808",
      "[\"body\",\"lt_max\"]", "less_than",
      "Input should be less than 9223372036854775807", "[\"body\",\"min_max\"]",
      "greater_than_equal",
      "Input should be greater than or equal to 9223372036854775807",
      "[\"body\",\"max_2p53\"]", "less_than_equal",
      "Input should be less than or equal to 9007199254740992",
      "[\"body\",\"min_neg_2p53\"]", "greater_than_equal",
      "Input should be greater than or equal to -9007199254740992");
}

/* ---- numbers ------------------------------------------------------------ */

typedef struct {
  double x;
  double y;
  double z;
} nums;

MC_MODEL(nums, MC_NUMBER(nums, x, MC_GT(0.5), MC_LT(1e6)),
         MC_NUMBER(nums, y, MC_MIN(-1.25), MC_MAX(1234567.5)),
         MC_NUMBER(nums, z, MC_REQUIRED));

Test(decode_number, accepts_reals_and_integers) {
  nums *o = NULL;
  cr_assert_eq(t_decode(&nums_model, "{\"x\":0.75,\"y\":-1.25,\"z\":2}", &o),
               0);
  cr_assert_float_eq(o->x, 0.75, 0);
  cr_assert_float_eq(o->y, -1.25, 0);
  cr_assert_float_eq(o->z, 2.0, 0);
  cr_assert_eq(t_decode(&nums_model,
                        "{\"z\":1e308,\"y\":1234567.5,\"x\":999999.99}", &o),
               0);
  cr_assert_float_eq(o->z, 1e308, 0);
  cr_assert_eq(t_decode(&nums_model, "{\"z\":-2.2250738585072014e-308}", &o),
               0);
  cr_assert_float_eq(o->z, -DBL_MIN, 0);
}

Test(decode_number, bounds_messages_print_the_limit_exactly) {
  nums *o = NULL;
  cr_assert_eq(t_decode(&nums_model, "{\"x\":0.5,\"y\":1234567.6,\"z\":0}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&nums_model, "{\"x\":1e6,\"y\":-1.26,\"z\":0}", &o),
               MC_EVALIDATION);
  t_expect_errors(
      4, "[\"body\",\"x\"]", "greater_than", "Input should be greater than 0.5",
      "[\"body\",\"y\"]", "less_than_equal",
      "Input should be less than or equal to 1234567.5", "[\"body\",\"x\"]",
      "less_than", "Input should be less than 1000000", "[\"body\",\"y\"]",
      "greater_than_equal", "Input should be greater than or equal to -1.25");
}

Test(decode_number, wrong_json_types) {
  nums *o = NULL;
  cr_assert_eq(
      t_decode(&nums_model, "{\"x\":\"1.5\",\"y\":true,\"z\":null}", &o),
      MC_EVALIDATION);
  t_expect_errors(
      3, "[\"body\",\"x\"]", "float_type", "Input should be a valid number",
      "[\"body\",\"y\"]", "float_type", "Input should be a valid number",
      "[\"body\",\"z\"]", "float_type", "Input should be a valid number");
}

Test(decode_number, huge_integer_reads_as_nearest_double) {
  nums *o = NULL;
  cr_assert_eq(t_decode(&nums_model, "{\"z\":100000000000000000000}", &o), 0);
  cr_assert_float_eq(o->z, 1e20, 0);
}

Test(decode_number, huge_negative_integer_stays_below_int64) {
  nums *o = NULL;
  cr_assert_eq(t_decode(&nums_model, "{\"z\":-9223372036854775809}", &o), 0);
  cr_assert_lt(o->z, -0x1p63);
  cr_assert_gt(o->z, -0x1p63 - 4096);
}

Test(decode_number, real_overflow_is_not_json_we_read) {
  nums *o = NULL;
  cr_assert_eq(t_decode(&nums_model, "{\"z\":1e400}", &o), MC_EPARSE);
  t_expect_one("[\"body\"]", "json_invalid", NULL);
}

/* ---- booleans ------------------------------------------------------------ */

typedef struct {
  bool b;
  bool r;
} bools;

MC_MODEL(bools, MC_BOOL(bools, b), MC_BOOL(bools, r, MC_REQUIRED));

Test(decode_bool, true_and_false) {
  bools *o = NULL;
  cr_assert_eq(t_decode(&bools_model, "{\"b\":true,\"r\":false}", &o), 0);
  cr_assert(o->b);
  cr_assert(!o->r);
}

Test(decode_bool, only_json_booleans) {
  bools *o = NULL;
  cr_assert_eq(t_decode(&bools_model, "{\"b\":1,\"r\":\"true\"}", &o),
               MC_EVALIDATION);
  cr_assert_eq(t_decode(&bools_model, "{\"r\":null}", &o), MC_EVALIDATION);
  t_expect_errors(
      3, "[\"body\",\"b\"]", "bool_type", "Input should be a valid boolean",
      "[\"body\",\"r\"]", "bool_type", "Input should be a valid boolean",
      "[\"body\",\"r\"]", "bool_type", "Input should be a valid boolean");
}
