/* Fuzzes the HTTP/1.1 request reader (lib/http/h1_reader.c).
 *
 * The input is the byte stream of one connection. It is fed in one read,
 * cut into reads at a few points derived from the input and, when short,
 * one byte per read (so every "span continues in the next read" path
 * runs). Events are handled as the
 * server does: body_limit is set at MC_H1_HEAD, mc__h1_reader_next follows
 * MC_H1_DONE (pipelining), MC_H1_ERROR ends the connection. Checked, with
 * abort():
 *  - a feed never consumes more than it was given, MC_H1_MORE consumes all;
 *  - at MC_H1_HEAD: method, target and every header are slices into the
 *    head buffer, which stays within max_head; the target is not empty; the
 *    version is 1.0 or 1.1; header names are tokens; values hold no control
 *    byte but HTAB and no outer whitespace; no line of the head starts with
 *    whitespace (obs-fold is refused); Content-Length never comes with
 *    Transfer-Encoding; chunked only on HTTP/1.1;
 *  - at MC_H1_DONE: the body is within body_limit and as long as
 *    Content-Length said; the headers are still those seen at MC_H1_HEAD,
 *    slices into the head buffer (the owner reads them while answering);
 *  - at MC_H1_ERROR: the status is 400, 413, 417, 431 or 505 and a reason
 *    is given; it is never llhttp's pause after an Upgrade or CONNECT
 *    request (microc answers those as plain requests, so the connection
 *    goes on in HTTP/1.1);
 *  - every feeding sees the same requests and bodies, and an error in the
 *    same request: where a request ends, and whether it is refused, never
 *    depends on how its bytes arrived;
 *  - a body read as it comes (stream mode, as for routes with stream_body:
 *    the pieces are taken after every feed) is the same body, within the
 *    same limit, as one held whole. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/h1_reader.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

static const mc__h1_limits limits = {.max_head = 2048, .max_headers = 16};

/* What a feeding saw, as a running FNV-1a hash. */
typedef struct transcript {
  uint64_t h;
  unsigned requests;
} transcript;

static void mix(transcript *t, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    t->h ^= b[i];
    t->h *= 0x100000001b3ULL;
  }
}

static void mix_u64(transcript *t, uint64_t v) {
  mix(t, &v, sizeof v);
}

static void mix_slice(transcript *t, mc_slice s) {
  mix_u64(t, s.len);
  mix(t, s.ptr, s.len);
}

static bool inside(const mc_buf *b, mc_slice s) {
  if (s.len == 0)
    return s.ptr != NULL;
  return b->ptr && s.ptr >= b->ptr && s.ptr + s.len <= b->ptr + b->len;
}

static bool is_tchar(unsigned char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
         (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void check_head(const mc__h1_reader *r, transcript *t) {
  CHECK(r->head_done);
  CHECK(r->head.len <= limits.max_head);
  CHECK(r->nheaders <= limits.max_headers);
  CHECK(r->method.ptr && r->method.len > 0);
  CHECK(r->target.len > 0 && inside(&r->head, r->target));
  CHECK(r->http_major == 1 && r->http_minor <= 1);
  for (uint32_t i = 0; i < r->nheaders; i++) {
    mc_slice n = r->headers[i].name, v = r->headers[i].value;
    CHECK(n.len > 0 && inside(&r->head, n));
    CHECK(inside(&r->head, v) || (v.len == 0 && v.ptr));
    for (size_t k = 0; k < n.len; k++)
      CHECK(is_tchar((unsigned char)n.ptr[k]));
    for (size_t k = 0; k < v.len; k++) {
      unsigned char c = (unsigned char)v.ptr[k];
      CHECK((c >= 0x20 || c == '\t') && c != 0x7F);
    }
    if (v.len)
      CHECK(v.ptr[0] != ' ' && v.ptr[0] != '\t' && v.ptr[v.len - 1] != ' ' &&
            v.ptr[v.len - 1] != '\t');
    /* the lookup finds a header by its own name */
    CHECK(mc__h1_reader_header(r, n).ptr != NULL);
  }
  bool te = mc__h1_reader_header(r, MC_LIT("transfer-encoding")).ptr != NULL;
  bool cl = mc__h1_reader_header(r, MC_LIT("content-length")).ptr != NULL;
  CHECK(!(te && cl));
  CHECK(!r->chunked || r->http_minor == 1);
  CHECK(!r->chunked || r->content_length == -1);
  CHECK(cl == (r->content_length >= 0));
  CHECK(!r->expect_continue || r->http_minor == 1);
  (void)mc__h1_reader_keep_alive(r);

  mix_slice(t, r->method);
  mix_slice(t, r->target);
  mix_u64(t, r->http_minor);
  mix_u64(t, r->nheaders);
  for (uint32_t i = 0; i < r->nheaders; i++) {
    mix_slice(t, r->headers[i].name);
    mix_slice(t, r->headers[i].value);
  }
  mix_u64(t, (uint64_t)r->content_length);
  mix_u64(t, r->chunked);
  mix_u64(t, r->expect_continue);
}

/* Feeds data in reads ending at cuts[0..ncuts-1] (ascending, the last one
 * being size) and returns what happened. */
static transcript feed_all(const uint8_t *data, size_t size, const size_t *cuts,
                           size_t ncuts, size_t body_limit, bool stream) {
  transcript t = {.h = 0xcbf29ce484222325ULL};
  transcript body = {.h = 0xcbf29ce484222325ULL}; /* this request's */
  uint64_t body_len = 0;
  mc__h1_reader r;
  CHECK(mc__h1_reader_init(&r, &limits) == 0);
  size_t off = 0, start = 0; /* start: where the current request began */
  bool failed = false, head = false;
  uint32_t nheaders = 0; /* as seen at MC_H1_HEAD */
  for (size_t c = 0; c < ncuts && !failed; c++) {
    /* after MC_H1_HEAD the server feeds on even with no bytes left: a
     * request without a body completes then */
    while ((off < cuts[c] || head) && !failed) {
      head = false;
      size_t len = cuts[c] - off, used = (size_t)-1;
      mc__h1_event ev =
          mc__h1_reader_feed(&r, (const char *)data + off, len, &used);
      CHECK(used <= len);
      off += used;
      if (stream && r.stream && ev != MC_H1_ERROR) { /* the handler takes it */
        CHECK(r.body_total <= body_limit);
        mix(&body, r.body.ptr, r.body.len);
        body_len += r.body.len;
        mc_buf_reset(&r.body);
      }
      switch (ev) {
      case MC_H1_MORE:
        CHECK(used == len);
        break;
      case MC_H1_HEAD:
        mix_u64(&t, 1);
        check_head(&r, &t);
        for (size_t i = start; i + 1 < off; i++)
          CHECK(data[i] != '\n' || (data[i + 1] != ' ' && data[i + 1] != '\t'));
        r.body_limit = body_limit;
        r.stream = stream;
        nheaders = r.nheaders;
        head = true;
        break;
      case MC_H1_DONE:
        CHECK(r.head_done && r.nheaders == nheaders);
        for (uint32_t i = 0; i < r.nheaders; i++)
          CHECK(inside(&r.head, r.headers[i].name) &&
                (inside(&r.head, r.headers[i].value) ||
                 r.headers[i].value.len == 0));
        CHECK(inside(&r.head, r.target));
        if (!stream) {
          mix(&body, r.body.ptr, r.body.len);
          body_len = r.body.len;
        }
        CHECK(body_len <= body_limit);
        CHECK(r.content_length < 0 || body_len == (uint64_t)r.content_length);
        CHECK(!body_len || r.content_length >= 0 || r.chunked);
        mix_u64(&t, 2);
        mix_u64(&t, off); /* where in the stream the request ended */
        mix_u64(&t, body.h);
        mix_u64(&t, body_len);
        body.h = 0xcbf29ce484222325ULL;
        body_len = 0;
        (void)mc__h1_reader_header(&r, MC_LIT("host"));
        t.requests++;
        mc__h1_reader_next(&r);
        start = off;
        CHECK(!r.head_done && r.nheaders == 0 && r.head.len == 0);
        break;
      case MC_H1_ERROR:
        CHECK(r.status == 400 || r.status == 413 || r.status == 417 ||
              r.status == 431 || r.status == 505);
        CHECK(r.reason && r.reason[0]);
        CHECK(llhttp_get_errno(&r.parser) != HPE_PAUSED_UPGRADE);
        if (r.head_done) /* headers stay readable for the error page */
          (void)mc__h1_reader_header(&r, MC_LIT("host"));
        /* not the status: a cap can be hit at the end of a read before a
         * bad byte further on is seen, so 431 and 400 may swap */
        mix_u64(&t, 3);
        failed = true;
        break;
      default:
        abort();
      }
    }
  }
  mc__h1_reader_free(&r);
  return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Cut points and body limit come from a hash of the input, so seeds stay
   * plain HTTP and each input is cut the same way every run. */
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < size; i++)
    h = (h ^ data[i]) * 0x100000001b3ULL;
  static const size_t body_limits[] = {4096, 4096, 16, 0};
  size_t body_limit = body_limits[h & 3];

  size_t whole[] = {size};
  transcript a = feed_all(data, size, whole, 1, body_limit, false);

  size_t cuts[5], n = 0;
  if (size > 1) {
    /* three cuts from the hash and one in the last eighth, where bodies
     * and trailers end */
    size_t p[4] = {(h >> 8) % size, (h >> 24) % size, (h >> 40) % size,
                   size > 8 ? size - 1 - (h >> 56) % (size / 8) : size / 2};
    for (int i = 0; i < 4; i++) /* sort, drop zeros and repeats */
      for (int k = i + 1; k < 4; k++)
        if (p[k] < p[i]) {
          size_t x = p[i];
          p[i] = p[k];
          p[k] = x;
        }
    for (int i = 0; i < 4; i++)
      if (p[i] > 0 && (n == 0 || p[i] > cuts[n - 1]))
        cuts[n++] = p[i];
  }
  cuts[n++] = size;
  transcript b = feed_all(data, size, cuts, n, body_limit, false);
  CHECK(a.h == b.h && a.requests == b.requests);
  transcript s = feed_all(data, size, cuts, n, body_limit, true);
  CHECK(a.h == s.h && a.requests == s.requests);

  /* byte by byte, for small inputs: the most splits there can be */
  if (size <= 256) {
    size_t each[256];
    for (size_t i = 0; i < size; i++)
      each[i] = i + 1;
    transcript c = feed_all(data, size, each, size, body_limit, false);
    CHECK(a.h == c.h && a.requests == c.requests);
    transcript d = feed_all(data, size, each, size, body_limit, true);
    CHECK(a.h == d.h && a.requests == d.requests);
  }
  return 0;
}
