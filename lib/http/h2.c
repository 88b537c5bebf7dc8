/* HTTP/2 on the server's connections (RFC 9113), on nghttp2: h2 over TLS
 * chosen by ALPN, and h2c with prior knowledge (a connection that opens
 * with the client preface). Each stream becomes an mc_req with its own
 * arena and fiber, and goes through the same routing, validation,
 * handlers, metrics and logs as an HTTP/1.1 request: only reading the head
 * and writing the answer differ.
 *
 * nghttp2's callbacks only take notes; streams whose request is complete
 * are started after nghttp2_session_mem_recv returns, so a handler that
 * answers at once never runs inside nghttp2. */
#include <nghttp2/nghttp2.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/fiber_int.h"
#include "http/server_int.h"
#include "microc/log.h"

#define MAX_STREAMS 128
/* A streamed answer's writer waits while more than STREAM_HIGH bytes of
 * it are queued, until they are down to STREAM_LOW. */
#define STREAM_HIGH (256 * 1024)
#define STREAM_LOW (64 * 1024)

typedef struct stream stream;
struct stream {
  int32_t id;
  mc__h2 *h2;
  stream *next, *prev; /* the connection's open streams */
  stream *ready_next;  /* requests complete, waiting to start */
  mc_arena *arena;
  mc__h1_reader rd; /* the request head and body, as HTTP/1 keeps them */
  size_t caph, head_bytes;
  mc_req req;
  mc_buf res_body; /* the answer's body, or what of it waits to be sent */
  size_t res_off;
  size_t body_limit;
  mc_buf taken;      /* the body's piece the handler holds */
  size_t unconsumed; /* body bytes not given back to flow control yet */
  mc_waitq room;     /* a streamed answer's writer, waiting for room */
  bool deferred;     /* the data provider waits for mc_res_write */
  mc_fiber *fiber;
  bool running;  /* the handler's fiber is alive */
  bool closed;   /* nghttp2 is done with the stream */
  bool answered; /* a response has been submitted */
  bool refused;  /* a status to answer with instead of running */
  bool queued;   /* on the ready list, or started */
  int refuse_status;
  const char *refuse_reason;
};

struct mc__h2 {
  nghttp2_session *s;
  mc__conn *c;
  stream *streams;
  stream *ready, *ready_tail; /* complete requests, oldest first */
  uint32_t nstreams;
  uint32_t running;
  bool in_recv;
  bool goaway;
  mc_buf plain; /* frames gathered for one TLS write */
};

static void flush(mc__h2 *h);

/* ---- streams ---------------------------------------------------------- */

static stream *stream_new(mc__h2 *h, int32_t id) {
  mc__conn *c = h->c;
  const mc__config *cfg = &c->w->srv->app->cfg;
  stream *st = calloc(1, sizeof *st);
  if (!st)
    return NULL;
  if (mc_arena_new(&st->arena, 4096, 0) != 0) {
    free(st);
    return NULL;
  }
  st->id = id;
  st->h2 = h;
  st->rd.content_length = -1;
  st->rd.http_major = 2;
  st->rd.body_limit = cfg->max_body;
  mc_buf_init(&st->rd.body, cfg->max_body);
  mc_buf_init(&st->res_body, MC__RES_BODY_LIMIT);
  mc_buf_init(&st->taken, 0);
  mc_req *req = &st->req;
  req->taken = &st->taken;
  req->conn = c;
  req->worker = c->w;
  req->app = c->w->srv->app;
  req->arena = st->arena;
  req->rd = &st->rd;
  req->body = &st->res_body;
  req->start_ns = mc_now_ns();
  st->next = h->streams;
  if (h->streams)
    h->streams->prev = st;
  h->streams = st;
  h->nstreams++;
  return st;
}

static void stream_free(stream *st) {
  mc__h2 *h = st->h2;
  if (st->prev)
    st->prev->next = st->next;
  else if (h->streams == st)
    h->streams = st->next;
  if (st->next)
    st->next->prev = st->prev;
  h->nstreams--;
  mc_buf_free(&st->rd.body);
  mc_buf_free(&st->res_body);
  mc_buf_free(&st->taken);
  mc_arena_free(st->arena); /* runs the request's cleanups too */
  free(st);
}

static void refuse(stream *st, int status, const char *reason) {
  if (!st->refused) {
    st->refused = true;
    st->refuse_status = status;
    st->refuse_reason = reason;
  }
}

/* ---- answers ---------------------------------------------------------- */

static nghttp2_nv nv(mc_slice name, mc_slice value);

/* The trailers, lowered, after the last DATA frame (which then does not
 * end the stream: the trailers' HEADERS frame does). */
static int submit_trailers(stream *st) {
  size_t n = 0;
  for (mc__res_header *t = st->req.trailers; t; t = t->next)
    n++;
  nghttp2_nv *nva = mc_arena_alloc(st->arena, n * sizeof *nva);
  if (!nva)
    return MC_ENOMEM;
  size_t k = 0;
  for (mc__res_header *t = st->req.trailers; t; t = t->next) {
    char *lower = mc_arena_alloc(st->arena, t->name.len);
    if (!lower)
      return MC_ENOMEM;
    for (size_t i = 0; i < t->name.len; i++) {
      char ch = t->name.ptr[i];
      lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    nva[k++] = nv((mc_slice){lower, t->name.len}, t->value);
  }
  return nghttp2_submit_trailer(st->h2->s, st->id, nva, k) == 0 ? 0 : MC_ENOMEM;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags, nghttp2_data_source *src,
                         void *ud) {
  (void)s;
  (void)id;
  (void)ud;
  stream *st = src->ptr;
  size_t left = st->res_body.len - st->res_off;
  size_t n = left < len ? left : len;
  if (n)
    memcpy(buf, st->res_body.ptr + st->res_off, n);
  st->res_off += n;
  if (st->req.streamed && !st->req.ended) { /* more is to come */
    if (st->res_body.len - st->res_off < STREAM_LOW)
      mc_waitq_wake_all(&st->room);
    if (n)
      return (ssize_t)n;
    st->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  if (st->res_off == st->res_body.len) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->req.trailers && submit_trailers(st) == 0)
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  }
  return (ssize_t)n;
}

static bool connection_specific(mc_slice name) {
  static const mc_slice names[] = {
      MC_LIT("connection"),       MC_LIT("keep-alive"),
      MC_LIT("proxy-connection"), MC_LIT("transfer-encoding"),
      MC_LIT("upgrade"),          MC_LIT("content-length")};
  return mc_slice_in_nocase(name, names, MC_COUNT(names));
}

static nghttp2_nv nv(mc_slice name, mc_slice value) {
  return (nghttp2_nv){(uint8_t *)name.ptr, (uint8_t *)value.ptr, name.len,
                      value.len, NGHTTP2_NV_FLAG_NONE};
}

/* Submits the stream's head: status, headers in lower case, and, with
 * provider, a body read from res_body. length: the body's, for
 * content-length, or -1. MC_ENOMEM after resetting the stream. */
static int submit_head(stream *st, int64_t length, bool provider) {
  mc_req *req = &st->req;
  mc__worker *w = st->h2->c->w;
  mc_arena *a = st->arena;
  size_t n = 0;
  for (mc__res_header *hd = req->headers; hd; hd = hd->next)
    n++;
  nghttp2_nv *nva = mc_arena_alloc(a, (n + 8) * sizeof *nva);
  char *st_text = mc_arena_sprintf(a, "%d", req->status);
  char *len_text = mc_arena_sprintf(a, "%lld", (long long)length);
  char *tp = mc_arena_alloc(a, 56);
  st->answered = true;
  if (!nva || !st_text || !len_text || !tp) {
    nghttp2_submit_rst_stream(st->h2->s, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_INTERNAL_ERROR);
    return MC_ENOMEM;
  }
  mc__trace_format(&req->trace, tp);
  size_t k = 0;
  nva[k++] = nv(MC_LIT(":status"), mc_slice_cstr(st_text));
  nva[k++] = nv(MC_LIT("server"), MC_LIT("microc"));
  nva[k++] = nv(MC_LIT("date"), (mc_slice){w->date, w->date_len});
  if (mc__status_has_body(req->status)) {
    nva[k++] = nv(MC_LIT("content-type"), req->content_type);
    if (length >= 0)
      nva[k++] = nv(MC_LIT("content-length"), mc_slice_cstr(len_text));
  }
  nva[k++] = nv(MC_LIT("x-request-id"),
                (mc_slice){req->request_id, req->request_id_len});
  nva[k++] = nv(MC_LIT("traceparent"), mc_slice_cstr(tp));
  for (mc__res_header *hd = req->headers; hd; hd = hd->next) {
    if (connection_specific(hd->name))
      continue;
    char *lower = mc_arena_alloc(a, hd->name.len + 1);
    if (!lower)
      continue;
    for (size_t i = 0; i < hd->name.len; i++) {
      char ch = hd->name.ptr[i];
      lower[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch + 32) : ch;
    }
    nva[k++] = nv((mc_slice){lower, hd->name.len}, hd->value);
  }
  nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
  if (nghttp2_submit_response(st->h2->s, st->id, nva, k,
                              provider ? &prd : NULL) != 0) {
    nghttp2_submit_rst_stream(st->h2->s, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_INTERNAL_ERROR);
    return MC_ENOMEM;
  }
  return 0;
}

/* Submits the answer of a finished handler. */
static void respond(stream *st) {
  mc_req *req = &st->req;
  uint64_t dur = mc_now_ns() - req->start_ns;
  if (!req->answered)
    mc_res_problem(req, 500, "the handler returned without answering");
  bool body = mc__status_has_body(req->status);
  bool send_body = (body && !req->is_head && st->res_body.len) || req->trailers;
  if (submit_head(st, body ? (int64_t)st->res_body.len : -1, send_body) == 0)
    mc__req_observe(req, dur);
}

/* ---- streamed answers and bodies ---------------------------------------- */

static stream *stream_of(mc_req *req) {
  return (stream *)(void *)((char *)req - offsetof(stream, req));
}

/* The data provider may have run dry: wake it and send. */
static void kick(stream *st) {
  if (st->deferred && !st->closed) {
    st->deferred = false;
    nghttp2_session_resume_data(st->h2->s, st->id);
  }
  if (!st->h2->in_recv)
    flush(st->h2);
}

int mc__h2_res_begin(mc_req *req) {
  stream *st = stream_of(req);
  if (st->closed)
    return MC_ECLOSED;
  mc_buf_reset(&st->res_body);
  st->res_off = 0;
  bool body = mc__status_has_body(req->status) && !req->is_head;
  if (!body)
    req->ended = true; /* nothing follows the head */
  int err = submit_head(st, body ? req->res_length : -1, body);
  kick(st);
  return err;
}

int mc__h2_res_write(mc_req *req, mc_slice data) {
  stream *st = stream_of(req);
  if (st->closed || st->h2->c->state == C_CLOSED)
    return MC_ECLOSED;
  if (st->res_off) { /* what was sent makes room */
    mc_buf_consume(&st->res_body, st->res_off);
    st->res_off = 0;
  }
  if (mc_buf_append_slice(&st->res_body, data) != 0)
    return MC_ENOMEM;
  kick(st);
  uint64_t limit = req->app->cfg.write_timeout_ms;
  while (!st->closed && st->h2->c->state != C_CLOSED &&
         st->res_body.len - st->res_off > STREAM_HIGH) {
    int err = mc_waitq_wait(&st->room, limit ? limit : MC_WAIT_FOREVER);
    if (err == MC_ETIMEDOUT && !st->closed) /* the client stopped reading */
      nghttp2_submit_rst_stream(st->h2->s, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_CANCEL);
    if (err)
      return err;
  }
  return st->closed || st->h2->c->state == C_CLOSED ? MC_ECLOSED : 0;
}

int mc__h2_res_end(mc_req *req) {
  stream *st = stream_of(req);
  if (st->closed)
    return MC_ECLOSED;
  kick(st);
  return 0;
}

void mc__h2_body_taken(mc_req *req, size_t n) {
  stream *st = stream_of(req);
  if (st->closed || st->h2->c->state == C_CLOSED)
    return;
  st->unconsumed -= n < st->unconsumed ? n : st->unconsumed;
  nghttp2_session_consume(st->h2->s, st->id, n);
  if (!st->h2->in_recv)
    flush(st->h2);
}

static void answer_refused(stream *st) {
  mc_req *req = &st->req;
  if (!req->path.ptr)
    req->path = MC_LIT("");
  mc__req_begin_req(req);
  req->answered = false;
  mc_res_problem(req, st->refuse_status, st->refuse_reason);
  respond(st);
}

/* ---- handlers on fibers ------------------------------------------------ */

static void fiber_main(void *arg) {
  mc__req_run(arg);
}

static void on_fiber_exit(void *arg) {
  stream *st = arg;
  mc__h2 *h = st->h2;
  mc__conn *c = h->c;
  st->running = false;
  st->fiber = NULL;
  h->running--;
  c->w->in_flight--;
  if (st->closed || c->state == C_CLOSED) {
    stream_free(st);
    if (c->state == C_CLOSED)
      mc__conn_free_if_done(c);
    else
      flush(h);
    return;
  }
  if (st->req.streamed) {
    if (!st->req.ended) /* cut short: a reset tells the client */
      nghttp2_submit_rst_stream(h->s, NGHTTP2_FLAG_NONE, st->id,
                                NGHTTP2_INTERNAL_ERROR);
    else
      kick(st);
    mc__req_observe(&st->req, mc_now_ns() - st->req.start_ns);
  } else {
    respond(st);
  }
  if (!h->in_recv)
    flush(h);
}

static void start(stream *st) {
  mc__h2 *h = st->h2;
  if (st->refused) {
    answer_refused(st);
    return;
  }
  mc__worker *w = h->c->w;
  mc_fiber *f;
  mc__req_begin_req(&st->req);
  if (mc__fiber_new(&f, fiber_main, &st->req) != 0) {
    refuse(st, 503, "out of fibers");
    answer_refused(st);
    return;
  }
  mc__fiber_set_deadline(f, mc__req_deadline(&st->req));
  st->running = true;
  st->fiber = f;
  h->running++;
  w->in_flight++;
  mc__fiber_set_data(f, &st->req);
  mc__fiber_on_exit(f, on_fiber_exit, st);
  mc__fiber_resume(f);
}

/* ---- nghttp2's callbacks ------------------------------------------------ */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *fr,
                            void *ud) {
  mc__h2 *h = ud;
  if (fr->hd.type != NGHTTP2_HEADERS || fr->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  stream *st = stream_new(h, fr->hd.stream_id);
  if (!st)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* RST_STREAM */
  nghttp2_session_set_stream_user_data(s, fr->hd.stream_id, st);
  return 0;
}

static int add_header(stream *st, mc_slice name, mc_slice value) {
  mc__h1_reader *rd = &st->rd;
  if (rd->nheaders == st->caph) {
    size_t cap = st->caph ? st->caph * 2 : 16;
    mc__h1_header *v = mc_arena_alloc(st->arena, cap * sizeof *v);
    if (!v)
      return MC_ENOMEM;
    if (rd->nheaders)
      memcpy(v, rd->headers, rd->nheaders * sizeof *v);
    rd->headers = v;
    st->caph = cap;
  }
  char *n = mc_arena_strndup(st->arena, name.ptr, name.len);
  char *v = mc_arena_strndup(st->arena, value.ptr, value.len);
  if (!n || !v)
    return MC_ENOMEM;
  rd->headers[rd->nheaders++] = (mc__h1_header){{n, name.len}, {v, value.len}};
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *fr,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
  if (!st || fr->hd.type != NGHTTP2_HEADERS)
    return 0; /* trailers: counted by nghttp2's limits, not kept */
  const mc__config *cfg = &st->req.app->cfg;
  mc_slice n = {(const char *)name, namelen};
  mc_slice v = {(const char *)value, valuelen};
  st->head_bytes += namelen + valuelen + 4;
  if (st->head_bytes > cfg->max_head) {
    refuse(st, 431, "request headers too large");
    return 0;
  }
  if (st->rd.nheaders >= (uint64_t)cfg->max_headers) {
    refuse(st, 431, "too many request headers");
    return 0;
  }
  int err = 0;
  if (namelen && name[0] == ':') {
    char *copy = mc_arena_strndup(st->arena, v.ptr, v.len);
    if (!copy)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (mc_slice_eq(n, MC_LIT(":method")))
      st->rd.method = (mc_slice){copy, v.len};
    else if (mc_slice_eq(n, MC_LIT(":path")))
      st->rd.target = (mc_slice){copy, v.len};
    else if (mc_slice_eq(n, MC_LIT(":authority")))
      err = add_header(st, MC_LIT("host"), v);
  } else {
    if (mc_slice_eq(n, MC_LIT("host")) && mc__h1_reader_header(&st->rd, n).ptr)
      return 0; /* :authority came first and wins */
    err = add_header(st, n, v);
    if (!err && mc_slice_eq(n, MC_LIT("content-length"))) {
      int64_t cl;
      if (mc_slice_to_i64(v, &cl) == 0)
        st->rd.content_length = cl;
    }
  }
  return err ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

/* The head is complete: route it, and refuse a body that cannot fit. */
static void on_head(stream *st) {
  st->rd.head_done = true;
  if (st->refused)
    return;
  if (st->rd.target.len == 0 || st->rd.target.ptr[0] != '/') {
    if (!mc_slice_eq(st->rd.method, MC_LIT("OPTIONS")))
      refuse(st, 400, "the request target must be a path");
  }
  if (mc_slice_eq(st->rd.method, MC_LIT("CONNECT"))) {
    refuse(st, 405, "CONNECT is not supported");
    return;
  }
  size_t limit = mc__req_on_head(&st->req);
  st->body_limit = limit;
  st->rd.body_limit = limit;
  st->rd.body.limit = limit;
  if (st->rd.content_length > 0 && (uint64_t)st->rd.content_length > limit)
    refuse(st, 413, "request body too large");
}

static void make_ready(mc__h2 *h, stream *st) {
  if (st->queued)
    return; /* a refused body's END_STREAM, after the refusal */
  st->queued = true;
  st->ready_next = NULL;
  if (h->ready_tail)
    h->ready_tail->ready_next = st;
  else
    h->ready = st;
  h->ready_tail = st;
}

/* The end of a body the handler reads as it comes. */
static int on_body_end(nghttp2_session *s, const nghttp2_frame *fr, void *ud) {
  (void)ud;
  if ((fr->hd.type != NGHTTP2_DATA && fr->hd.type != NGHTTP2_HEADERS) ||
      !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
  if (st && st->req.stream_in && !st->req.body_done) {
    st->req.body_done = true;
    mc_waitq_wake_all(&st->req.body_wait);
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *fr,
                         void *ud) {
  mc__h2 *h = ud;
  if (fr->hd.type != NGHTTP2_HEADERS && fr->hd.type != NGHTTP2_DATA)
    return 0;
  stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
  if (st && st->req.stream_in)
    return on_body_end(s, fr, ud);
  if (!st || st->running || st->answered)
    return 0;
  if (fr->hd.type == NGHTTP2_HEADERS &&
      fr->headers.cat == NGHTTP2_HCAT_REQUEST) {
    on_head(st);
    /* a refused request is answered without waiting for its body, and a
     * route that reads its body as it comes starts at once */
    const mc__route_entry *e = st->req.match.entry;
    bool more = !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM);
    if (more && !st->refused && e && e->route->stream_body)
      st->req.stream_in = true;
    if (more && (st->refused || st->req.stream_in)) {
      make_ready(h, st);
      return 0;
    }
  }
  if (fr->hd.flags & NGHTTP2_FLAG_END_STREAM)
    make_ready(h, st);
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  (void)ud;
  stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (st && st->req.stream_in && !st->req.body_err) {
    /* kept until the handler takes it: flow control holds the rest */
    mc_req *req = &st->req;
    if (len > st->body_limit - st->rd.body_total)
      req->body_err = MC_ETOOBIG;
    else if (mc_buf_append(&st->rd.body, data, len) != 0)
      req->body_err = MC_ENOMEM;
    mc_waitq_wake_all(&req->body_wait);
    if (!req->body_err) {
      st->rd.body_total += len;
      st->unconsumed += len;
      return 0;
    }
  }
  nghttp2_session_consume(s, id, len);
  if (!st || st->refused || st->answered || st->req.stream_in)
    return 0;
  if (mc_buf_append(&st->rd.body, data, len) != 0) {
    refuse(st, 413, "request body too large");
    make_ready(st->h2, st);
  }
  return 0;
}

/* An answer sent whole while the request's body still comes (refused
 * early): the rest is not wanted (RFC 9113 §8.1). */
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *fr,
                         void *ud) {
  (void)ud;
  if ((fr->hd.type != NGHTTP2_DATA && fr->hd.type != NGHTTP2_HEADERS) ||
      !(fr->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  stream *st = nghttp2_session_get_stream_user_data(s, fr->hd.stream_id);
  if (st && st->answered &&
      !nghttp2_session_get_stream_remote_close(s, fr->hd.stream_id))
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, fr->hd.stream_id,
                              NGHTTP2_NO_ERROR);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code,
                           void *ud) {
  (void)code;
  mc__h2 *h = ud;
  stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st)
    return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  st->closed = true;
  if (st->unconsumed) /* a body nobody will read: the connection's window */
    nghttp2_session_consume_connection(s, st->unconsumed);
  st->unconsumed = 0;
  if (st->req.stream_in && !st->req.body_done && !st->req.body_err)
    st->req.body_err = MC_ECLOSED;
  mc_waitq_wake_all(&st->req.body_wait);
  mc_waitq_wake_all(&st->room);
  /* still waiting to start: take it off the list */
  for (stream **p = &h->ready, *prev = NULL; *p;
       prev = *p, p = &(*p)->ready_next)
    if (*p == st) {
      *p = st->ready_next;
      if (h->ready_tail == st)
        h->ready_tail = prev;
      break;
    }
  if (st->running)
    mc__fiber_cancel(st->fiber); /* the client gave up on it */
  else
    stream_free(st);
  return 0;
}

/* ---- the connection ----------------------------------------------------- */

int mc__h2_start(mc__conn *c) {
  mc__h2 *h = calloc(1, sizeof *h);
  if (!h)
    return MC_ENOMEM;
  h->c = c;
  mc_buf_init(&h->plain, 0);
  nghttp2_session_callbacks *cbs;
  if (nghttp2_session_callbacks_new(&cbs) != 0) {
    free(h);
    return MC_ENOMEM;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                          on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_option *opt;
  nghttp2_option_new(&opt);
  /* header blocks past this are refused by nghttp2 before we see them */
  nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
  /* bodies read as they come are given back to flow control as the
   * handler takes them; others at once */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = nghttp2_session_server_new2(&h->s, cbs, h, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) {
    free(h);
    return MC_ENOMEM;
  }
  const mc__config *cfg = &c->w->srv->app->cfg;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)cfg->max_head},
  };
  nghttp2_submit_settings(h->s, NGHTTP2_FLAG_NONE, iv, MC_COUNT(iv));
  /* the connection's window, for uploads on many streams at once */
  nghttp2_session_set_local_window_size(h->s, NGHTTP2_FLAG_NONE, 0, 8 << 20);
  c->h2 = h;
  return 0;
}

void mc__h2_free(mc__conn *c) {
  mc__h2 *h = c->h2;
  if (!h)
    return;
  while (h->streams)
    stream_free(h->streams);
  nghttp2_session_del(h->s);
  mc_buf_free(&h->plain);
  free(h);
  c->h2 = NULL;
}

uint32_t mc__h2_running(const mc__conn *c) {
  return c->h2 ? c->h2->running : 0;
}

static void maybe_close(mc__h2 *h) {
  if (!nghttp2_session_want_read(h->s) && !nghttp2_session_want_write(h->s) &&
      !mc__out_pending(h->c) && !mc__tls_busy(h->c))
    mc__conn_abort(h->c);
}

/* Serializes what nghttp2 has to send into the out-queue (through TLS when
 * it is on) and writes it. Past 256 KiB waiting for the socket it stops;
 * mc__h2_drained comes back for the rest. */
static void flush(mc__h2 *h) {
  mc__conn *c = h->c;
  bool more = true;
  while (more && c->state != C_CLOSED) {
    more = false;
    while (c->state != C_CLOSED && mc__out_pending(c) < 256 * 1024) {
      const uint8_t *p;
      ssize_t n = nghttp2_session_mem_send(h->s, &p);
      if (n < 0) {
        mc__conn_abort(c);
        return;
      }
      if (n == 0)
        break;
      more = true;
      /* under TLS, frames are gathered first: one record for many */
      int err = c->tls ? mc_buf_append(&h->plain, p, (size_t)n)
                       : mc__out_append(c, p, (size_t)n);
      if (err) {
        mc__conn_abort(c);
        return;
      }
      if (c->tls && h->plain.len >= 64 * 1024)
        break;
    }
    if (c->state == C_CLOSED)
      return;
    if (h->plain.len) {
      int err = mc__tls_send_raw(c, h->plain.ptr, h->plain.len);
      mc_buf_reset(&h->plain);
      if (err) {
        mc__conn_abort(c);
        return;
      }
    } else {
      mc__out_flush(c);
    }
    /* Stopped by the cap while frames wait: when the socket took it all,
     * no write completion will come back to ask for the rest. */
    more = more && c->state != C_CLOSED && mc__out_pending(c) < 256 * 1024 &&
           nghttp2_session_want_write(h->s);
  }
  if (c->state != C_CLOSED)
    maybe_close(h);
}

void mc__h2_drained(mc__conn *c) {
  flush(c->h2);
}

void mc__h2_feed(mc__conn *c, const char *data, size_t len) {
  mc__h2 *h = c->h2;
  h->in_recv = true;
  ssize_t rv = nghttp2_session_mem_recv(h->s, (const uint8_t *)data, len);
  h->in_recv = false;
  if (rv < 0) {
    /* nghttp2 has queued a GOAWAY saying why; send it and close */
    MC_LOG(MC_LOG_DEBUG, "HTTP/2 protocol error",
           MC_LOG_CSTR("error", nghttp2_strerror((int)rv)));
    flush(h);
    if (c->state != C_CLOSED)
      mc__conn_abort(c);
    return;
  }
  /* Start the requests that are complete, oldest first, each taken off
   * the list only as it starts: starting one runs its handler, which may
   * send frames, and a stream still waiting may be closed (and freed) on
   * the way; on_stream_close takes it off this list. */
  while (h->ready && c->state != C_CLOSED) {
    stream *st = h->ready;
    h->ready = st->ready_next;
    if (!h->ready)
      h->ready_tail = NULL;
    st->ready_next = NULL;
    start(st);
  }
  flush(h);
}

void mc__h2_drain(mc__conn *c) {
  mc__h2 *h = c->h2;
  if (h->goaway)
    return;
  h->goaway = true;
  nghttp2_submit_goaway(h->s, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(h->s),
                        NGHTTP2_NO_ERROR, NULL, 0);
  flush(h);
}

void mc__h2_cancel_all(mc__conn *c) {
  for (stream *st = c->h2->streams; st; st = st->next)
    if (st->running)
      mc__fiber_cancel(st->fiber);
}

bool mc__h2_idle(const mc__conn *c) {
  return c->h2->nstreams == 0;
}
