#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/h1_reader.h"

static mc__h1_reader r;
static const mc__h1_limits limits = {.max_head = 1024, .max_headers = 8};

static void setup(void) {
  cr_assert_eq(mc__h1_reader_init(&r, &limits), 0);
}
static void teardown(void) {
  mc__h1_reader_free(&r);
}
TestSuite(h1, .init = setup, .fini = teardown);

/* Feeds s whole, handling HEAD by allowing body_limit bytes; returns the
 * final event and leaves *rest pointing at the unconsumed bytes. */
static mc__h1_event run(const char *s, size_t len, size_t body_limit,
                        size_t *consumed) {
  size_t off = 0, used;
  for (;;) {
    mc__h1_event ev = mc__h1_reader_feed(&r, s + off, len - off, &used);
    off += used;
    if (ev == MC_H1_HEAD) {
      r.body_limit = body_limit;
      continue;
    }
    if (consumed)
      *consumed = off;
    return ev;
  }
}
#define RUN(lit, lim) run(lit, sizeof(lit) - 1, lim, NULL)

Test(h1, simple_get) {
  cr_assert_eq(
      RUN("GET /hello/x?a=1 HTTP/1.1\r\nHost: h\r\nX-A:  v \r\n\r\n", 0),
      MC_H1_DONE);
  cr_assert(mc_slice_eq(r.method, MC_LIT("GET")));
  cr_assert(mc_slice_eq(r.target, MC_LIT("/hello/x?a=1")));
  cr_assert_eq(r.nheaders, 2);
  cr_assert(mc_slice_eq(mc__h1_reader_header(&r, MC_LIT("x-a")), MC_LIT("v")));
  cr_assert(mc__h1_reader_keep_alive(&r));
  cr_assert_eq(r.content_length, -1);
}

Test(h1, byte_by_byte_split) {
  const char req[] = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                     "X-Long-Header: abcdefghij\r\n\r\nhello";
  mc__h1_event ev = MC_H1_MORE;
  for (size_t i = 0; i < sizeof req - 1; i++) {
    size_t used;
    size_t off = 0;
    do {
      ev = mc__h1_reader_feed(&r, req + i + off, 1 - off, &used);
      off += used;
      if (ev == MC_H1_HEAD)
        r.body_limit = 100;
    } while (ev == MC_H1_HEAD || (off < 1 && ev == MC_H1_MORE));
    if (ev == MC_H1_DONE)
      break;
  }
  cr_assert_eq(ev, MC_H1_DONE);
  cr_assert(mc_slice_eq(r.target, MC_LIT("/echo")));
  cr_assert(mc_slice_eq(mc__h1_reader_header(&r, MC_LIT("X-Long-Header")),
                        MC_LIT("abcdefghij")));
  cr_assert_eq(r.body.len, 5);
  cr_assert_str_eq(r.body.ptr, "hello");
}

Test(h1, pipelined_requests_come_one_at_a_time) {
  const char req[] =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t used;
  cr_assert_eq(run(req, sizeof req - 1, 0, &used), MC_H1_DONE);
  cr_assert(mc_slice_eq(r.target, MC_LIT("/a")));
  mc__h1_reader_next(&r);
  size_t used2;
  cr_assert_eq(run(req + used, sizeof req - 1 - used, 0, &used2), MC_H1_DONE);
  cr_assert(mc_slice_eq(r.target, MC_LIT("/b")));
  cr_assert_eq(used + used2, sizeof req - 1);
}

Test(h1, chunked_body) {
  cr_assert_eq(
      RUN("POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
          100),
      MC_H1_DONE);
  cr_assert(r.chunked);
  cr_assert_str_eq(r.body.ptr, "hello world");
}

Test(h1, chunked_body_over_limit_is_413) {
  cr_assert_eq(
      RUN("POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
          8),
      MC_H1_ERROR);
  cr_assert_eq(r.status, 413);
}

Test(h1, head_reports_content_length_before_body) {
  size_t used;
  const char req[] =
      "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n";
  cr_assert_eq(mc__h1_reader_feed(&r, req, sizeof req - 1, &used), MC_H1_HEAD);
  cr_assert_eq(r.content_length, 100000);
}

Test(h1, expect_continue) {
  size_t used;
  const char req[] = "POST /e HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
                     "Content-Length: 2\r\n\r\n";
  cr_assert_eq(mc__h1_reader_feed(&r, req, sizeof req - 1, &used), MC_H1_HEAD);
  cr_assert(r.expect_continue);
}

Test(h1, unknown_expectation_is_417) {
  cr_assert_eq(RUN("POST /e HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 0),
               MC_H1_ERROR);
  cr_assert_eq(r.status, 417);
}

Test(h1, http10_closes_by_default) {
  cr_assert_eq(RUN("GET / HTTP/1.0\r\n\r\n", 0), MC_H1_DONE);
  cr_assert_not(mc__h1_reader_keep_alive(&r));
}

Test(h1, http10_keep_alive_on_request) {
  cr_assert_eq(RUN("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 0),
               MC_H1_DONE);
  cr_assert(mc__h1_reader_keep_alive(&r));
}

Test(h1, connection_close) {
  cr_assert_eq(RUN("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 0),
               MC_H1_DONE);
  cr_assert_not(mc__h1_reader_keep_alive(&r));
}

#define BAD(name, req, code)                                                   \
  Test(h1, name) {                                                             \
    cr_assert_eq(RUN(req, 100), MC_H1_ERROR);                                  \
    cr_assert_eq(r.status, code, "status %d (%s)", r.status, r.reason);        \
  }

BAD(content_length_with_transfer_encoding,
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: "
    "chunked\r\n\r\n0\r\n\r\n",
    400)
BAD(differing_content_lengths,
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: "
    "4\r\n\r\nabcd",
    400)
BAD(bad_chunk_size,
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
    "chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    400)
BAD(obs_fold, "GET / HTTP/1.1\r\nHost: h\r\nX-A: one\r\n two\r\n\r\n", 400)
BAD(space_before_colon, "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400)
BAD(nul_in_value, "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 400)
BAD(cr_in_value, "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400)
BAD(bare_lf_line_end_in_value_with_ctl, "GET / HTTP/1.1\r\nX-A: a\x01b\r\n\r\n",
    400)
BAD(negative_content_length, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    400)
BAD(garbage_method, "G@T / HTTP/1.1\r\n\r\n", 400)
BAD(http2_version, "GET / HTTP/2.0\r\n\r\n", 505)
BAD(http09_request, "GET /\r\n\r\n", 505)
BAD(chunked_in_http10,
    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

BAD(missing_host_in_http11, "GET / HTTP/1.1\r\nX-A: a\r\n\r\n", 400)
BAD(two_host_headers, "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400)
BAD(two_host_headers_in_http10, "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
    400)

Test(h1, http10_needs_no_host) {
  cr_assert_eq(RUN("GET / HTTP/1.0\r\n\r\n", 0), MC_H1_DONE);
}

Test(h1, too_many_headers_is_431) {
  cr_assert_eq(RUN("GET / HTTP/1.1\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n"
                   "f: 1\r\ng: 1\r\nh: 1\r\ni: 1\r\n\r\n",
                   0),
               MC_H1_ERROR);
  cr_assert_eq(r.status, 431);
}

Test(h1, head_too_large_is_431) {
  char req[2048];
  memset(req, 'a', sizeof req);
  memcpy(req, "GET /", 5);
  cr_assert_eq(run(req, sizeof req, 0, NULL), MC_H1_ERROR);
  cr_assert_eq(r.status, 431);
}

Test(h1, big_header_value_is_431) {
  char req[2048];
  memset(req, 'v', sizeof req);
  memcpy(req, "GET / HTTP/1.1\r\nX: ", 19);
  cr_assert_eq(run(req, sizeof req, 0, NULL), MC_H1_ERROR);
  cr_assert_eq(r.status, 431);
}

Test(h1, body_with_zero_limit_is_413) {
  cr_assert_eq(
      RUN("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", 0),
      MC_H1_ERROR);
  cr_assert_eq(r.status, 413);
}

Test(h1, head_memory_is_reused_across_requests) {
  for (int i = 0; i < 100; i++) {
    cr_assert_eq(RUN("GET /a HTTP/1.1\r\nHost: h\r\n\r\n", 0), MC_H1_DONE);
    mc__h1_reader_next(&r);
  }
  cr_assert_leq(r.head.cap, 1025);
}

/* ---- regressions found by fuzzing ---------------------------------------- */

/* Trailers after a chunked body used to be appended to the head buffer,
 * moving it under the header slices (a heap use-after-free). */
Test(h1, trailers_do_not_move_the_head) {
  char req[512];
  int n = snprintf(req, sizeof req,
                   "POST /o HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
                   "X-Checksum: %0200d\r\n\r\n",
                   7);
  cr_assert_eq(run(req, (size_t)n, 100, NULL), MC_H1_DONE);
  cr_assert(mc_slice_eq(mc__h1_reader_header(&r, MC_LIT("x-request-id")),
                        MC_LIT("abc")));
  cr_assert_eq(r.nheaders, 3, "trailers are not headers");
  cr_assert(mc_slice_eq(mc_buf_slice(&r.body), MC_LIT("abc")));
}

Test(h1, oversized_trailers_are_431) {
  char req[2048];
  int n = snprintf(req, sizeof req,
                   "POST /o HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                   "chunked\r\n\r\n0\r\nX-T: %01500d\r\n\r\n",
                   1);
  cr_assert_eq(run(req, (size_t)n, 100, NULL), MC_H1_ERROR);
  cr_assert_eq(r.status, 431);
}

/* The fold used to be accepted when a read ended right before it. */
Test(h1, obs_fold_split_across_reads_is_400) {
  const char a[] = "GET / HTTP/1.1\r\nHost: h\r\nX-F: first\r\n";
  const char b[] = " second\r\n\r\n";
  size_t used;
  cr_assert_eq(mc__h1_reader_feed(&r, a, sizeof a - 1, &used), MC_H1_MORE);
  cr_assert_eq(mc__h1_reader_feed(&r, b, sizeof b - 1, &used), MC_H1_ERROR);
  cr_assert_eq(r.status, 400);
}

BAD(obs_fold_after_an_empty_value,
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n"
    "0\r\n\r\n",
    400)
BAD(whitespace_before_the_first_field, "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
    400)
BAD(empty_header_name, "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400)
BAD(empty_transfer_encoding_with_content_length,
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\nContent-Length: "
    "3\r\n\r\nabc",
    400)
BAD(content_length_over_int64,
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n"
    "\r\n",
    413)
BAD(connect_is_refused,
    "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 3\r\n\r\nabc",
    400)

/* curl sends Upgrade: h2c; we stay in HTTP/1.1 and serve what follows. */
Test(h1, upgrade_is_ignored_and_the_next_request_served) {
  const char req[] = "GET /a HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, "
                     "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: "
                     "AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\nGET /b HTTP/1.1\r\n"
                     "Host: h\r\n\r\n";
  size_t used;
  cr_assert_eq(run(req, sizeof req - 1, 0, &used), MC_H1_DONE);
  cr_assert(mc_slice_eq(r.target, MC_LIT("/a")));
  mc__h1_reader_next(&r);
  cr_assert_eq(run(req + used, sizeof req - 1 - used, 0, NULL), MC_H1_DONE);
  cr_assert(mc_slice_eq(r.target, MC_LIT("/b")));
}

Test(h1, duplicate_content_length_says_so) {
  cr_assert_eq(RUN("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                   "Content-Length: 2\r\n\r\nab",
                   10),
               MC_H1_ERROR);
  cr_assert_eq(r.status, 400);
  cr_assert_null(strstr(r.reason, "Transfer-Encoding"), "%s", r.reason);
}
