/* kitchen: a service that exercises what hello does not, for the
 * integration tests: typed path and query parameters, fibers that sleep,
 * work on the thread pool, middleware, failing handlers, large answers and
 * small body limits. */
#include <microc/client.h>
#include <microc/discovery.h>
#include <microc/fiber.h>
#include <microc/http.h>
#include <microc/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* ---- models ------------------------------------------------------------ */

typedef struct item_path {
  int64_t id;
} item_path;
MC_MODEL(item_path, MC_INT(item_path, id, MC_REQUIRED, MC_MIN(1)));

typedef struct item_query {
  bool verbose;
} item_query;
MC_MODEL(item_query, MC_BOOL(item_query, verbose, MC_DEFAULT(false)));

typedef struct item {
  int64_t id;
  bool verbose;
} item;
MC_MODEL(item, MC_INT(item, id, MC_REQUIRED), MC_BOOL(item, verbose));

typedef struct search_query {
  mc_slice q;
  int64_t limit;
  MC_ARRAY_OF(mc_slice) tags;
  mc_slice sort;
  double min_price;
  bool has_min_price;
} search_query;
MC_MODEL(search_query, MC_STRING(search_query, q, MC_REQUIRED, MC_LEN(1, 50)),
         MC_INT(search_query, limit, MC_MIN(1), MC_MAX(100), MC_DEFAULT(10)),
         MC_ARRAY(search_query, tags, MC_STRING_ITEMS(MC_PATTERN("^[a-z]+$")),
                  MC_MAX_ITEMS(5)),
         MC_STRING(search_query, sort, MC_ENUM("asc", "desc"),
                   MC_DEFAULT_STR("asc")),
         MC_NUMBER(search_query, min_price, MC_MIN(0),
                   MC_PRESENT(search_query, has_min_price)));

typedef struct sleep_query {
  int64_t ms;
} sleep_query;
MC_MODEL(sleep_query,
         MC_INT(sleep_query, ms, MC_REQUIRED, MC_MIN(0), MC_MAX(60000)));

typedef struct big_query {
  int64_t kb;
} big_query;
MC_MODEL(big_query,
         MC_INT(big_query, kb, MC_REQUIRED, MC_MIN(0), MC_MAX(32768)));

/* ---- handlers ------------------------------------------------------------ */

static int get_item(mc_req *req) {
  const item_path *p = mc_req_params(req);
  const item_query *q = mc_req_query(req);
  item out = {p->id, q->verbose};
  return mc_res_model(req, 200, &item_model, &out);
}

static int search(mc_req *req) {
  return mc_res_model(req, 200, &search_query_model, mc_req_query(req));
}

static int do_sleep(mc_req *req) {
  const sleep_query *q = mc_req_query(req);
  uint64_t t0 = mc_now_ns();
  int err = mc_sleep((uint64_t)q->ms);
  if (err)
    return err;
  char body[96];
  int n = snprintf(body, sizeof body, "{\"slept_ms\":%lld,\"elapsed_ms\":%llu}",
                   (long long)q->ms,
                   (unsigned long long)((mc_now_ns() - t0) / 1000000));
  return mc_res_json(req, 200, (mc_slice){body, (size_t)n});
}

typedef struct blocking_job {
  int64_t ms;
  uv_thread_t ran_on;
} blocking_job;

static void blocking_work(void *arg) {
  blocking_job *j = arg;
  usleep((useconds_t)(j->ms * 1000));
  j->ran_on = uv_thread_self();
}

static int blocking(mc_req *req) {
  const sleep_query *q = mc_req_query(req);
  blocking_job j = {.ms = q->ms};
  int err = mc_run_blocking(blocking_work, &j);
  if (err)
    return err;
  uv_thread_t self = uv_thread_self();
  bool other = !uv_thread_equal(&self, &j.ran_on);
  return mc_res_json(req, 200,
                     other ? MC_LIT("{\"other_thread\":true}")
                           : MC_LIT("{\"other_thread\":false}"));
}

static int fail(mc_req *req) {
  return MC_EIO;
}

static int silent(mc_req *req) {
  return 0;
}

static int big(mc_req *req) {
  const big_query *q = mc_req_query(req);
  size_t n = (size_t)q->kb * 1024;
  char *p = mc_arena_alloc(mc_req_arena(req), n ? n : 1);
  if (!p)
    return MC_ENOMEM;
  for (size_t i = 0; i < n; i++)
    p[i] = (char)('a' + i % 26);
  return mc_res_send(req, 200, MC_LIT("text/plain"), (mc_slice){p, n});
}

static int upload(mc_req *req) {
  char body[64];
  int n =
      snprintf(body, sizeof body, "{\"bytes\":%zu}", mc_req_body_raw(req).len);
  return mc_res_json(req, 200, (mc_slice){body, (size_t)n});
}

/* ---- streaming ------------------------------------------------------- */

typedef struct stream_query {
  int64_t n, size, delay_ms;
  bool length, end, trailer;
} stream_query;
MC_MODEL(stream_query,
         MC_INT(stream_query, n, MC_MIN(0), MC_MAX(1000000), MC_DEFAULT(4)),
         MC_INT(stream_query, size, MC_MIN(1), MC_MAX(1 << 20),
                MC_DEFAULT(1024)),
         MC_INT(stream_query, delay_ms, MC_MIN(0), MC_MAX(10000),
                MC_DEFAULT(0)),
         MC_BOOL(stream_query, length, MC_DEFAULT(false)),
         MC_BOOL(stream_query, end, MC_DEFAULT(true)),
         MC_BOOL(stream_query, trailer, MC_DEFAULT(false)));

/* n pieces of size bytes ('a'..'z' over and over), delay_ms apart. */
static int stream_out(mc_req *req) {
  const stream_query *q = mc_req_query(req);
  size_t size = (size_t)q->size;
  char *p = mc_arena_alloc(mc_req_arena(req), size);
  if (!p)
    return MC_ENOMEM;
  int64_t total = q->n * q->size;
  int err =
      mc_res_begin(req, 200, MC_LIT("text/plain"), q->length ? total : -1);
  uint64_t at = 0;
  for (int64_t i = 0; !err && i < q->n; i++) {
    for (size_t k = 0; k < size; k++)
      p[k] = (char)('a' + (at + k) % 26);
    at += size;
    if (q->delay_ms && (err = mc_sleep((uint64_t)q->delay_ms)))
      break;
    err = mc_res_write(req, (mc_slice){p, size});
  }
  if (err)
    return err;
  if (q->trailer)
    mc_res_trailer(req, MC_LIT("x-pieces"), MC_LIT("done"));
  return q->end ? mc_res_end(req) : 0;
}

typedef struct sink_query {
  int64_t delay_ms;
  bool early;
} sink_query;
MC_MODEL(sink_query,
         MC_INT(sink_query, delay_ms, MC_MIN(0), MC_MAX(10000), MC_DEFAULT(0)),
         MC_BOOL(sink_query, early, MC_DEFAULT(false)));

/* Reads the body as it comes: how many pieces, bytes, and their FNV-1a. */
static int sink(mc_req *req) {
  const sink_query *q = mc_req_query(req);
  if (q->early) /* answers without reading a byte */
    return mc_res_problem(req, 403, "not taking this");
  uint64_t pieces = 0, bytes = 0;
  uint32_t fnv = 2166136261u;
  for (;;) {
    mc_slice piece;
    int err = mc_req_body_read(req, &piece);
    if (err == MC_ETOOBIG)
      return mc_res_problem(req, 413, "request body too large");
    if (err)
      return mc_res_problemf(req, 400, "body: %s", mc_strerror(err));
    if (!piece.len)
      break;
    pieces++;
    bytes += piece.len;
    for (size_t i = 0; i < piece.len; i++)
      fnv = (fnv ^ (uint8_t)piece.ptr[i]) * 16777619u;
    if (q->delay_ms && mc_sleep((uint64_t)q->delay_ms) != 0)
      return MC_ECANCELED;
  }
  char out[128];
  int n =
      snprintf(out, sizeof out, "{\"pieces\":%llu,\"bytes\":%llu,\"fnv\":%u}",
               (unsigned long long)pieces, (unsigned long long)bytes, fnv);
  return mc_res_json(req, 200, (mc_slice){out, (size_t)n});
}

/* Sends each piece of the body back as it comes: full duplex. */
static int echo_stream(mc_req *req) {
  int err = mc_res_begin(req, 200, MC_LIT("application/octet-stream"), -1);
  while (!err) {
    mc_slice piece;
    if ((err = mc_req_body_read(req, &piece)) || !piece.len)
      break;
    err = mc_res_write(req, piece);
  }
  if (err)
    return err;
  mc_res_trailer(req, MC_LIT("x-echo"), MC_LIT("done"));
  return mc_res_end(req);
}

static int headers(mc_req *req) {
  mc_slice ua = mc_req_header(req, MC_LIT("x-echo"));
  return mc_res_send(req, 200, MC_LIT("text/plain"), ua);
}

/* A background fiber started by a handler outlives the request. */
static _Atomic int spawned_done;

static void background(void *arg) {
  mc_sleep(50);
  spawned_done++;
}

static int spawn(mc_req *req) {
  int err = mc_spawn(background, NULL);
  if (err)
    return err;
  return mc_res_json(req, 202, MC_LIT("{\"spawned\":true}"));
}

static int spawned(mc_req *req) {
  char body[48];
  int n = snprintf(body, sizeof body, "{\"done\":%d}", spawned_done);
  return mc_res_json(req, 200, (mc_slice){body, (size_t)n});
}

/* Recurses until the fiber's guard page stops it. */
static int deep(volatile char *prev, int n) {
  volatile char pad[1024];
  pad[0] = (char)n;
  pad[1023] = prev ? prev[0] : 0;
  return n > 1000000 ? pad[0] : deep(pad, n + 1) + pad[1023];
}

static int overflow(mc_req *req) {
  if (!getenv("KITCHEN_ALLOW_OVERFLOW"))
    return mc_res_problem(req, 403, "set KITCHEN_ALLOW_OVERFLOW to crash");
  return deep(NULL, 0) ? MC_EIO : 0;
}

/* ---- outbound calls
 * ----------------------------------------------------------- */

/* ---- streaming both ways: what /fetch and /call do with stream=1 and
 * upload=N ---------------------------------------------------------------- */

static uint32_t crc32_update(uint32_t crc, const char *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  crc = ~crc;
  for (size_t i = 0; i < n; i++)
    crc = table[(crc ^ (uint8_t)p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

/* An upload of `left` bytes in pieces of `piece`: byte i of the body is
 * 'a' + i % 26. duplex: each piece after the first waits until the answer
 * has brought back as many bytes as were sent (an echo server, read on
 * the caller's fiber while this runs on the exchange's). fail_at: the
 * source fails with MC_EIO once that many bytes are sent. */
typedef struct body_upload {
  mc_body_source src;
  int64_t left, piece, pause_ms, fail_at;
  uint64_t sent, echoed;
  char *buf;
  bool duplex;
  mc_waitq caught_up;
} body_upload;

static int upload_read(void *ud, mc_slice *chunk) {
  body_upload *u = ud;
  if (u->fail_at && u->sent >= (uint64_t)u->fail_at)
    return MC_EIO;
  if (u->left <= 0) {
    *chunk = (mc_slice){"", 0};
    return 0;
  }
  if (u->sent && u->pause_ms && mc_sleep((uint64_t)u->pause_ms) != 0)
    return MC_ECANCELED;
  while (u->duplex && u->echoed < u->sent) {
    int err = mc_waitq_wait(&u->caught_up, 10000);
    if (err)
      return err;
  }
  size_t n = (size_t)(u->left < u->piece ? u->left : u->piece);
  for (size_t i = 0; i < n; i++)
    u->buf[i] = (char)('a' + (u->sent + i) % 26);
  u->sent += n;
  u->left -= (int64_t)n;
  *chunk = (mc_slice){u->buf, n};
  return 0;
}

static body_upload *upload_new(mc_arena *a, int64_t n, int64_t piece,
                               bool chunked, int64_t pause_ms) {
  body_upload *u = mc_arena_calloc(a, sizeof *u);
  if (!u || !(u->buf = mc_arena_alloc(a, (size_t)piece)))
    return NULL;
  u->src = (mc_body_source){upload_read, u, chunked ? -1 : n};
  u->left = n;
  u->piece = piece;
  u->pause_ms = pause_ms;
  return u;
}

/* Appends "status", "error" and, for a streamed answer read here in
 * pieces, what came: pieces, bytes, crc32, the start of the body, the
 * trailers, and the error that cut it short, if one did. */
static void report_answer(mc_buf *b, int err, mc_http_response *res,
                          body_upload *u, int64_t read_delay_ms, bool leak) {
  mc_buf_appendf(b, "\"status\":%d,\"error\":", err ? 0 : res->status);
  if (err)
    mc_buf_append_json_str(b, mc_err_name(err), strlen(mc_err_name(err)));
  else
    mc_buf_append_cstr(b, "null");
  if (err || !res->stream || leak) { /* leak: the arena closes the stream */
    if (u)
      mc_buf_appendf(b, ",\"sent\":%llu", (unsigned long long)u->sent);
    return;
  }
  uint64_t pieces = 0, bytes = 0;
  uint32_t crc = 0;
  mc_buf start;
  mc_buf_init(&start, 4096);
  int rerr;
  for (;;) {
    mc_slice piece;
    if ((rerr = mc_http_read(res, &piece)) != 0 || !piece.len)
      break;
    pieces++;
    bytes += piece.len;
    crc = crc32_update(crc, piece.ptr, piece.len);
    if (start.len < 4096)
      mc_buf_append(&start, piece.ptr,
                    piece.len < 4096 - start.len ? piece.len
                                                 : 4096 - start.len);
    if (u) {
      u->echoed = bytes;
      mc_waitq_wake_all(&u->caught_up);
    }
    if (read_delay_ms && mc_sleep((uint64_t)read_delay_ms) != 0)
      break;
  }
  mc_http_close(res);
  mc_buf_appendf(b,
                 ",\"pieces\":%llu,\"bytes\":%llu,\"crc\":%u,"
                 "\"read_error\":",
                 (unsigned long long)pieces, (unsigned long long)bytes, crc);
  if (rerr)
    mc_buf_append_json_str(b, mc_err_name(rerr), strlen(mc_err_name(rerr)));
  else
    mc_buf_append_cstr(b, "null");
  mc_buf_append_cstr(b, ",\"start\":");
  mc_buf_append_json_str(b, start.ptr ? start.ptr : "", start.len);
  mc_buf_free(&start);
  mc_buf_append_cstr(b, ",\"trailers\":{");
  for (size_t i = 0; i < res->ntrailers; i++) {
    if (i)
      mc_buf_append_char(b, ',');
    mc_buf_append_json_str(b, res->trailers[i].name.ptr,
                           res->trailers[i].name.len);
    mc_buf_append_char(b, ':');
    mc_buf_append_json_str(b, res->trailers[i].value.ptr,
                           res->trailers[i].value.len);
  }
  mc_buf_append_char(b, '}');
  if (u) /* what the source gave, by the end of the answer */
    mc_buf_appendf(b, ",\"sent\":%llu", (unsigned long long)u->sent);
}

typedef struct fetch_query {
  mc_slice url;
  mc_slice method;
  int64_t timeout_ms;
  int64_t times;
  mc_slice body;
  int64_t deadline_ms;
  bool stream, chunked, leak;
  int64_t upload, piece, pause_ms, read_delay_ms, declare;
} fetch_query;
MC_MODEL(fetch_query, MC_STRING(fetch_query, url, MC_REQUIRED),
         MC_STRING(fetch_query, method, MC_DEFAULT_STR("GET")),
         MC_INT(fetch_query, timeout_ms, MC_MIN(0), MC_DEFAULT(0)),
         MC_INT(fetch_query, times, MC_MIN(1), MC_MAX(1000), MC_DEFAULT(1)),
         MC_STRING(fetch_query, body),
         MC_INT(fetch_query, deadline_ms, MC_MIN(0), MC_DEFAULT(0)),
         MC_BOOL(fetch_query, stream, MC_DEFAULT(false)),
         MC_BOOL(fetch_query, chunked, MC_DEFAULT(false)),
         MC_BOOL(fetch_query, leak, MC_DEFAULT(false)),
         MC_INT(fetch_query, upload, MC_MIN(-1), MC_DEFAULT(-1)),
         MC_INT(fetch_query, piece, MC_MIN(1), MC_MAX(1 << 20),
                MC_DEFAULT(16384)),
         MC_INT(fetch_query, pause_ms, MC_MIN(0), MC_DEFAULT(0)),
         MC_INT(fetch_query, read_delay_ms, MC_MIN(0), MC_DEFAULT(0)),
         MC_INT(fetch_query, declare, MC_MIN(-1), MC_DEFAULT(-1)));

/* /fetch with stream=1 or upload=N (N bytes from a body source, chunked=1
 * for an unknown length, declare=M to announce M bytes instead): one call,
 * its answer read in pieces. */
static int fetch_streaming(mc_req *req, const fetch_query *q) {
  mc_arena *a = mc_req_arena(req);
  body_upload *u = NULL;
  if (q->upload >= 0 &&
      !(u = upload_new(a, q->upload, q->piece, q->chunked, q->pause_ms)))
    return MC_ENOMEM;
  if (u && q->declare >= 0)
    u->src.length = q->declare;
  mc_http_response res;
  int err = mc_http_do(
      &(mc_http_request){.method =
                             mc_arena_strndup(a, q->method.ptr, q->method.len),
                         .url = mc_arena_strndup(a, q->url.ptr, q->url.len),
                         .body_source = u ? &u->src : NULL,
                         .stream = q->stream,
                         .timeout_ms = (uint64_t)q->timeout_ms},
      a, &res);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '{');
  report_answer(&b, err, &res, u, q->read_delay_ms, q->leak);
  if (!err && !q->stream) {
    mc_buf_append_cstr(&b, ",\"body\":");
    mc_buf_append_json_str(&b, res.body.ptr, res.body.len);
  }
  mc_http_pool_stats st;
  mc_http_pool_stats_get(&st);
  mc_buf_appendf(&b, ",\"opened\":%llu,\"reused\":%llu,\"idle\":%u}",
                 (unsigned long long)st.opened, (unsigned long long)st.reused,
                 st.idle);
  int rc = mc_res_json(req, err ? 502 : 200, mc_buf_slice(&b));
  mc_buf_free(&b);
  return rc;
}

/* Calls url `times` times in a row and reports the last answer and what
 * the connection pool did. */
static int fetch(mc_req *req) {
  const fetch_query *q = mc_req_query(req);
  mc_arena *a = mc_req_arena(req);
  if (q->deadline_ms)
    mc_deadline_set(mc_now_ns() + (uint64_t)q->deadline_ms * 1000000u);
  if (q->stream || q->upload >= 0)
    return fetch_streaming(req, q);
  mc_http_response res = {0};
  int err = 0;
  char *url = mc_arena_strndup(a, q->url.ptr, q->url.len);
  char *method = mc_arena_strndup(a, q->method.ptr, q->method.len);
  for (int64_t i = 0; i < q->times && !err; i++)
    err = mc_http_do(&(mc_http_request){.method = method,
                                        .url = url,
                                        .body = q->body,
                                        .timeout_ms = (uint64_t)q->timeout_ms},
                     a, &res);
  mc_http_pool_stats st;
  mc_http_pool_stats_get(&st);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_appendf(&b, "{\"status\":%d,\"error\":", res.status);
  if (err)
    mc_buf_append_json_str(&b, mc_err_name(err), strlen(mc_err_name(err)));
  else
    mc_buf_append_cstr(&b, "null");
  mc_buf_append_cstr(&b, ",\"body\":");
  mc_buf_append_json_str(&b, res.body.ptr, res.body.len);
  mc_buf_append_cstr(&b, ",\"headers\":{");
  for (size_t i = 0; i < res.nheaders; i++) {
    if (i)
      mc_buf_append_char(&b, ',');
    mc_buf_append_json_str(&b, res.headers[i].name.ptr,
                           res.headers[i].name.len);
    mc_buf_append_char(&b, ':');
    mc_buf_append_json_str(&b, res.headers[i].value.ptr,
                           res.headers[i].value.len);
  }
  mc_buf_appendf(&b,
                 "},\"opened\":%llu,\"reused\":%llu,\"retried\":%llu,"
                 "\"idle\":%u}",
                 (unsigned long long)st.opened, (unsigned long long)st.reused,
                 (unsigned long long)st.retried, st.idle);
  int rc = mc_res_json(req, err ? 502 : 200, mc_buf_slice(&b));
  mc_buf_free(&b);
  return rc;
}

/* ---- calls by service name
 * ------------------------------------------------------- */

typedef struct call_query {
  mc_slice service;
  mc_slice path;
  mc_slice method;
  mc_slice body;
  bool stream, chunked, h2, duplex, leak;
  int64_t upload, piece, fail_at, declare, timeout_ms;
} call_query;
MC_MODEL(call_query, MC_STRING(call_query, service, MC_REQUIRED),
         MC_STRING(call_query, path, MC_DEFAULT_STR("/")),
         MC_STRING(call_query, method, MC_DEFAULT_STR("GET")),
         MC_STRING(call_query, body),
         MC_BOOL(call_query, stream, MC_DEFAULT(false)),
         MC_BOOL(call_query, chunked, MC_DEFAULT(false)),
         MC_BOOL(call_query, h2, MC_DEFAULT(false)),
         MC_BOOL(call_query, duplex, MC_DEFAULT(false)),
         MC_BOOL(call_query, leak, MC_DEFAULT(false)),
         MC_INT(call_query, upload, MC_MIN(-1), MC_DEFAULT(-1)),
         MC_INT(call_query, piece, MC_MIN(1), MC_MAX(1 << 20),
                MC_DEFAULT(16384)),
         MC_INT(call_query, fail_at, MC_MIN(0), MC_DEFAULT(0)),
         MC_INT(call_query, declare, MC_MIN(-1), MC_DEFAULT(-1)),
         MC_INT(call_query, timeout_ms, MC_MIN(0), MC_DEFAULT(0)));

/* /call with stream=1 or upload=N: see fetch_streaming; h2=1 speaks
 * HTTP/2, duplex=1 sends each piece only once the answer has echoed the
 * one before. */
static int call_streaming(mc_req *req, const call_query *q) {
  mc_arena *a = mc_req_arena(req);
  body_upload *u = NULL;
  if (q->upload >= 0) {
    if (!(u = upload_new(a, q->upload, q->piece, q->chunked, 0)))
      return MC_ENOMEM;
    u->duplex = q->duplex;
    u->fail_at = q->fail_at;
    if (q->declare >= 0)
      u->src.length = q->declare;
  }
  char served[128] = "";
  mc_http_response res;
  int err = mc_call_service(
      &(mc_call){.service = mc_arena_strndup(a, q->service.ptr, q->service.len),
                 .path = mc_arena_strndup(a, q->path.ptr, q->path.len),
                 .method = mc_arena_strndup(a, q->method.ptr, q->method.len),
                 .body_source = u ? &u->src : NULL,
                 .stream = q->stream,
                 .h2 = q->h2,
                 .timeout_ms = (uint64_t)q->timeout_ms,
                 .served_by = served,
                 .served_by_cap = sizeof served},
      a, &res);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_append_char(&b, '{');
  report_answer(&b, err, &res, u, 0, q->leak);
  if (!err && !q->stream) {
    mc_buf_append_cstr(&b, ",\"body\":");
    mc_buf_append_json_str(&b, res.body.ptr, res.body.len);
  }
  mc_buf_append_cstr(&b, ",\"served_by\":");
  mc_buf_append_json_str(&b, served, strlen(served));
  mc_buf_append_char(&b, '}');
  int rc = mc_res_json(req, err ? 502 : 200, mc_buf_slice(&b));
  mc_buf_free(&b);
  return rc;
}

static int call(mc_req *req) {
  const call_query *q = mc_req_query(req);
  mc_arena *a = mc_req_arena(req);
  if (q->stream || q->upload >= 0 || q->h2)
    return call_streaming(req, q);
  char served[128] = "";
  mc_http_response res;
  int err = mc_call_service(
      &(mc_call){.service = mc_arena_strndup(a, q->service.ptr, q->service.len),
                 .path = mc_arena_strndup(a, q->path.ptr, q->path.len),
                 .method = mc_arena_strndup(a, q->method.ptr, q->method.len),
                 .body = q->body,
                 .served_by = served,
                 .served_by_cap = sizeof served},
      a, &res);
  mc_buf b;
  mc_buf_init(&b, 0);
  mc_buf_appendf(&b, "{\"status\":%d,\"error\":", err ? 0 : res.status);
  if (err)
    mc_buf_append_json_str(&b, mc_err_name(err), strlen(mc_err_name(err)));
  else
    mc_buf_append_cstr(&b, "null");
  mc_buf_append_cstr(&b, ",\"served_by\":");
  mc_buf_append_json_str(&b, served, strlen(served));
  mc_buf_append_cstr(&b, ",\"body\":");
  mc_buf_append_json_str(&b, err ? "" : res.body.ptr, err ? 0 : res.body.len);
  mc_buf_append_char(&b, '}');
  int rc = mc_res_json(req, err ? 502 : 200, mc_buf_slice(&b));
  mc_buf_free(&b);
  return rc;
}

/* ---- hooks and options ------------------------------------------------------
 */

static uint64_t drain_delay_ms;
static _Atomic int ticks;

static const mc_option kitchen_options[] = {
    {"drain-delay", "KITCHEN_DRAIN_DELAY", MC_OPT_DURATION, &drain_delay_ms,
     "0", "how long the draining hook waits before the workers drain"},
};

static void ticker(void *arg) {
  while (mc_sleep(100) == 0)
    ticks++;
}

static void on_worker_start(mc_app *app, int worker, void *ud) {
  mc_spawn(ticker, NULL); /* canceled when the worker stops */
}

static void on_ready(mc_app *app, void *ud) {
  MC_LOG(MC_LOG_INFO, "kitchen ready", MC_LOG_INT("port", mc_app_port(app)),
         MC_LOG_INT("workers", mc_app_worker_count(app)));
}

static void on_draining(mc_app *app, void *ud) {
  MC_LOG(MC_LOG_INFO, "kitchen draining");
  int rc = mc_sleep(drain_delay_ms);
  MC_LOG(MC_LOG_INFO, "kitchen drained", MC_LOG_INT("rc", rc));
}

static const mc_app_hooks kitchen_hooks = {
    .worker_start = on_worker_start,
    .ready = on_ready,
    .draining = on_draining,
};

static int get_ticks(mc_req *req) {
  char body[48];
  int n = snprintf(body, sizeof body, "{\"ticks\":%d}", ticks);
  return mc_res_json(req, 200, (mc_slice){body, (size_t)n});
}

/* ---- middleware ------------------------------------------------------------
 */

static int block_before(mc_req *req, void *ud) {
  if (mc_slice_eq(mc_req_header(req, MC_LIT("x-block")), MC_LIT("1"))) {
    mc_res_problem(req, 403, "blocked by middleware");
    return 1;
  }
  mc_req_set_local(req, ud, "seen");
  return 0;
}

static void stamp_after(mc_req *req, void *ud) {
  const char *seen = mc_req_local(req, ud);
  mc_res_header(req, MC_LIT("X-Middleware"),
                seen ? MC_LIT("before,after") : MC_LIT("after"));
}

static int mw_key;
static const mc_middleware stamp = {"stamp", block_before, stamp_after,
                                    &mw_key};

static const mc_route routes[] = {
    {"GET", "/items/{id}", get_item, .params = &item_path_model,
     .query = &item_query_model, .response = &item_model, .tag = "items"},
    {"GET", "/search", search, .query = &search_query_model,
     .response = &search_query_model},
    {"GET", "/sleep", do_sleep, .query = &sleep_query_model},
    {"GET", "/blocking", blocking, .query = &sleep_query_model},
    {"GET", "/fail", fail},
    {"GET", "/silent", silent},
    {"GET", "/big", big, .query = &big_query_model},
    {"POST", "/upload", upload, .max_body = 1024},
    {"PUT", "/upload", upload, .max_body = 4 << 20},
    {"GET", "/headers", headers},
    {"GET", "/stream", stream_out, .query = &stream_query_model},
    {"POST", "/sink", sink, .query = &sink_query_model, .max_body = 1u << 30,
     .stream_body = true},
    {"POST", "/sink-small", sink, .query = &sink_query_model,
     .max_body = 100000, .stream_body = true},
    {"POST", "/echo-stream", echo_stream, .max_body = 1u << 30,
     .stream_body = true},
    {"POST", "/spawn", spawn},
    {"GET", "/spawn", spawned},
    {"GET", "/overflow", overflow, .hidden = true},
    {"GET", "/ticks", get_ticks},
    {"GET", "/fetch", fetch, .query = &fetch_query_model},
    {"GET", "/call", call, .query = &call_query_model},
};

int main(int argc, char **argv) {
  mc_app *app;
  mc_app_info info = {.name = "kitchen", .version = "0.0.1"};
  if (mc_app_new(&app, &info) != 0)
    return 1;
  if (mc_app_routes(app, routes, MC_COUNT(routes)) != 0 ||
      mc_app_use(app, &stamp) != 0 ||
      mc_app_options(app, kitchen_options, MC_COUNT(kitchen_options)) != 0 ||
      mc_app_default(app, "listen", "127.0.0.1:8001") != 0 ||
      mc_app_hooks_add(app, &kitchen_hooks) != 0) {
    fprintf(stderr, "kitchen: bad route table\n");
    return 1;
  }
  int rc = mc_app_main(app, argc, argv);
  mc_app_free(app);
  return rc;
}
