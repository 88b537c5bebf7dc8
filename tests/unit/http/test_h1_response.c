#include <criterion/criterion.h>
#include <string.h>

#include "http/h1_response.h"
#include "microc/client.h"

static mc__h1_response r;
static void setup(void) {
  cr_assert_eq(mc__h1r_init(&r, 1024, 8, 4096), 0);
}
static void teardown(void) {
  mc__h1r_free(&r);
}
TestSuite(h1r, .init = setup, .fini = teardown);

/* Feeds s in pieces of `step` bytes; returns the last event. */
static mc__h1r_event feed(const char *s, size_t len, size_t step) {
  size_t off = 0, used;
  mc__h1r_event ev = MC_H1R_MORE;
  while (off < len) {
    size_t n = len - off < step ? len - off : step;
    ev = mc__h1r_feed(&r, s + off, n, &used);
    off += used;
    if (ev != MC_H1R_MORE)
      return ev;
  }
  return ev;
}
#define FEED(lit, step) feed(lit, sizeof(lit) - 1, step)

static mc_slice header(uint32_t i, mc_slice *value) {
  mc_slice name;
  mc__h1r_header(&r, i, &name, value);
  return name;
}

Test(h1r, content_length_answer_in_any_pieces) {
  const char a[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                   "X-Long: "
                   "abcdefghijabcdefghij\r\nContent-Length: 7\r\n\r\n"
                   "{\"a\":1}";
  for (size_t step = 1; step <= sizeof a; step += 3) {
    mc__h1r_reset(&r, false);
    cr_assert_eq(feed(a, sizeof a - 1, step), MC_H1R_DONE, "step %zu", step);
    cr_assert_eq(r.status, 201);
    cr_assert(r.keep_alive);
    cr_assert_eq(r.nheaders, 3);
    mc_slice v;
    cr_assert(mc_slice_eq(header(1, &v), MC_LIT("X-Long")));
    cr_assert(mc_slice_eq(v, MC_LIT("abcdefghijabcdefghij")));
    cr_assert(mc_slice_eq(mc_buf_slice(&r.body), MC_LIT("{\"a\":1}")));
  }
}

Test(h1r, chunked_answer) {
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nTrailer: 1\r\n\r\n",
                    5),
               MC_H1R_DONE);
  cr_assert(mc_slice_eq(mc_buf_slice(&r.body), MC_LIT("abcdefg")));
}

Test(h1r, interim_answers_are_skipped) {
  cr_assert_eq(FEED("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                    "Link: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2"
                    "\r\n\r\nok",
                    1000),
               MC_H1R_DONE);
  cr_assert_eq(r.status, 200);
  cr_assert_eq(r.nheaders, 1, "only the final answer's headers");
}

Test(h1r, head_answer_has_no_body) {
  mc__h1r_reset(&r, true);
  size_t used;
  const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  cr_assert_eq(mc__h1r_feed(&r, a, sizeof a - 1, &used), MC_H1R_DONE);
  cr_assert_eq(used, sizeof a - 1);
  cr_assert_eq(r.body.len, 0);
  cr_assert(r.keep_alive);
}

Test(h1r, no_content_and_not_modified_have_no_body) {
  cr_assert_eq(FEED("HTTP/1.1 204 No Content\r\n\r\n", 100), MC_H1R_DONE);
  mc__h1r_reset(&r, false);
  cr_assert_eq(
      FEED("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", 100),
      MC_H1R_DONE);
}

Test(h1r, answer_ended_by_close) {
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\n\r\nuntil the end", 100), MC_H1R_MORE);
  cr_assert_eq(mc__h1r_finish(&r), MC_H1R_DONE);
  cr_assert(mc_slice_eq(mc_buf_slice(&r.body), MC_LIT("until the end")));
  cr_assert_not(r.keep_alive);
}

Test(h1r, truncated_answers_are_errors) {
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 100),
               MC_H1R_MORE);
  cr_assert_eq(mc__h1r_finish(&r), MC_H1R_ERROR);
  cr_assert_eq(r.error, MC_ECLOSED);
  mc__h1r_reset(&r, false);
  cr_assert_eq(mc__h1r_finish(&r), MC_H1R_ERROR, "nothing at all");
  cr_assert_eq(r.error, MC_ECLOSED);
  cr_assert_not(r.started);
  mc__h1r_reset(&r, false);
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\nContent-", 100), MC_H1R_MORE);
  cr_assert_eq(mc__h1r_finish(&r), MC_H1R_ERROR);
  cr_assert(r.started);
}

Test(h1r, connection_close_and_http10) {
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                    "0\r\n\r\n",
                    100),
               MC_H1R_DONE);
  cr_assert_not(r.keep_alive);
  mc__h1r_reset(&r, false);
  cr_assert_eq(FEED("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 100),
               MC_H1R_DONE);
  cr_assert_not(r.keep_alive);
}

Test(h1r, caps) {
  char big[8192];
  memset(big, 'x', sizeof big);
  memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
  cr_assert_eq(feed(big, sizeof big, 512), MC_H1R_ERROR);
  cr_assert_eq(r.error, MC_ETOOBIG);
  mc__h1r_reset(&r, false);
  cr_assert_eq(
      FEED("HTTP/1.1 200 OK\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\ne: 1\r\n"
           "f: 1\r\ng: 1\r\nh: 1\r\ni: 1\r\n\r\n",
           100),
      MC_H1R_ERROR);
  cr_assert_eq(r.error, MC_ETOOBIG);
  mc__h1r_reset(&r, false);
  cr_assert_eq(FEED("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 100),
               MC_H1R_MORE);
  char body[5000];
  memset(body, 'b', sizeof body);
  cr_assert_eq(feed(body, sizeof body, 1000), MC_H1R_ERROR);
  cr_assert_eq(r.error, MC_ETOOBIG);
}

Test(h1r, garbage_and_smuggling_are_refused) {
  const char *bad[] = {
      "SSH-2.0-OpenSSH\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
      ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
       "Transfer-Encoding: chunked\r\n\r\n"),
      "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mc__h1r_reset(&r, false);
    cr_assert_eq(feed(bad[i], strlen(bad[i]), 100), MC_H1R_ERROR, "case %zu",
                 i);
    cr_assert_neq(r.error, 0);
  }
}

Test(h1r, bytes_after_the_answer_are_left) {
  const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA";
  size_t used;
  cr_assert_eq(mc__h1r_feed(&r, a, sizeof a - 1, &used), MC_H1R_DONE);
  cr_assert_eq(used, sizeof a - 1 - 5);
}

Test(url, parses) {
  mc_url u;
  cr_assert_eq(mc_url_parse(MC_LIT("http://127.0.0.1:8500/v1/a?b=c#f"), &u), 0);
  cr_assert(mc_slice_eq(u.host, MC_LIT("127.0.0.1")));
  cr_assert_eq(u.port, 8500);
  cr_assert(mc_slice_eq(u.target, MC_LIT("/v1/a?b=c")));
  cr_assert_eq(mc_url_parse(MC_LIT("http://example.com"), &u), 0);
  cr_assert_eq(u.port, 80);
  cr_assert(mc_slice_eq(u.target, MC_LIT("/")));
  cr_assert_eq(mc_url_parse(MC_LIT("HTTPS://[::1]:9/x"), &u), 0);
  cr_assert(mc_slice_eq(u.host, MC_LIT("::1")));
  cr_assert_eq(u.port, 9);
}

Test(url, refuses) {
  const char *bad[] = {"127.0.0.1:80/x", "ftp://h/",    "http://",
                       "http://:80/",    "http://h:0/", "http://h:99999/",
                       "http://h:8x/",   "http://u@h/", "http://[::1/",
                       "http://[::1]x/", "http://h:/",  "http:/h/",
                       "http://h?q"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mc_url u;
    cr_assert_eq(mc_url_parse(mc_slice_cstr(bad[i]), &u), MC_EINVAL, "%s",
                 bad[i]);
  }
}

Test(url, idempotent_methods) {
  cr_assert(mc_http_idempotent(MC_LIT("GET")));
  cr_assert(mc_http_idempotent(MC_LIT("PUT")));
  cr_assert(mc_http_idempotent(MC_LIT("DELETE")));
  cr_assert_not(mc_http_idempotent(MC_LIT("POST")));
  cr_assert_not(mc_http_idempotent(MC_LIT("PATCH")));
  cr_assert_not(mc_http_idempotent(MC_LIT("get")));
}
