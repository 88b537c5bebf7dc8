/* gRPC header values: grpc-message percent-coding, grpc-status,
 * grpc-timeout; status names; Consul check targets. */
#include <criterion/criterion.h>
#include <string.h>

#include "grpc/framing.h"
#include "microc/grpc.h"

static const char *decode(const char *in, size_t cap) {
  static char out[256];
  memset(out, 0x55, sizeof out);
  size_t n = mc__grpc_message_decode(mc_slice_cstr(in), out, cap);
  cr_assert_eq(strlen(out), n);
  cr_assert_lt(n, cap);
  return out;
}

Test(grpc_message, plain_text_passes) {
  cr_assert_str_eq(decode("service unknown", 64), "service unknown");
  cr_assert_str_eq(decode("", 64), "");
}

Test(grpc_message, escapes_are_decoded) {
  cr_assert_str_eq(decode("100%25 sure%3A%20yes", 64), "100% sure: yes");
  cr_assert_str_eq(decode("%c3%a9t%C3%A9", 64), "\xc3\xa9t\xc3\xa9");
  cr_assert_str_eq(decode("line%0Aline", 64), "line\nline");
}

Test(grpc_message, broken_escapes_are_kept_as_sent) {
  cr_assert_str_eq(decode("50%", 64), "50%");
  cr_assert_str_eq(decode("%4", 64), "%4");
  cr_assert_str_eq(decode("%zz%4g%", 64), "%zz%4g%");
  cr_assert_str_eq(decode("%%41", 64), "%A");
}

Test(grpc_message, truncation_keeps_whole_utf8) {
  /* "é" is 2 bytes, "€" 3: never cut inside one. */
  cr_assert_str_eq(decode("ab%C3%A9", 4), "ab");
  cr_assert_str_eq(decode("ab%C3%A9", 5), "ab\xc3\xa9");
  cr_assert_str_eq(decode("a\xe2\x82\xac", 3), "a");
  cr_assert_str_eq(decode("a\xe2\x82\xac", 4), "a");
  cr_assert_str_eq(decode("a\xe2\x82\xac", 5), "a\xe2\x82\xac");
  cr_assert_str_eq(decode("abcdef", 4), "abc");
  cr_assert_str_eq(decode("abc", 1), "");
}

Test(grpc_message, cap_zero_writes_nothing) {
  char c = 'z';
  cr_assert_eq(mc__grpc_message_decode(MC_LIT("abc"), &c, 0), 0);
  cr_assert_eq(c, 'z');
}

Test(grpc_message, text_copy_does_not_decode) {
  char out[16];
  cr_assert_eq(mc__grpc_text_copy(MC_LIT("100%25"), out, sizeof out), 6);
  cr_assert_str_eq(out, "100%25");
}

Test(grpc_message, encode_then_decode_gives_every_byte_back) {
  char all[256];
  for (int i = 0; i < 256; i++)
    all[i] = (char)i;
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc__grpc_message_encode(&b, (mc_slice){all, 256}), 0);
  for (size_t i = 0; i < b.len; i++)
    cr_assert(b.ptr[i] >= 0x20 && b.ptr[i] <= 0x7e, "byte %zu", i);
  char out[300];
  /* The NUL comes back too, so compare by length. */
  cr_assert_eq(mc__grpc_message_decode(mc_buf_slice(&b), out, sizeof out), 256);
  cr_assert(memcmp(out, all, 256) == 0);
  mc_buf_reset(&b);
  cr_assert_eq(mc__grpc_message_encode(&b, MC_LIT("ok 100%")), 0);
  cr_assert_str_eq(b.ptr, "ok 100%25");
  mc_buf_free(&b);
}

Test(grpc_status, parse) {
  int v = -5;
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("0"), &v), 0);
  cr_assert_eq(v, 0);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("12"), &v), 0);
  cr_assert_eq(v, 12);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("2147483647"), &v), 0);
  cr_assert_eq(v, 2147483647);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("2147483648"), &v), MC_EPARSE);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("99999999999"), &v), MC_EPARSE);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT(""), &v), MC_EPARSE);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("-1"), &v), MC_EPARSE);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT(" 1"), &v), MC_EPARSE);
  cr_assert_eq(mc__grpc_status_parse(MC_LIT("1a"), &v), MC_EPARSE);
}

static const char *timeout(uint64_t ns) {
  static char out[11];
  size_t n = mc__grpc_timeout_format(ns, out);
  cr_assert_leq(n, 9);
  out[n] = 0;
  return out;
}

Test(grpc_timeout, finest_unit_with_eight_digits_rounded_up) {
  cr_assert_str_eq(timeout(0), "1n");
  cr_assert_str_eq(timeout(1), "1n");
  cr_assert_str_eq(timeout(99999999), "99999999n");
  cr_assert_str_eq(timeout(100000000), "100000u");
  cr_assert_str_eq(timeout(100000001), "100001u");
  cr_assert_str_eq(timeout(10000000000ull), "10000000u");
  cr_assert_str_eq(timeout(100000000000ull), "100000m");
  cr_assert_str_eq(timeout(UINT64_MAX), "5124096H");
}

Test(grpc_names, status_and_serving) {
  cr_assert_str_eq(mc_grpc_status_name(MC_GRPC_OK), "OK");
  cr_assert_str_eq(mc_grpc_status_name(5), "NOT_FOUND");
  cr_assert_str_eq(mc_grpc_status_name(12), "UNIMPLEMENTED");
  cr_assert_str_eq(mc_grpc_status_name(16), "UNAUTHENTICATED");
  cr_assert_str_eq(mc_grpc_status_name(17), "UNKNOWN_STATUS");
  cr_assert_str_eq(mc_grpc_status_name(-1), "UNKNOWN_STATUS");
  cr_assert_str_eq(mc_grpc_serving_name(MC_GRPC_HEALTH_SERVING), "SERVING");
  cr_assert_str_eq(mc_grpc_serving_name(2), "NOT_SERVING");
  cr_assert_str_eq(mc_grpc_serving_name(4), "UNKNOWN_SERVING_STATUS");
}

static void target_ok(const char *t, const char *host, int port,
                      const char *service) {
  mc_slice h, s;
  int p;
  cr_assert_eq(mc_grpc_target_parse(mc_slice_cstr(t), &h, &p, &s), 0, "%s", t);
  cr_assert(mc_slice_eq(h, mc_slice_cstr(host)), "%s: host %.*s", t,
            MC_SLICE_ARG(h));
  cr_assert_eq(p, port, "%s", t);
  cr_assert(mc_slice_eq(s, mc_slice_cstr(service)), "%s: service %.*s", t,
            MC_SLICE_ARG(s));
}

static void target_bad(const char *t) {
  mc_slice h, s;
  int p;
  cr_assert_eq(mc_grpc_target_parse(mc_slice_cstr(t), &h, &p, &s), MC_EINVAL,
               "%s", t);
}

Test(grpc_target, consul_forms) {
  target_ok("127.0.0.1:9090", "127.0.0.1", 9090, "");
  target_ok("127.0.0.1:9090/", "127.0.0.1", 9090, "");
  target_ok("svc.local:1/my.Service", "svc.local", 1, "my.Service");
  target_ok("[::1]:65535/a/b", "::1", 65535, "a/b");
  target_ok("h:80/x:1", "h", 80, "x:1");
}

Test(grpc_target, refused) {
  target_bad("");
  target_bad("host");
  target_bad("host:");
  target_bad(":80");
  target_bad("host:0");
  target_bad("host:65536");
  target_bad("host:123456");
  target_bad("host:8a");
  target_bad("::1:80");
  target_bad("[::1]80");
  target_bad("[::1]:");
  target_bad("[::1");
  target_bad("/svc");
}
