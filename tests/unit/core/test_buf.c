#include <criterion/criterion.h>
#include <string.h>

#include "microc/core.h"

Test(buf, append_grows_and_terminates) {
  mc_buf b;
  mc_buf_init(&b, 0);
  for (int i = 0; i < 1000; i++)
    cr_assert_eq(mc_buf_append(&b, "ab", 2), 0);
  cr_assert_eq(b.len, 2000);
  cr_assert_eq(b.ptr[b.len], '\0');
  mc_buf_free(&b);
}

Test(buf, limit_refuses_and_keeps_content) {
  mc_buf b;
  mc_buf_init(&b, 8);
  cr_assert_eq(mc_buf_append_cstr(&b, "12345"), 0);
  cr_assert_eq(mc_buf_append_cstr(&b, "6789"), MC_ETOOBIG);
  cr_assert_eq(b.len, 5);
  cr_assert_str_eq(b.ptr, "12345");
  cr_assert_eq(mc_buf_append_cstr(&b, "678"), 0);
  cr_assert_eq(b.len, 8);
  mc_buf_free(&b);
}

Test(buf, appendf_long_output) {
  mc_buf b;
  mc_buf_init(&b, 0);
  char big[1000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = 0;
  cr_assert_eq(mc_buf_appendf(&b, "<%s>%d", big, 42), 0);
  cr_assert_eq(b.len, 999 + 4);
  cr_assert_eq(strcmp(b.ptr + b.len - 3, ">42"), 0);
  mc_buf_free(&b);
}

Test(buf, consume_moves_rest) {
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_cstr(&b, "hello world");
  mc_buf_consume(&b, 6);
  cr_assert_str_eq(b.ptr, "world");
  mc_buf_consume(&b, 100);
  cr_assert_eq(b.len, 0);
  mc_buf_free(&b);
}

Test(buf, json_string_escapes) {
  mc_buf b;
  mc_buf_init(&b, 0);
  const char in[] = "a\"b\\c\n\x01\xff\xc3\xa9";
  cr_assert_eq(mc_buf_append_json_str(&b, in, sizeof in - 1), 0);
  cr_assert_str_eq(b.ptr, "\"a\\\"b\\\\c\\n\\u0001\xEF\xBF\xBD\xc3\xa9\"");
  mc_buf_free(&b);
}

Test(buf, json_string_respects_limit) {
  mc_buf b;
  mc_buf_init(&b, 4);
  cr_assert_eq(mc_buf_append_json_str(&b, "abcdef", 6), MC_ETOOBIG);
  cr_assert_eq(b.len, 0);
  mc_buf_free(&b);
}

Test(slice, to_i64_edges) {
  int64_t v;
  cr_assert_eq(mc_slice_to_i64(MC_LIT("9223372036854775807"), &v), 0);
  cr_assert_eq(v, INT64_MAX);
  cr_assert_eq(mc_slice_to_i64(MC_LIT("-9223372036854775808"), &v), 0);
  cr_assert_eq(v, INT64_MIN);
  cr_assert_eq(mc_slice_to_i64(MC_LIT("9223372036854775808"), &v), MC_ETOOBIG);
  cr_assert_eq(mc_slice_to_i64(MC_LIT(""), &v), MC_EPARSE);
  cr_assert_eq(mc_slice_to_i64(MC_LIT("-"), &v), MC_EPARSE);
  cr_assert_eq(mc_slice_to_i64(MC_LIT("12a"), &v), MC_EPARSE);
}

Test(slice, nocase) {
  cr_assert(
      mc_slice_eq_nocase(MC_LIT("Content-Length"), MC_LIT("content-length")));
  cr_assert_not(mc_slice_eq_nocase(MC_LIT("a"), MC_LIT("ab")));
}

Test(error, names_and_messages_from_one_table) {
  cr_assert_str_eq(mc_err_name(MC_ENOMEM), "MC_ENOMEM");
  cr_assert_str_eq(mc_strerror(MC_ETIMEDOUT), "timed out");
  cr_assert_str_eq(mc_err_name(12345), "MC_UNKNOWN");
}
