#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "microc/consul.h"

static mc_arena *a;
static char err[256];
static void setup(void) {
  cr_assert_eq(mc_arena_new(&a, 0, 0), 0);
  err[0] = 0;
}
static void teardown(void) {
  mc_arena_free(a);
}
TestSuite(consul, .init = setup, .fini = teardown);

static int decode(const char *json, mc_consul_service *s) {
  return mc_consul_decode_service(mc_slice_cstr(json), a, s, err, sizeof err);
}

Test(consul, pascal_case_registration) {
  mc_consul_service s;
  cr_assert_eq(
      decode(
          "{\"ID\":\"web-1\",\"Name\":\"web\",\"Tags\":[\"v1\",\"x\"],"
          "\"Address\":\"127.0.0.1\",\"Port\":8000,\"Meta\":{\"ver\":\"1\"},"
          "\"Weights\":{\"Passing\":10,\"Warning\":2},\"Check\":{\"HTTP\":"
          "\"http://127.0.0.1:8000/health\",\"Interval\":\"10s\",\"Timeout\":"
          "\"1s\",\"DeregisterCriticalServiceAfter\":\"1m\"}}",
          &s),
      0, "%s", err);
  cr_assert_str_eq(s.id, "web-1");
  cr_assert_str_eq(s.name, "web");
  cr_assert_eq(s.port, 8000);
  cr_assert_eq(s.ntags, 2);
  cr_assert_str_eq(s.tags[1], "x");
  cr_assert_eq(s.nmeta, 1);
  cr_assert_str_eq(s.meta[0].key, "ver");
  cr_assert_eq(s.weight_passing, 10);
  cr_assert_eq(s.weight_warning, 2);
  cr_assert_eq(s.nchecks, 1);
  mc_consul_check *c = &s.checks[0];
  cr_assert_eq(c->kind, MC_CHECK_HTTP);
  cr_assert_str_eq(c->target, "http://127.0.0.1:8000/health");
  cr_assert_eq(c->interval_ns, 10000000000);
  cr_assert_eq(c->timeout_ns, 1000000000);
  cr_assert_eq(c->deregister_after_ns, 60000000000);
  cr_assert_eq(c->status, 0, "not given");
}

/* What python-consul sends: lowercase keys; snake_case works too. */
Test(consul, lowercase_and_snake_case_keys) {
  mc_consul_service s;
  cr_assert_eq(decode("{\"name\":\"db\",\"port\":5432,\"tags\":[],"
                      "\"check\":{\"tcp\":\"127.0.0.1:5432\",\"interval\":"
                      "\"5s\",\"deregister_critical_service_after\":\"90s\"},"
                      "\"enable_tag_override\":true}",
                      &s),
               0, "%s", err);
  cr_assert_str_eq(s.id, "db", "ID defaults to the name");
  cr_assert(s.enable_tag_override);
  cr_assert_eq(s.checks[0].kind, MC_CHECK_TCP);
  cr_assert_eq(s.checks[0].deregister_after_ns, 90000000000);
}

Test(consul, check_then_checks_and_durations_as_numbers) {
  mc_consul_service s;
  cr_assert_eq(
      decode("{\"Name\":\"a\",\"Check\":{\"TTL\":\"15s\",\"Status\":"
             "\"passing\"},\"Checks\":[{\"GRPC\":\"127.0.0.1:9/x\","
             "\"Interval\":2000000000,\"CheckID\":\"g\"},{\"HTTP\":"
             "\"http://h/\",\"Interval\":\"1s\",\"Method\":\"POST\",\"Header\":"
             "{\"X-A\":[\"1\",\"2\"]},\"Body\":\"{}\"}]}",
             &s),
      0, "%s", err);
  cr_assert_eq(s.nchecks, 3);
  cr_assert_eq(s.checks[0].kind, MC_CHECK_TTL);
  cr_assert_eq(s.checks[0].ttl_ns, 15000000000);
  cr_assert_eq(s.checks[0].status, MC_HEALTH_PASSING);
  cr_assert_eq(s.checks[1].kind, MC_CHECK_GRPC);
  cr_assert_eq(s.checks[1].interval_ns, 2000000000);
  cr_assert_str_eq(s.checks[1].id, "g");
  cr_assert_eq(s.checks[2].nheaders, 2);
  cr_assert_str_eq(s.checks[2].method, "POST");
}

Test(consul, refusals_with_consuls_messages) {
  struct {
    const char *json;
    int rc;
    const char *msg;
  } cases[] = {
      {"{\"Port\":1}", MC_EINVAL, "Missing service name"},
      {"{\"Name\":\"\"}", MC_EINVAL, "Missing service name"},
      {"{\"Name\":\"a\"", MC_EPARSE, "Request decode failed"},
      {"[1]", MC_EPARSE, "Request decode failed"},
      {"{\"Name\":\"a\",\"Port\":\"80\"}", MC_EPARSE, "Request decode failed"},
      {"{\"Name\":\"a\",\"Port\":70000}", MC_EINVAL, "out of range"},
      {"{\"Name\":\"a\",\"Tags\":\"x\"}", MC_EPARSE, "Tags must be a list"},
      {"{\"Name\":\"a\",\"Check\":{\"HTTP\":\"http://h/\"}}", MC_EINVAL,
       "Interval must be > 0"},
      {"{\"Name\":\"a\",\"Check\":{\"HTTP\":\"http://h/\",\"Interval\":"
       "\"-5s\"}}",
       MC_EINVAL, "Interval must be > 0"},
      {"{\"Name\":\"a\",\"Check\":{\"HTTP\":\"http://h/\",\"Interval\":"
       "\"soon\"}}",
       MC_EPARSE, "invalid duration"},
      {"{\"Name\":\"a\",\"Check\":{\"TTL\":\"0s\"}}", MC_EINVAL,
       "TTL must be > 0"},
      {"{\"Name\":\"a\",\"Check\":{\"Interval\":\"1s\"}}", MC_EINVAL,
       "one of HTTP, TCP, GRPC or TTL"},
      {"{\"Name\":\"a\",\"Check\":{\"TCP\":\"h:1\",\"HTTP\":\"http://h/\","
       "\"Interval\":\"1s\"}}",
       MC_EINVAL, "only one of"},
      {"{\"Name\":\"a\",\"Check\":{\"Args\":[\"/bin/true\"],\"Interval\":"
       "\"1s\"}}",
       MC_EINVAL, "Scripts are disabled"},
      {"{\"Name\":\"a\",\"Check\":{\"TTL\":\"5s\",\"Status\":\"great\"}}",
       MC_EINVAL, "Invalid check status"},
      {"{\"Name\":\"a\",\"Check\":{\"HTTP\":\"ftp://h/\",\"Interval\":"
       "\"1s\"}}",
       MC_EINVAL, "http:// URL"},
      {"{\"Name\":\"a\",\"Meta\":{\"bad key\":\"v\"}}", MC_EINVAL,
       "Invalid Service Meta"},
      {"{\"Name\":\"a\",\"Meta\":{\"consul-x\":\"v\"}}", MC_EINVAL, "reserved"},
      {"{\"Name\":\"a\",\"Name\":\"b\"}", MC_EPARSE, "Request decode failed"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mc_consul_service s;
    err[0] = 0;
    cr_assert_eq(decode(cases[i].json, &s), cases[i].rc, "case %zu: %s", i,
                 err);
    cr_assert_not_null(strstr(err, cases[i].msg), "case %zu: %s", i, err);
  }
}

Test(consul, encode_then_decode_is_the_same) {
  mc_consul_service s, t;
  cr_assert_eq(
      decode("{\"ID\":\"i\",\"Name\":\"n\",\"Address\":\"10.0.0.1\",\"Port\":"
             "1,\"Tags\":[\"a\",\"b\"],\"Meta\":{\"k\":\"v\"},\"Checks\":["
             "{\"HTTP\":\"http://h/x\",\"Interval\":\"1m30s\",\"Header\":{"
             "\"A\":[\"1\",\"2\"],\"B\":[\"3\"]},\"Status\":\"warning\"},{"
             "\"TTL\":\"1.5s\",\"DeregisterCriticalServiceAfter\":\"2h\"}]}",
             &s),
      0, "%s", err);
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_consul_encode_service(&s, &b), 0);
  cr_assert_eq(
      mc_consul_decode_service(mc_buf_slice(&b), a, &t, err, sizeof err), 0,
      "%s: %s", err, b.ptr);
  cr_assert_str_eq(t.id, "i");
  cr_assert_str_eq(t.address, "10.0.0.1");
  cr_assert_eq(t.ntags, 2);
  cr_assert_eq(t.nchecks, 2);
  cr_assert_eq(t.checks[0].interval_ns, 90000000000);
  cr_assert_eq(t.checks[0].nheaders, 3);
  cr_assert_eq(t.checks[0].status, MC_HEALTH_WARNING);
  cr_assert_eq(t.checks[1].ttl_ns, 1500000000);
  cr_assert_eq(t.checks[1].deregister_after_ns, 7200000000000);
  mc_buf_free(&b);
}

Test(consul, go_durations_as_go_writes_them) {
  struct {
    int64_t ns;
    const char *text;
  } cases[] = {
      {0, "0s"},
      {1, "1ns"},
      {1500, "1.5\xc2\xb5s"},
      {1500000, "1.5ms"},
      {1000000000, "1s"},
      {90000000000, "1m30s"},
      {3723004005006, "1h2m3.004005006s"},
      {3600000000000, "1h0m0s"},
      {-2000000000, "-2s"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mc_buf b;
    mc_buf_init(&b, 0);
    mc_go_duration_format(cases[i].ns, &b);
    cr_assert_str_eq(b.ptr, cases[i].text);
    mc_buf_free(&b);
  }
}

Test(consul, health_answers) {
  const char json[] =
      "[{\"Node\":{\"Node\":\"n\",\"Address\":\"10.1.1.1\"},\"Service\":{"
      "\"ID\":\"web-1\",\"Service\":\"web\",\"Address\":\"\",\"Port\":80,"
      "\"Tags\":[\"v1\"],\"Meta\":{\"zone\":\"a\"},\"Weights\":{\"Passing\":"
      "5,\"Warning\":1}},\"Checks\":[{\"Status\":\"passing\"},{\"Status\":"
      "\"warning\"}]},{\"Node\":{\"Address\":\"10.1.1.2\"},\"Service\":{"
      "\"ID\":\"web-2\",\"Service\":\"web\",\"Address\":\"127.0.0.1\","
      "\"Port\":81},\"Checks\":[]}]";
  mc_consul_instance *list;
  size_t n;
  cr_assert_eq(mc_consul_decode_health(mc_slice_cstr(json), a, &list, &n), 0);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(list[0].address, "10.1.1.1", "node address as fallback");
  cr_assert_eq(list[0].health, MC_HEALTH_WARNING);
  cr_assert_eq(list[0].weight, 1, "warning weight");
  cr_assert_str_eq(list[0].meta[0].value, "a");
  cr_assert_str_eq(list[1].address, "127.0.0.1");
  cr_assert_eq(list[1].health, MC_HEALTH_PASSING);
  cr_assert_eq(mc_consul_decode_health(MC_LIT("{}"), a, &list, &n), MC_EPARSE);
  cr_assert_eq(mc_consul_decode_health(MC_LIT("[1]"), a, &list, &n), MC_EPARSE);
}

/* ---- regressions found by tests/fuzz/fuzz_consul_decode.c --------------- */

/* Numbers beyond int64_t (every number is decoded as a double) were
 * converted to int64_t, which is undefined behaviour (UBSan aborted). */
Test(consul, huge_numbers_are_refused_not_converted) {
  struct {
    const char *json;
    int rc;
    const char *msg;
  } cases[] = {
      {"{\"Name\":\"a\",\"Port\":1e300}", MC_EINVAL, "out of range"},
      {"{\"Name\":\"a\",\"Port\":-1e300}", MC_EINVAL, "out of range"},
      {"{\"Name\":\"a\",\"Weights\":{\"Passing\":1e20}}", MC_EINVAL,
       "out of range"},
      {"{\"Name\":\"a\",\"Check\":{\"TCP\":\"h:1\",\"Interval\":1e300}}",
       MC_EPARSE, "duration out of range"},
      {"{\"Name\":\"a\",\"Check\":{\"TTL\":-1e300}}", MC_EPARSE,
       "duration out of range"},
      /* rounds to 2^63 as a double */
      {"{\"Name\":\"a\",\"Check\":{\"TCP\":\"h:1\",\"Interval\":"
       "9223372036854775807}}",
       MC_EPARSE, "duration out of range"},
      {"{\"Name\":\"a\",\"Port\":80.5}", MC_EPARSE, "must be an integer"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mc_consul_service s;
    err[0] = 0;
    cr_assert_eq(decode(cases[i].json, &s), cases[i].rc, "case %zu: %s", i,
                 err);
    cr_assert_not_null(strstr(err, cases[i].msg), "case %zu: %s", i, err);
  }
  mc_consul_service s;
  cr_assert_eq(decode("{\"Name\":\"a\",\"Check\":{\"TCP\":\"h:1\",\"Interval\":"
                      "9007199254740992}}",
                      &s),
               0, "%s", err);
  cr_assert_eq(s.checks[0].interval_ns, 9007199254740992);
  mc_consul_instance *list;
  size_t n;
  cr_assert_eq(
      mc_consul_decode_health(MC_LIT("[{\"Service\":{\"ID\":\"x\",\"Weights\":{"
                                     "\"Passing\":1e300}}}]"),
                              a, &list, &n),
      MC_EPARSE);
}

/* An empty HTTP, TCP or GRPC after the kind that is set cleared its target:
 * the check decoded with no target, and its encoding was refused. */
Test(consul, empty_kind_does_not_clear_the_target) {
  mc_consul_service s;
  cr_assert_eq(decode("{\"Name\":\"a\",\"Check\":{\"TCP\":\"h:1\",\"HTTP\":"
                      "\"\",\"GRPC\":\"\",\"Interval\":\"1s\"}}",
                      &s),
               0, "%s", err);
  cr_assert_eq(s.checks[0].kind, MC_CHECK_TCP);
  cr_assert_str_eq(s.checks[0].target, "h:1");
  mc_consul_check c;
  cr_assert_eq(mc_consul_decode_check(
                   MC_LIT("{\"Name\":\"a\",\"GRPC\":\"h:1\",\"TCP\":\"\","
                          "\"Interval\":\"1s\"}"),
                   a, &c, err, sizeof err),
               0, "%s", err);
  cr_assert_eq(c.kind, MC_CHECK_GRPC);
  cr_assert_str_eq(c.target, "h:1");
}

/* "Header" then "header": the second kept the first's count and wrote past
 * its own array, leaving a NULL header name. */
Test(consul, second_header_spelling_replaces_the_first) {
  mc_consul_service s;
  cr_assert_eq(decode("{\"Name\":\"a\",\"Check\":{\"HTTP\":\"http://h/\","
                      "\"Interval\":\"1s\",\"Header\":{\"A\":[\"1\"]},"
                      "\"header\":{\"B\":[\"2\"]}}}",
                      &s),
               0, "%s", err);
  cr_assert_eq(s.checks[0].nheaders, 1);
  cr_assert_str_eq(s.checks[0].headers[0].key, "B");
  cr_assert_str_eq(s.checks[0].headers[0].value, "2");
}

/* Weights.Passing null gave 0, out of its range 1..65535: the service
 * decoded, but its own encoding was refused. */
Test(consul, null_weight_keeps_the_default) {
  mc_consul_service s, t;
  cr_assert_eq(
      decode("{\"Name\":\"w\",\"Weights\":{\"Passing\":null,\"Warning\":null}}",
             &s),
      0, "%s", err);
  cr_assert_eq(s.weight_passing, 1);
  cr_assert_eq(s.weight_warning, 1);
  mc_buf b;
  mc_buf_init(&b, 0);
  cr_assert_eq(mc_consul_encode_service(&s, &b), 0);
  cr_assert_eq(
      mc_consul_decode_service(mc_buf_slice(&b), a, &t, err, sizeof err), 0,
      "%s: %s", err, b.ptr);
  mc_buf_free(&b);
}

/* A port out of range in a health answer came back as MC_EINVAL, which
 * mc_consul_decode_health does not return. */
Test(consul, health_port_out_of_range_is_a_parse_error) {
  mc_consul_instance *list;
  size_t n;
  cr_assert_eq(mc_consul_decode_health(
                   MC_LIT("[{\"Service\":{\"ID\":\"x\",\"Port\":70000}}]"), a,
                   &list, &n),
               MC_EPARSE);
}

/* Meta keys and header names that did not fit in the arena came back NULL
 * in a decode that succeeded (mc_consul_encode_service then crashed on
 * them); a header name is copied once per value, so a long one with many
 * null values ran a 256 KiB arena dry. At every limit: all or MC_ENOMEM. */
Test(consul, names_that_do_not_fit_fail_with_enomem) {
  char key[201];
  memset(key, 'k', sizeof key - 1);
  key[sizeof key - 1] = 0;
  char svc[1024], health[512];
  snprintf(svc, sizeof svc,
           "{\"Name\":\"a\",\"Meta\":{\"%.128s\":\"\"},\"Check\":{\"HTTP\":"
           "\"http://h/\",\"Interval\":\"1s\",\"Header\":{\"%s\":[null,"
           "null]}}}",
           key, key);
  snprintf(health, sizeof health,
           "[{\"Service\":{\"ID\":\"x\",\"Meta\":{\"%s\":\"\"}}}]", key);
  for (size_t limit = 16; limit <= 4096; limit += 16) {
    mc_arena *small;
    cr_assert_eq(mc_arena_new(&small, 0, limit), 0);
    mc_consul_service s;
    int rc = mc_consul_decode_service(mc_slice_cstr(svc), small, &s, err,
                                      sizeof err);
    cr_assert(rc == 0 || rc == MC_ENOMEM, "limit %zu: %d", limit, rc);
    if (rc == 0) {
      cr_assert_not_null(s.meta[0].key, "limit %zu", limit);
      for (size_t i = 0; i < s.checks[0].nheaders; i++)
        cr_assert_not_null(s.checks[0].headers[i].key, "limit %zu", limit);
    }
    mc_arena_reset(small);
    mc_consul_instance *list;
    size_t n;
    rc = mc_consul_decode_health(mc_slice_cstr(health), small, &list, &n);
    cr_assert(rc == 0 || rc == MC_ENOMEM, "limit %zu: %d", limit, rc);
    if (rc == 0)
      cr_assert(list[0].nmeta == 1 && list[0].meta[0].key, "limit %zu", limit);
    mc_arena_free(small);
  }
}
