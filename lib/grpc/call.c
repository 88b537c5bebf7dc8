/* A unary gRPC call over plaintext HTTP/2 (h2c with prior knowledge), one
 * connection per call. See grpc/grpc_int.h.
 *
 * The fiber drives three phases (name lookup, connect, exchange), waiting
 * in each until a loop callback, the timer or a cancel ends the wait,
 * exactly once. During the exchange, nghttp2 is fed what the socket reads
 * and what it wants to send is written; its callbacks only take notes
 * (they may run deep inside nghttp2_session_mem_recv, where resuming the
 * fiber could free the session under nghttp2's feet), and the read and
 * write callbacks decide, once nghttp2 has returned, whether the call is
 * over.
 *
 * Everything libuv holds (handles, requests, the read buffer) lives in the
 * heap object `call`, freed only once libuv has called back for both
 * handles; a name lookup the fiber stopped waiting for frees itself when
 * it ends.
 *
 * Raw exchanges may stream both ways. A request body source is read by a
 * pump fiber of the call's own, into a bounded queue that a deferred data
 * provider takes from, so the answer can come (and be read) while the
 * body still goes out. The answer's body is handed out as the caller reads
 * it and only then given back to the flow-control window, so a slow
 * reader holds the server back. The pump is always joined before the call
 * can be pooled or freed: a call whose owner let go while its pump still
 * runs (an arena freed outside a fiber) is freed by the pump. */
#include <nghttp2/nghttp2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/fiber_int.h"
#include "grpc/framing.h"
#include "grpc/grpc_int.h"
#include "http/stream_int.h"

#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE (4u << 20) /* gRPC's usual receive limit */
#define MAX_HEADER_BYTES (64u << 10)
#define MAX_GRPC_MESSAGE (8u << 10) /* of grpc-message kept; the rest cut */
#define MAX_PENDING_OUT (1u << 20)
#define READ_BUF (32u << 10)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

enum phase { P_LOOKUP, P_CONNECT, P_EXCHANGE };
/* What the fiber waits for in the exchange. */
enum want { W_END, W_HEAD, W_DATA };

typedef struct lookup lookup;
typedef struct call call;

/* A name lookup cannot be stopped once a pool thread runs it, so it owns
 * itself: the call lets go of it (c = NULL) when it stops waiting. */
struct lookup {
  uv_getaddrinfo_t req;
  call *c;
};

struct call {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  uv_write_t wreq;
  int open_handles;
  bool closing;
  /* the fiber's wait */
  mc_fiber *waiter;
  bool waiting;
  int result;
  enum phase phase;
  lookup *looking_up;
  struct sockaddr_storage addr;
  /* HTTP/2 */
  nghttp2_session *h2;
  int32_t stream_id;
  mc_buf out; /* frames handed to libuv, until it has written them */
  bool writing;
  mc_buf body; /* the framed request */
  size_t body_off;
  /* what came back */
  int http_status;
  char content_type[64];
  bool has_content_type, long_content_type;
  int grpc_status; /* -1: none */
  bool bad_grpc_status;
  mc_buf grpc_message; /* raw, percent-encoded */
  size_t header_bytes;
  mc__grpc_reader rd;
  mc_buf reply; /* the first message */
  bool compressed;
  bool remote_done;   /* the server ended its side of the stream */
  bool stream_closed; /* the stream ended */
  uint32_t close_code;
  bool rst_received, rst_sent, goaway_seen;
  bool proto;     /* nghttp2 found the server breaking HTTP/2 */
  int error;      /* a cap, memory, or nghttp2 itself failing: the call ends */
  int read_error; /* the socket read failed or met EOF */
  char why[200];  /* the first account of what went wrong */
  /* raw mode (mc__h2x): headers, trailers and body kept as they come */
  bool raw;
  mc_arena *arena;
  mc_header *hs, *ts;
  size_t nh, nt, caph, capt;
  size_t max_raw;
  /* pooled between raw exchanges (one at a time on a connection) */
  char *pool_key; /* "host:port", while pooled or reusable */
  call *pool_next;
  bool pooled;
  /* streaming raw exchanges */
  enum want want;
  bool stream;    /* the answer's body is read in pieces */
  bool head_done; /* the answer's final head is in */
  mc_buf taken;   /* the piece handed to mc_http_read */
  const mc_body_source *src;
  bool src_eof;
  int src_error; /* the source failed: the stream was reset */
  uint64_t src_sent;
  mc_fiber *pump; /* reads src into body; NULL once it has ended */
  bool pump_parked, pump_stop;
  mc_fiber *joiner; /* waits for the pump to end */
  bool orphaned;    /* nobody will join the pump: it frees the call */
  char rbuf[READ_BUF];
};

static int from_uv(int uverr) {
  switch (uverr) {
  case 0:
    return 0;
  case UV_ECONNREFUSED:
  case UV_ENETUNREACH:
  case UV_EHOSTUNREACH:
  case UV_EADDRNOTAVAIL:
    return MC_ECONNREFUSED;
  case UV_ECONNRESET:
  case UV_EPIPE:
  case UV_ECONNABORTED:
    return MC_ECONNRESET;
  case UV_ETIMEDOUT:
    return MC_ETIMEDOUT;
  case UV_ECANCELED:
    return MC_ECANCELED;
  case UV_ENOMEM:
  case UV_ENOBUFS:
    return MC_ENOMEM;
  case UV_EOF:
    return MC_ECLOSED;
  }
  return MC_EIO;
}

static void set_why(call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(call *c, const char *fmt, ...) {
  if (c->why[0])
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->why, sizeof c->why, fmt, ap);
  va_end(ap);
}

static void set_error(call *c, int err, const char *why) {
  if (!c->error)
    c->error = err;
  set_why(c, "%s", why);
}

/* ---- waiting ------------------------------------------------------------- */

/* Ends the fiber's wait with result, once. From a cancel function the
 * fiber is queued, never resumed on the spot. */
static void finish(call *c, int result, bool queue) {
  if (!c->waiting)
    return;
  c->waiting = false;
  c->result = result;
  if (queue)
    mc__fiber_ready(c->waiter);
  else
    mc__fiber_resume(c->waiter);
}

static void on_timeout(uv_timer_t *t) {
  finish(t->data, MC_ETIMEDOUT, false);
}

static void on_cancel(void *arg) {
  finish(arg, MC_ECANCELED, true);
}

static int call_wait(call *c, uint64_t deadline) {
  /* A fiber canceled while it was not waiting has no wait to end: it must
   * not start one. */
  if (mc_fiber_canceled())
    return MC_ECANCELED;
  uint64_t now = mc_now_ns();
  if (deadline <= now)
    return MC_ETIMEDOUT;
  c->waiting = true;
  c->result = 0;
  c->waiter = mc_fiber_current();
  uv_update_time(c->timer.loop); /* the loop's clock may lag the fiber */
  uv_timer_start(&c->timer, on_timeout, (deadline - now + 999999) / 1000000, 0);
  mc__fiber_wait_begin(on_cancel, c);
  mc__fiber_yield();
  mc__fiber_wait_end();
  uv_timer_stop(&c->timer);
  return c->result;
}

/* ---- the call object ----------------------------------------------------- */

static void call_free(call *c) {
  nghttp2_session_del(c->h2);
  mc_buf_free(&c->taken);
  mc_buf_free(&c->out);
  mc_buf_free(&c->body);
  mc_buf_free(&c->grpc_message);
  mc_buf_free(&c->reply);
  mc__grpc_reader_free(&c->rd);
  free(c->pool_key);
  free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  call *c = h->data;
  if (--c->open_handles > 0 || c->pump)
    return; /* a running pump frees the call when it ends */
  call_free(c);
}

static void lookup_let_go(call *c) {
  if (!c->looking_up)
    return;
  c->looking_up->c = NULL;
  uv_cancel((uv_req_t *)&c->looking_up->req); /* fails if it runs: fine */
  c->looking_up = NULL;
}

static void flush_out(call *c);

/* Frames nghttp2 still holds (a RST_STREAM for a failed body source, say)
 * go out before a close if the socket takes them at once. A write libuv
 * has not called back for may be done already: then the socket takes more
 * directly. */
static void flush_now(call *c) {
  if (!c->h2 || c->error == MC_ENOMEM)
    return;
  if (!c->writing) {
    flush_out(c);
    return;
  }
  const uint8_t *p;
  ssize_t n;
  while ((n = nghttp2_session_mem_send(c->h2, &p)) > 0) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    if (uv_try_write((uv_stream_t *)&c->tcp, &b, 1) != n)
      break;
  }
}

static void call_close(call *c) {
  if (c->closing)
    return;
  if (c->phase == P_EXCHANGE)
    flush_now(c);
  c->closing = true;
  lookup_let_go(c);
  /* A pending connect or write is called back with UV_ECANCELED before
   * the close callbacks run. */
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static call *call_new(uv_loop_t *loop, size_t max_response) {
  call *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (uv_tcp_init(loop, &c->tcp) != 0) {
    free(c);
    return NULL;
  }
  uv_timer_init(loop, &c->timer);
  c->tcp.data = c->timer.data = c->creq.data = c->wreq.data = c;
  c->open_handles = 2;
  c->grpc_status = -1;
  mc_buf_init(&c->out, MAX_PENDING_OUT);
  mc_buf_init(&c->body, 0);
  mc_buf_init(&c->grpc_message, MAX_GRPC_MESSAGE);
  mc_buf_init(&c->reply, 0);
  mc__grpc_reader_init(&c->rd, max_response);
  return c;
}

/* ---- name lookup and connect --------------------------------------------- */

static void on_looked_up(uv_getaddrinfo_t *r, int status,
                         struct addrinfo *res) {
  lookup *op = r->data;
  call *c = op->c;
  if (c) {
    c->looking_up = NULL;
    int err = MC_ENAME;
    if (status == 0 && res && res->ai_addrlen <= sizeof c->addr) {
      memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
      err = 0;
    } else {
      set_why(c, "the name could not be resolved: %s",
              status ? uv_strerror(status) : "no address");
    }
    finish(c, err, false);
  }
  uv_freeaddrinfo(res);
  free(op);
}

static int look_up(call *c, const char *name, int port, uint64_t deadline) {
  /* "localhost" may come back as ::1 first, where few test servers
   * listen; take the IPv4 loopback as the HTTP client does. */
  const char *lit = strcmp(name, "localhost") == 0 ? "127.0.0.1" : name;
  if (uv_ip4_addr(lit, port, (struct sockaddr_in *)&c->addr) == 0 ||
      uv_ip6_addr(lit, port, (struct sockaddr_in6 *)&c->addr) == 0)
    return 0;
  lookup *op = calloc(1, sizeof *op);
  if (!op)
    return MC_ENOMEM;
  op->c = c;
  op->req.data = op;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  if (uv_getaddrinfo(c->tcp.loop, &op->req, on_looked_up, name, portstr,
                     &hints) != 0) {
    free(op);
    set_why(c, "the name lookup could not start");
    return MC_ENAME;
  }
  c->looking_up = op;
  c->phase = P_LOOKUP;
  int err = call_wait(c, deadline);
  lookup_let_go(c);
  return err;
}

static void on_connect(uv_connect_t *r, int status) {
  finish(r->data, from_uv(status), false);
}

static int connect_to(call *c, uint64_t deadline) {
  c->phase = P_CONNECT;
  int err = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&c->addr,
                           on_connect);
  if (err)
    return from_uv(err);
  err = call_wait(c, deadline);
  if (!err)
    uv_tcp_nodelay(&c->tcp, 1);
  return err;
}

/* ---- the exchange: deciding ---------------------------------------------- */

/* Whether the exchange is over, and how. */
static bool decided(call *c, int *result) {
  if (c->error || c->src_error) {
    *result = c->error ? c->error : c->src_error;
    return true;
  }
  if ((c->want == W_HEAD && c->head_done) ||
      (c->want == W_DATA && c->reply.len) || c->remote_done) {
    *result = 0;
    return true;
  }
  if (c->stream_closed) { /* closed without the server's END_STREAM */
    if (c->proto || c->rst_sent) {
      set_why(c, "the answer broke HTTP/2 rules; the client reset the stream");
      *result = MC_EPROTO;
    } else {
      set_why(c, "%s: %s",
              c->rst_received  ? "the server reset the stream"
              : c->goaway_seen ? "the server went away before answering"
                               : "the stream ended early",
              nghttp2_http2_strerror(c->close_code));
      *result = MC_ECONNRESET;
    }
    return true;
  }
  if (c->read_error) {
    *result = c->proto ? MC_EPROTO : c->read_error;
    return true;
  }
  if (c->h2 && !nghttp2_session_want_read(c->h2) &&
      !nghttp2_session_want_write(c->h2)) {
    /* The session is over: GOAWAY went one way or the other. */
    set_why(c, "the HTTP/2 session ended before the answer did");
    *result = c->proto ? MC_EPROTO : MC_ECLOSED;
    return true;
  }
  return false;
}

/* Called last by every loop callback of the exchange: the fiber may run
 * (and close the call) inside it. */
static void settle(call *c) {
  int result;
  if (c->waiting && c->phase == P_EXCHANGE && decided(c, &result))
    finish(c, result, false);
}

/* ---- the exchange: bytes ------------------------------------------------- */

static void on_write(uv_write_t *w, int status);

/* Writes what nghttp2 has queued, one uv_write at a time: the frames
 * serialized meanwhile wait inside nghttp2. Each write takes at most
 * FLUSH_MAX bytes of frames; a body streaming out (a large window) would
 * otherwise be pulled whole into the buffer. */
#define FLUSH_MAX (256u << 10)
static void flush_out(call *c) {
  if (c->writing || c->closing || c->error)
    return;
  while (c->out.len < FLUSH_MAX) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->h2, &p);
    if (n < 0) {
      set_error(c, n == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EPROTO,
                nghttp2_strerror((int)n));
      return;
    }
    if (n == 0)
      break;
    int err = mc_buf_append(&c->out, p, (size_t)n);
    if (err) {
      set_error(c, err, "too much to send");
      return;
    }
  }
  if (!c->out.len)
    return;
  uv_buf_t b = uv_buf_init(c->out.ptr, (unsigned)c->out.len);
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) == 0)
    c->writing = true;
  /* A write that fails leaves the verdict to the read side, which sees
   * the same broken connection and, first, what the peer said before. */
}

static void on_write(uv_write_t *w, int status) {
  call *c = w->data;
  c->writing = false;
  mc_buf_reset(&c->out);
  if (c->closing)
    return;
  if (status == 0)
    flush_out(c);
  settle(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  call *c = h->data;
  buf->base = c->rbuf;
  buf->len = sizeof c->rbuf;
}

static void pool_drop(call *c);

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  call *c = s->data;
  if (c->closing || nread == 0)
    return;
  if (c->pooled) {
    /* idle: PINGs and SETTINGS are answered; anything that ends the
     * session ends the connection */
    ssize_t rv =
        nread > 0 ? nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf->base,
                                             (size_t)nread)
                  : -1;
    if (rv >= 0)
      flush_out(c);
    if (rv < 0 || c->goaway_seen || c->error ||
        !nghttp2_session_want_read(c->h2))
      pool_drop(c);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    c->read_error = from_uv((int)nread);
    set_why(c, "%s",
            nread == UV_EOF ? "the server closed the connection"
                            : uv_strerror((int)nread));
  } else {
    ssize_t rv = nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf->base,
                                          (size_t)nread);
    if (rv < 0) {
      uv_read_stop(s);
      set_error(c, rv == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EPROTO,
                nghttp2_strerror((int)rv));
    } else {
      flush_out(c); /* SETTINGS and PING acks, WINDOW_UPDATEs, GOAWAY */
    }
  }
  settle(c);
}

/* ---- the exchange: nghttp2's callbacks, which only take notes ------ */

static void pump_wake(call *c);

/* The data provider of a body source: what the pump has queued, or a
 * deferral until it queues more. */
static ssize_t read_source(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                           size_t length, uint32_t *flags,
                           nghttp2_data_source *src, void *ud) {
  call *c = src->ptr;
  size_t n = c->body.len - c->body_off;
  if (!n && !c->src_eof)
    return NGHTTP2_ERR_DEFERRED;
  if (n > length)
    n = length;
  memcpy(buf, c->body.ptr + c->body_off, n);
  c->body_off += n;
  if (c->body_off == c->body.len && c->src_eof)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  pump_wake(c);
  return (ssize_t)n;
}

static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  call *c = src->ptr;
  size_t n = c->body.len - c->body_off;
  if (n > length)
    n = length;
  memcpy(buf, c->body.ptr + c->body_off, n);
  c->body_off += n;
  if (c->body_off == c->body.len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static bool grpc_content_type(mc_slice v) {
  mc_slice base = MC_LIT("application/grpc");
  return mc_slice_starts_with(v, base) &&
         (v.len == base.len || v.ptr[base.len] == '+' ||
          v.ptr[base.len] == ';');
}

/* Raw mode: a header or trailer field, copied into the caller's arena. */
static int keep_header(call *c, bool trailer, mc_slice n, mc_slice v) {
  mc_header **list = trailer ? &c->ts : &c->hs;
  size_t *len = trailer ? &c->nt : &c->nh;
  size_t *cap = trailer ? &c->capt : &c->caph;
  if (*len == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    mc_header *nl = mc_arena_alloc(c->arena, ncap * sizeof *nl);
    if (!nl)
      return MC_ENOMEM;
    if (*len)
      memcpy(nl, *list, *len * sizeof *nl);
    *list = nl;
    *cap = ncap;
  }
  char *np = mc_arena_strndup(c->arena, n.ptr, n.len);
  char *vp = mc_arena_strndup(c->arena, v.ptr, v.len);
  if (!np || !vp)
    return MC_ENOMEM;
  (*list)[(*len)++] = (mc_header){{np, n.len}, {vp, v.len}};
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  call *c = ud;
  if (frame->hd.stream_id != c->stream_id)
    return 0;
  /* nghttp2 caps each field; the whole is ours to cap (32 per field, as
   * HPACK counts). */
  c->header_bytes += namelen + valuelen + 32;
  if (c->header_bytes > MAX_HEADER_BYTES) {
    set_error(c, MC_ETOOBIG, "the answer's headers are over 64 KiB");
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  mc_slice n = {(const char *)name, namelen};
  mc_slice v = {(const char *)value, valuelen};
  if (c->raw && namelen && name[0] != ':') {
    bool trailer = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (keep_header(c, trailer, n, v) != 0) {
      set_error(c, MC_ENOMEM, "out of memory");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (!mc_slice_eq(n, MC_LIT("content-type")))
      return 0;
  }
  if (mc_slice_eq(n, MC_LIT(":status"))) {
    int64_t st;
    if (mc_slice_to_i64(v, &st) == 0)
      c->http_status = (int)st;
  } else if (mc_slice_eq(n, MC_LIT("content-type"))) {
    c->has_content_type = true;
    c->long_content_type = valuelen >= sizeof c->content_type;
    size_t k = c->long_content_type ? sizeof c->content_type - 1 : valuelen;
    memcpy(c->content_type, value, k);
    c->content_type[k] = 0;
  } else if (mc_slice_eq(n, MC_LIT("grpc-status"))) {
    c->bad_grpc_status = mc__grpc_status_parse(v, &c->grpc_status) != 0;
  } else if (mc_slice_eq(n, MC_LIT("grpc-message"))) {
    size_t k = valuelen > MAX_GRPC_MESSAGE ? MAX_GRPC_MESSAGE : valuelen;
    mc_buf_reset(&c->grpc_message);
    if (mc_buf_append(&c->grpc_message, value, k) != 0) {
      set_error(c, MC_ENOMEM, "out of memory");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
  }
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                   const uint8_t *data, size_t len, void *ud) {
  call *c = ud;
  /* The window is given back as the data is used (no automatic window
   * updates): at once, unless the caller reads it in pieces. */
  if (stream_id != c->stream_id) {
    nghttp2_session_consume_connection(s, len);
    return 0;
  }
  if (!c->stream)
    nghttp2_session_consume(s, stream_id, len);
  if (c->raw) {
    if (!c->stream && c->reply.len + len > c->max_raw) {
      set_error(c, MC_ETOOBIG, "the answer's body is over the cap");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (mc_buf_append(&c->reply, data, len) != 0) {
      set_error(c, MC_ENOMEM, "out of memory");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  while (len > 0) {
    size_t used;
    mc__grpc_frame_event ev = mc__grpc_reader_feed(&c->rd, data, len, &used);
    data += used;
    len -= used;
    if (ev == MC_GRPC_FRAME_ERROR) {
      int err = c->rd.error;
      set_error(c, err,
                err == MC_ETOOBIG  ? "the answer's message is over the cap"
                : err == MC_ENOMEM ? "out of memory"
                                   : "a message prefix is malformed");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (ev == MC_GRPC_FRAME_MESSAGE) {
      c->compressed |= c->rd.compressed;
      /* A unary answer has one message; more are counted and refused. */
      if (c->rd.nmsgs == 1 &&
          mc_buf_append(&c->reply, c->rd.msg.ptr, c->rd.msg.len) != 0) {
        set_error(c, MC_ENOMEM, "out of memory");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud) {
  call *c = ud;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    if (frame->hd.stream_id == c->stream_id && c->http_status >= 200)
      c->head_done = true;
    /* fall through */
  case NGHTTP2_DATA:
    if (frame->hd.stream_id == c->stream_id &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
      c->remote_done = true;
    break;
  case NGHTTP2_RST_STREAM:
    if (frame->hd.stream_id == c->stream_id)
      c->rst_received = true;
    break;
  case NGHTTP2_GOAWAY:
    c->goaway_seen = true;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
      set_why(c, "the server sent GOAWAY: %s",
              nghttp2_http2_strerror(frame->goaway.error_code));
    break;
  }
  return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud) {
  call *c = ud;
  if (frame->hd.type == NGHTTP2_RST_STREAM &&
      frame->hd.stream_id == c->stream_id)
    c->rst_sent = true;
  /* Some violations (DATA before the response's HEADERS, say) end the
   * session with no callback but this GOAWAY, whose debug data holds
   * nghttp2's reason. */
  if (frame->hd.type == NGHTTP2_GOAWAY &&
      frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    c->proto = true;
    set_why(c, "the server broke HTTP/2: %s (%.*s)",
            nghttp2_http2_strerror(frame->goaway.error_code),
            (int)frame->goaway.opaque_data_len,
            (const char *)frame->goaway.opaque_data);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id,
                           uint32_t error_code, void *ud) {
  call *c = ud;
  if (stream_id == c->stream_id) {
    c->stream_closed = true;
    c->close_code = error_code;
  }
  return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame,
                            int lib_error_code, void *ud) {
  call *c = ud;
  c->proto = true;
  set_why(c, "the server broke HTTP/2: %s", nghttp2_strerror(lib_error_code));
  return 0;
}

/* nghttp2's account of a protocol error, e.g. an HTTP/1.1 answer where the
 * server's SETTINGS should be. */
static int on_error(nghttp2_session *s, int lib_error_code, const char *msg,
                    size_t len, void *ud) {
  call *c = ud;
  c->proto = true;
  set_why(c, "%.*s", (int)len, msg);
  return 0;
}

/* ---- the exchange -------------------------------------------------------- */

static int session_new(call *c) {
  nghttp2_session_callbacks *cbs;
  if (nghttp2_session_callbacks_new(&cbs) != 0)
    return MC_ENOMEM;
  nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, on_invalid_frame);
  nghttp2_session_callbacks_set_error_callback2(cbs, on_error);
  nghttp2_option *opt;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return MC_ENOMEM;
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  int rv = nghttp2_session_client_new2(&c->h2, cbs, c, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0)
    return MC_ENOMEM;
  /* The client preface: nghttp2 sends the magic, then these SETTINGS. */
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
  };
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, COUNT(iv)))
    return MC_ENOMEM;
  return 0;
}

#define NV(name, value, valuelen)                                              \
  {                                                                            \
    (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (valuelen),       \
        NGHTTP2_NV_FLAG_NONE                                                   \
  }

/* ---- the body source's pump ---------------------------------------------- */

#define PUMP_QUEUE_MAX (64u << 10)

static void pump_wake(call *c) {
  if (c->pump_parked &&
      (c->pump_stop || c->body.len - c->body_off < PUMP_QUEUE_MAX)) {
    c->pump_parked = false;
    mc__fiber_ready(c->pump);
  }
}

static void pump_cancel(void *arg) {
  call *c = arg;
  c->pump_stop = true;
  pump_wake(c);
}

/* Reads the body source into c->body (from c->body_off on) for the data
 * provider, waiting while PUMP_QUEUE_MAX bytes are queued. */
static void pump_main(void *arg) {
  call *c = arg;
  while (!c->pump_stop && !mc_fiber_canceled()) {
    if (c->body.len - c->body_off >= PUMP_QUEUE_MAX) {
      c->pump_parked = true;
      mc__fiber_wait_begin(pump_cancel, c);
      mc__fiber_yield();
      mc__fiber_wait_end();
      continue;
    }
    mc_slice piece = {"", 0};
    int err = c->src->read(c->src->ud, &piece);
    if (c->pump_stop || c->closing)
      break;
    uint64_t len = (uint64_t)c->src->length;
    if (!err && c->src->length >= 0 &&
        (piece.len > len - c->src_sent || (!piece.len && c->src_sent != len)))
      err = MC_EINVAL; /* not the length announced */
    c->src_sent += piece.len;
    if (!err && !piece.len) {
      c->src_eof = true;
    } else if (!err) {
      if (c->body_off == c->body.len) {
        mc_buf_reset(&c->body);
        c->body_off = 0;
      } else if (c->body_off >= PUMP_QUEUE_MAX) {
        mc_buf_consume(&c->body, c->body_off);
        c->body_off = 0;
      }
      err = mc_buf_append(&c->body, piece.ptr, piece.len);
    }
    if (err) {
      c->src_error = err;
      set_why(c, "the request body's source failed: %s", mc_strerror(err));
      nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, c->stream_id,
                                NGHTTP2_CANCEL);
    } else {
      nghttp2_session_resume_data(c->h2, c->stream_id);
    }
    flush_out(c);
    settle(c); /* from a fiber: the waiter is queued, not run */
    if (err || c->src_eof)
      break;
  }
  c->pump = NULL;
  if (c->joiner)
    mc__fiber_ready(c->joiner);
  else if (c->orphaned && c->open_handles == 0)
    call_free(c);
}

/* Stops the pump and, from a fiber, waits for it to end; otherwise it
 * frees the call itself once the call is closed. */
static void pump_join(call *c) {
  if (!c->pump)
    return;
  c->pump_stop = true;
  mc__fiber_cancel(c->pump); /* ends its wait, ours or the source's */
  if (!c->pump)
    return;
  mc_fiber *self = mc_fiber_current();
  if (!self || self == c->pump) {
    c->orphaned = true;
    return;
  }
  c->joiner = self;
  /* No cancel function: a canceled caller still waits for the pump, which
   * was canceled itself and ends soon. */
  while (c->pump) {
    mc__fiber_wait_begin(NULL, NULL);
    mc__fiber_yield();
    mc__fiber_wait_end();
  }
  c->joiner = NULL;
}

/* Sends the request (c->body after the headers, when has_body) and waits
 * for the exchange to end. */
static int submit_and_wait(call *c, const nghttp2_nv *nva, size_t n,
                           bool has_body, uint64_t deadline) {
  nghttp2_data_provider body = {
      .source.ptr = c, .read_callback = c->src ? read_source : read_body};
  c->stream_id =
      nghttp2_submit_request(c->h2, NULL, nva, n, has_body ? &body : NULL, c);
  if (c->stream_id < 0)
    return c->stream_id == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EINVAL;
  if (c->src) {
    if (mc__fiber_new(&c->pump, pump_main, c) != 0)
      return MC_ENOMEM;
    mc__fiber_ready(c->pump);
  }
  int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (err && err != UV_EALREADY) /* a pooled connection reads already */
    return from_uv(err);
  flush_out(c);
  int result;
  if (decided(c, &result))
    return result;
  return call_wait(c, deadline);
}

static int exchange(call *c, const mc__grpc_unary_req *req, uint64_t deadline) {
  c->phase = P_EXCHANGE;
  uint8_t prefix[MC_GRPC_PREFIX_LEN];
  mc__grpc_prefix(prefix, false, (uint32_t)req->message.len);
  if (mc_buf_append(&c->body, prefix, sizeof prefix) != 0 ||
      mc_buf_append_slice(&c->body, req->message) != 0)
    return MC_ENOMEM;
  int err = session_new(c);
  if (err)
    return err;

  bool v6 = memchr(req->host.ptr, ':', req->host.len) != NULL;
  char authority[300];
  int alen = snprintf(authority, sizeof authority, "%s%.*s%s:%d", v6 ? "[" : "",
                      MC_SLICE_ARG(req->host), v6 ? "]" : "", req->port);
  uint64_t now = mc_now_ns();
  char timeout[10];
  size_t tlen =
      mc__grpc_timeout_format(deadline > now ? deadline - now : 1, timeout);
  static const char ua[] = "microc-grpc/" MC_VERSION;
  nghttp2_nv nva[] = {
      NV(":method", "POST", 4),
      NV(":scheme", "http", 4),
      NV(":path", req->path.ptr, req->path.len),
      NV(":authority", authority, (size_t)alen),
      NV("content-type", "application/grpc", 16),
      NV("te", "trailers", 8),
      NV("grpc-timeout", timeout, tlen),
      NV("user-agent", ua, sizeof ua - 1),
  };
  return submit_and_wait(c, nva, COUNT(nva), true, deadline);
}

/* The exchange ended with the server's END_STREAM: is it gRPC, and how
 * did the call end? */
static int conclude(call *c, mc__grpc_unary_res *res) {
  if (c->http_status != 200) {
    set_why(c, "HTTP status %d: not a gRPC answer", c->http_status);
    return MC_EPROTO;
  }
  if (c->has_content_type &&
      (c->long_content_type ||
       !grpc_content_type(mc_slice_cstr(c->content_type)))) {
    set_why(c, "content-type %s: not a gRPC answer", c->content_type);
    return MC_EPROTO;
  }
  if (c->grpc_status < 0 || c->bad_grpc_status) {
    set_why(c, "the answer has no valid grpc-status");
    return MC_EPROTO;
  }
  if (c->grpc_status == MC_GRPC_OK) {
    if (!mc__grpc_reader_at_boundary(&c->rd)) {
      set_why(c, "the answer ends inside a message");
      return MC_EPROTO;
    }
    if (c->compressed) {
      set_why(c, "a compressed message, though no compression was offered");
      return MC_EPROTO;
    }
    if (c->rd.nmsgs != 1) {
      set_why(c, "%llu messages in the answer to a unary call",
              (unsigned long long)c->rd.nmsgs);
      return MC_EPROTO;
    }
    mc_buf tmp = res->reply;
    res->reply = c->reply;
    c->reply = tmp;
  }
  res->grpc_status = c->grpc_status;
  return 0;
}

static bool host_ok(mc_slice h) {
  if (h.len == 0 || h.len > 253)
    return false;
  for (size_t i = 0; i < h.len; i++) {
    unsigned char ch = (unsigned char)h.ptr[i];
    if (ch <= 0x20 || ch >= 0x7F || ch == '/' || ch == '[' || ch == ']' ||
        ch == '@')
      return false;
  }
  return true;
}

static void put_text(mc__grpc_unary_res *res, const char *s) {
  if (res->text)
    mc__grpc_text_copy(mc_slice_cstr(s ? s : ""), res->text, res->text_cap);
}

/* When a call must end: its timeout (0: the default) or the fiber's
 * deadline, whichever comes first. */
static uint64_t call_deadline(uint64_t timeout_ms) {
  uint64_t now = mc_now_ns();
  uint64_t deadline =
      now + (timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS) * 1000000u;
  if (deadline < now) /* a timeout too large to add */
    deadline = UINT64_MAX;
  uint64_t fd = mc_deadline();
  if (fd && fd < deadline)
    deadline = fd;
  return deadline;
}

int mc__grpc_unary(const mc__grpc_unary_req *req, mc__grpc_unary_res *res) {
  res->grpc_status = -1;
  mc_buf_init(&res->reply, 0);
  put_text(res, NULL);
  uv_loop_t *loop = mc__sched_loop();
  if (!loop || !mc_fiber_current()) {
    put_text(res, "not called from a fiber");
    return MC_ESTATE;
  }
  if (mc_fiber_canceled()) {
    put_text(res, mc_strerror(MC_ECANCELED));
    return MC_ECANCELED;
  }
  if (!host_ok(req->host) || req->port < 1 || req->port > 65535 ||
      !req->path.len || req->path.ptr[0] != '/' ||
      req->message.len > UINT32_MAX) {
    put_text(res, "bad host, port or path");
    return MC_EINVAL;
  }
  uint64_t deadline = call_deadline(req->timeout_ms);

  call *c = call_new(loop, req->max_response ? req->max_response
                                             : DEFAULT_MAX_RESPONSE);
  if (!c) {
    put_text(res, mc_strerror(MC_ENOMEM));
    return MC_ENOMEM;
  }
  char name[256];
  memcpy(name, req->host.ptr, req->host.len);
  name[req->host.len] = 0;
  int err = look_up(c, name, req->port, deadline);
  if (!err)
    err = connect_to(c, deadline);
  if (!err)
    err = exchange(c, req, deadline);
  if (!err)
    err = conclude(c, res);
  if (err) {
    /* A verdict from the clock or a cancel outranks notes taken before. */
    bool ours = err == MC_ETIMEDOUT || err == MC_ECANCELED;
    put_text(res, c->why[0] && !ours ? c->why : mc_strerror(err));
  } else if (res->text && res->text_cap) {
    mc__grpc_message_decode(mc_buf_slice(&c->grpc_message), res->text,
                            res->text_cap);
  }
  call_close(c);
  return err;
}

/* ---- raw exchanges (mc__h2x) ----------------------------------------------
 */

static bool h2_forbidden(mc_slice n, mc_slice v) {
  static const mc_slice names[] = {
      MC_LIT("connection"),       MC_LIT("keep-alive"),
      MC_LIT("proxy-connection"), MC_LIT("transfer-encoding"),
      MC_LIT("upgrade"),          MC_LIT("host"),
      MC_LIT("content-length")};
  if (mc_slice_in_nocase(n, names, COUNT(names)))
    return true;
  /* TE: only "trailers" may cross in HTTP/2 (RFC 9113 §8.2.2) */
  return mc_slice_eq_nocase(n, MC_LIT("te")) &&
         !mc_slice_eq_nocase(v, MC_LIT("trailers"));
}

static int exchange_raw(call *c, const mc__h2x_req *req, uint64_t deadline) {
  c->phase = P_EXCHANGE;
  if (mc_buf_append_slice(&c->body, req->body) != 0)
    return MC_ENOMEM;
  int err = c->h2 ? 0 : session_new(c);
  if (err)
    return err;
  char authority[300];
  size_t alen = req->authority.len;
  if (!alen || alen >= sizeof authority) {
    bool v6 = memchr(req->host.ptr, ':', req->host.len) != NULL;
    alen = (size_t)snprintf(authority, sizeof authority, "%s%.*s%s:%d",
                            v6 ? "[" : "", MC_SLICE_ARG(req->host),
                            v6 ? "]" : "", req->port);
  } else {
    memcpy(authority, req->authority.ptr, alen);
  }
  nghttp2_nv *nva = mc_arena_alloc(c->arena, (req->nheaders + 5) * sizeof *nva);
  if (!nva)
    return MC_ENOMEM;
  size_t k = 0;
  nva[k++] = (nghttp2_nv){(uint8_t *)":method", (uint8_t *)req->method.ptr, 7,
                          req->method.len, NGHTTP2_NV_FLAG_NONE};
  nva[k++] = (nghttp2_nv){(uint8_t *)":scheme", (uint8_t *)"http", 7, 4,
                          NGHTTP2_NV_FLAG_NONE};
  nva[k++] = (nghttp2_nv){(uint8_t *)":path", (uint8_t *)req->path.ptr, 5,
                          req->path.len, NGHTTP2_NV_FLAG_NONE};
  nva[k++] = (nghttp2_nv){(uint8_t *)":authority", (uint8_t *)authority, 10,
                          alen, NGHTTP2_NV_FLAG_NONE};
  char clen[24];
  if (c->src && c->src->length >= 0) {
    int w = snprintf(clen, sizeof clen, "%lld", (long long)c->src->length);
    nva[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14,
                            (size_t)w, NGHTTP2_NV_FLAG_NONE};
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    mc_slice n = req->headers[i].name, v = req->headers[i].value;
    if (!n.len || n.ptr[0] == ':' || h2_forbidden(n, v))
      continue;
    char *lower = mc_arena_alloc(c->arena, n.len);
    if (!lower)
      return MC_ENOMEM;
    for (size_t j = 0; j < n.len; j++)
      lower[j] =
          n.ptr[j] >= 'A' && n.ptr[j] <= 'Z' ? (char)(n.ptr[j] + 32) : n.ptr[j];
    nva[k++] = (nghttp2_nv){(uint8_t *)lower, (uint8_t *)v.ptr, n.len, v.len,
                            NGHTTP2_NV_FLAG_NONE};
  }
  return submit_and_wait(c, nva, k, req->body.len > 0 || c->src, deadline);
}

/* Connections of raw exchanges are kept, per thread and host:port, for
 * the next exchange: one exchange at a time on each (as the HTTP/1.1 pool
 * does), so a proxy does not open a connection per gRPC call. */
#define POOL_IDLE_MAX 16
#define POOL_IDLE_MS 30000

typedef struct h2pool {
  call *idle;
  size_t nidle;
} h2pool;

static __thread h2pool *H2P;

static void pool_unlink(call *c) {
  if (!H2P)
    return;
  for (call **pp = &H2P->idle; *pp; pp = &(*pp)->pool_next)
    if (*pp == c) {
      *pp = c->pool_next;
      H2P->nidle--;
      break;
    }
  c->pool_next = NULL;
  c->pooled = false;
}

static void pool_drop(call *c) {
  pool_unlink(c);
  call_close(c);
}

static void on_pool_idle(uv_timer_t *t) {
  pool_drop(t->data);
}

static void pool_close(void *arg) {
  h2pool *p = arg;
  while (p->idle)
    pool_drop(p->idle);
  free(p);
  H2P = NULL;
}

static h2pool *pool_get(void) {
  if (H2P)
    return H2P;
  h2pool *p = calloc(1, sizeof *p);
  if (!p || mc__sched_on_close(pool_close, p) != 0) {
    free(p);
    return NULL;
  }
  return H2P = p;
}

static call *pool_take(const char *key) {
  if (!H2P)
    return NULL;
  for (call *c = H2P->idle; c; c = c->pool_next)
    if (!strcmp(c->pool_key, key)) {
      pool_unlink(c);
      uv_timer_stop(&c->timer);
      return c;
    }
  return NULL;
}

/* Back to the pool when the exchange ended cleanly and the session can
 * take another stream; closed otherwise. */
static void pool_release(call *c, int err) {
  h2pool *p = pool_get();
  bool clean = !err && !c->pump && c->remote_done && c->stream_closed &&
               !c->error && !c->src_error && !c->read_error &&
               !c->goaway_seen && !c->proto && !c->writing &&
               nghttp2_session_want_read(c->h2) &&
               nghttp2_session_get_next_stream_id(c->h2) < (1u << 30);
  if (!clean || !p || p->nidle >= POOL_IDLE_MAX) {
    call_close(c);
    return;
  }
  c->pooled = true;
  c->pool_next = p->idle;
  p->idle = c;
  p->nidle++;
  uv_timer_start(&c->timer, on_pool_idle, POOL_IDLE_MS, 0);
}

/* Forgets the last exchange, keeping the connection and its session. */
static void call_reuse(call *c) {
  c->stream_id = 0;
  c->http_status = 0;
  c->has_content_type = c->long_content_type = false;
  c->content_type[0] = 0;
  c->grpc_status = -1;
  c->bad_grpc_status = false;
  mc_buf_reset(&c->grpc_message);
  mc_buf_reset(&c->body);
  c->body_off = 0;
  c->header_bytes = 0;
  mc_buf_reset(&c->reply);
  c->remote_done = c->stream_closed = false;
  c->close_code = 0;
  c->rst_received = c->rst_sent = false;
  c->why[0] = 0;
  c->hs = c->ts = NULL;
  c->nh = c->nt = c->caph = c->capt = 0;
  c->want = W_END;
  c->stream = c->head_done = false;
  c->src = NULL;
  c->src_eof = c->pump_stop = c->pump_parked = false;
  c->src_error = 0;
  c->src_sent = 0;
}

/* ---- streamed answers ---------------------------------------------------- */

typedef struct h2_stream {
  mc__http_stream base;
  call *c;
  uint64_t timeout_ms;
  bool eof; /* the end was handed out */
} h2_stream;

static int h2_stream_read(mc__http_stream *s, mc_http_response *res,
                          mc_slice *chunk) {
  h2_stream *hs = (h2_stream *)s;
  call *c = hs->c;
  if (!mc_fiber_current())
    return MC_ESTATE;
  mc_buf_reset(&c->taken);
  uint64_t deadline = call_deadline(hs->timeout_ms);
  c->want = W_DATA;
  for (;;) {
    if (c->reply.len) {
      mc_buf t = c->taken;
      c->taken = c->reply;
      c->reply = t;
      *chunk = (mc_slice){c->taken.ptr, c->taken.len};
      /* given back to the window only now: the server sends more as the
       * caller reads */
      nghttp2_session_consume(c->h2, c->stream_id, c->taken.len);
      flush_out(c);
      return 0;
    }
    if (c->remote_done && !c->error && !c->src_error) {
      hs->eof = true;
      res->trailers = c->ts;
      res->ntrailers = c->nt;
      return 0;
    }
    int result;
    if (decided(c, &result) && result)
      return result;
    int err = call_wait(c, deadline);
    if (err)
      return err;
  }
}

static void h2_stream_close(mc__http_stream *s) {
  h2_stream *hs = (h2_stream *)s;
  call *c = hs->c;
  pump_join(c);
  c->arena = NULL;
  if (c->pool_key && hs->eof)
    pool_release(c, 0);
  else
    call_close(c); /* freed by the pump if it still runs */
}

/* Gives the caller the stream to read the answer's body from. */
static int stream_start(call *c, const mc__h2x_req *req, mc_arena *a,
                        mc__h2x_res *res) {
  h2_stream *hs = mc_arena_calloc(a, sizeof *hs);
  if (!hs || mc__http_stream_adopt(&hs->base, a) != 0)
    return MC_ENOMEM;
  hs->base.read = h2_stream_read;
  hs->base.close = h2_stream_close;
  hs->c = c;
  hs->timeout_ms = req->timeout_ms;
  res->stream = &hs->base;
  return 0;
}

int mc__h2x(const mc__h2x_req *req, mc_arena *a, mc__h2x_res *res) {
  memset(res, 0, sizeof *res);
  uv_loop_t *loop = mc__sched_loop();
  if (!loop || !mc_fiber_current()) {
    snprintf(res->why, sizeof res->why, "not called from a fiber");
    return MC_ESTATE;
  }
  if (mc_fiber_canceled())
    return MC_ECANCELED;
  if (!host_ok(req->host) || req->port < 1 || req->port > 65535 ||
      !req->path.len || !req->method.len) {
    snprintf(res->why, sizeof res->why, "bad host, port, method or path");
    return MC_EINVAL;
  }
  uint64_t deadline = call_deadline(req->timeout_ms);
  char name[256];
  memcpy(name, req->host.ptr, req->host.len);
  name[req->host.len] = 0;
  char key[280];
  snprintf(key, sizeof key, "%s:%d", name, req->port);
  pool_get();
  call *c = pool_take(key);
  bool reused = c != NULL;
  int err = 0;
  if (reused) {
    call_reuse(c);
  } else {
    if (!(c = call_new(loop, 0)))
      return MC_ENOMEM;
    c->pool_key = strdup(key);
    err = look_up(c, name, req->port, deadline);
    if (!err)
      err = connect_to(c, deadline);
  }
  c->raw = true;
  c->arena = a;
  c->max_raw = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
  c->stream = req->stream;
  c->want = req->stream ? W_HEAD : W_END;
  c->src = req->body_source;
  if (!err)
    err = exchange_raw(c, req, deadline);
  if (!err && req->stream) {
    res->status = c->http_status;
    res->headers = c->hs;
    res->nheaders = c->nh;
    res->body = (mc_slice){"", 0};
    if (!(err = stream_start(c, req, a, res)))
      return 0;
  }
  pump_join(c);
  if (!err) {
    res->status = c->http_status;
    res->headers = c->hs;
    res->nheaders = c->nh;
    res->trailers = c->ts;
    res->ntrailers = c->nt;
    char *body = mc_arena_alloc(a, c->reply.len ? c->reply.len : 1);
    if (!body) {
      err = MC_ENOMEM;
    } else {
      if (c->reply.len)
        memcpy(body, c->reply.ptr, c->reply.len);
      res->body = (mc_slice){body, c->reply.len};
    }
  }
  if (err) {
    bool ours = err == MC_ETIMEDOUT || err == MC_ECANCELED;
    snprintf(res->why, sizeof res->why, "%s",
             c->why[0] && !ours ? c->why : mc_strerror(err));
  }
  c->arena = NULL; /* the caller's, gone after this */
  if (c->pool_key)
    pool_release(c, err);
  else
    call_close(c);
  return err;
}
