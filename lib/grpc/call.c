/* Outbound HTTP/2 over plaintext (h2c with prior knowledge): the unary
 * gRPC call of the health client and the raw exchanges of mc_call_service
 * with .h2. See grpc/grpc_int.h.
 *
 * Two objects: a connection (h2conn: the socket, the nghttp2 session, the
 * bytes going out) and an exchange on it (h2stream: one HTTP/2 stream,
 * the fiber waiting for it, what came back). Raw exchanges share their
 * connections: per thread and host:port, a new exchange takes a live
 * connection with room for one more stream, or opens one, so many calls
 * to an instance run at once on one connection, as gRPC clients do. The
 * unary gRPC call opens a connection of its own and closes it after.
 *
 * The connection does its name lookup and connect by itself; exchanges
 * submitted meanwhile wait in nghttp2 and go out once it is up. Loop
 * callbacks and nghttp2's callbacks only take notes on the stream they
 * concern (found by its id among the connection's exchanges) and wake its
 * fiber, which runs later from the loop: so nothing is freed under
 * nghttp2's feet, and one read can answer many exchanges. What ends the
 * connection (a read error, EOF, a broken session, GOAWAY once its streams
 * are done) ends every exchange still on it, which lets go of the
 * connection at once; a stream the server never processed (never sent,
 * refused, or past a GOAWAY's last stream) ends with MC_ECONNREFUSED,
 * safe to try again. An exchange that times out or is canceled resets its
 * stream only.
 *
 * Memory: a connection is freed once libuv has called back for its two
 * handles (exchanges never hold it past its close); an exchange belongs
 * to the fiber that made it, or to its streamed answer until
 * mc_http_close.
 *
 * Raw exchanges may stream both ways. A request body source is read by a
 * pump fiber of the exchange's own, into a bounded queue that a deferred
 * data provider takes from, so the answer can come (and be read) while
 * the body still goes out. The answer's body is handed out as the caller
 * reads it and only then given back to the stream's flow-control window,
 * so a slow reader holds the server back on that stream only (the
 * connection's window is large, and what an exchange leaves unread is
 * given back when it ends). The pump is always joined before the
 * exchange is freed: one whose owner let go while the pump still runs (an
 * arena freed outside a fiber) is freed by the pump. */
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
/* Streams on one connection at most, whatever the server allows. */
#define MAX_STREAMS_PER_CONN 100
/* The connection's receive window: every stream's window (64 KiB) may be
 * held by a slow reader at once without stalling the others. */
#define CONN_WINDOW (16 << 20)
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* What the fiber waits for in the exchange. */
enum want { W_END, W_HEAD, W_DATA };

typedef struct lookup lookup;
typedef struct h2conn h2conn;
typedef struct h2stream h2stream;

/* A name lookup cannot be stopped once a pool thread runs it, so it owns
 * itself: the connection lets go of it (c = NULL) when it closes. */
struct lookup {
  uv_getaddrinfo_t req;
  h2conn *c;
};

struct h2conn {
  uv_tcp_t tcp;
  uv_timer_t idle; /* closes a pooled connection left without streams */
  uv_connect_t creq;
  uv_write_t wreq;
  int open_handles;
  bool closing;
  bool connected; /* frames may be written */
  bool failed;    /* its exchanges were ended; it takes no more */
  lookup *looking_up;
  struct sockaddr_storage addr;
  nghttp2_session *h2;
  mc_buf out; /* frames handed to libuv, until it has written them */
  bool writing;
  h2stream *streams; /* the exchanges on it */
  size_t nstreams;
  bool goaway_seen;
  int32_t goaway_last; /* the last stream the server will process */
  bool settings_seen;  /* the server's SETTINGS are in */
  bool suspect;        /* an exchange timed out, and nothing came meanwhile */
  uint64_t last_read_ns;
  uint32_t assumed_max; /* concurrent streams allowed until then */
  bool proto;           /* nghttp2 found the server breaking HTTP/2 */
  char why[200];        /* the first account of what went wrong */
  /* pooled (raw exchanges); NULL key: a connection of one call */
  char *key; /* "host:port" */
  h2conn *pool_next;
  bool in_pool;
  char rbuf[READ_BUF];
};

struct h2stream {
  h2conn *conn; /* NULL once it let go (or was let go) of it */
  h2stream *prev, *next;
  int32_t id;
  uint64_t since_ns; /* its wait began (see note_timeout) */
  mc_waitq wq;       /* the exchange's fiber, waiting for news */
  bool headers_sent; /* the request's HEADERS were serialized */
  int conn_error;    /* its connection ended before it did */
  mc_buf body;       /* the request body, or the pump's queue */
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
  mc_buf reply; /* the first message (raw: the body, or its next piece) */
  bool compressed;
  bool remote_done;   /* the server ended its side of the stream */
  bool stream_closed; /* the stream ended */
  bool reset_sent;    /* RST_STREAM submitted (see stream_reset) */
  uint32_t close_code;
  bool rst_received, rst_sent;
  bool proto;    /* the server broke HTTP/2 on this stream */
  int error;     /* a cap or memory: the exchange ends */
  char why[200]; /* the first account of what went wrong */
  /* raw mode (mc__h2x): headers, trailers and body kept as they come */
  bool raw;
  mc_arena *arena;
  mc_header *hs, *ts;
  size_t nh, nt, caph, capt;
  size_t max_raw;
  /* streaming raw exchanges */
  enum want want;
  bool stream;       /* the answer's body is read in pieces */
  bool head_done;    /* the answer's final head is in */
  size_t unconsumed; /* received, not yet given back to flow control */
  mc_buf taken;      /* the piece handed to mc_http_read */
  const mc_body_source *src;
  bool src_eof;
  int src_error; /* the source failed: the stream was reset */
  uint64_t src_sent;
  mc__helper pump; /* reads src into body; orphaned, it frees st */
  bool pump_parked, pump_stop;
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

static void vset(char *why, size_t cap, const char *fmt, va_list ap) {
  if (!why[0])
    vsnprintf(why, cap, fmt, ap);
}

static void set_why(h2stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_why(h2stream *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(st->why, sizeof st->why, fmt, ap);
  va_end(ap);
}

static void conn_why(h2conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_why(h2conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vset(c->why, sizeof c->why, fmt, ap);
  va_end(ap);
}

static void set_error(h2stream *st, int err, const char *why) {
  if (!st->error)
    st->error = err;
  set_why(st, "%s", why);
}

/* Something happened to st: its fiber, if waiting, runs soon (queued,
 * never on the spot). */
static void wake(h2stream *st) {
  mc_waitq_wake_all(&st->wq);
}

/* ---- the exchange object ------------------------------------------------- */

static h2stream *stream_new(size_t max_response) {
  h2stream *st = calloc(1, sizeof *st);
  if (!st)
    return NULL;
  st->grpc_status = -1;
  mc_buf_init(&st->body, 0);
  mc_buf_init(&st->grpc_message, MAX_GRPC_MESSAGE);
  mc_buf_init(&st->reply, 0);
  mc__grpc_reader_init(&st->rd, max_response);
  return st;
}

static void stream_free(h2stream *st) {
  mc_buf_free(&st->taken);
  mc_buf_free(&st->body);
  mc_buf_free(&st->grpc_message);
  mc_buf_free(&st->reply);
  mc__grpc_reader_free(&st->rd);
  free(st);
}

static void stream_link(h2stream *st, h2conn *c) {
  st->conn = c;
  st->prev = NULL;
  st->next = c->streams;
  if (c->streams)
    c->streams->prev = st;
  c->streams = st;
  c->nstreams++;
}

static void stream_unlink(h2stream *st) {
  h2conn *c = st->conn;
  if (st->prev)
    st->prev->next = st->next;
  else
    c->streams = st->next;
  if (st->next)
    st->next->prev = st->prev;
  st->prev = st->next = NULL;
  c->nstreams--;
  st->conn = NULL;
}

/* Waits until woken, deadline or cancel. */
static int stream_wait(h2stream *st, uint64_t deadline) {
  uint64_t now = mc_now_ns();
  if (deadline <= now)
    return MC_ETIMEDOUT;
  uint64_t ms = (deadline - now + 999999) / 1000000;
  return mc_waitq_wait(&st->wq, ms);
}

/* ---- the connection ------------------------------------------------------ */

static void pool_unlink(h2conn *c);

static void conn_free(h2conn *c) {
  nghttp2_session_del(c->h2);
  mc_buf_free(&c->out);
  free(c->key);
  free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  h2conn *c = h->data;
  if (--c->open_handles == 0)
    conn_free(c);
}

static void lookup_let_go(h2conn *c) {
  if (!c->looking_up)
    return;
  c->looking_up->c = NULL;
  uv_cancel((uv_req_t *)&c->looking_up->req); /* fails if it runs: fine */
  c->looking_up = NULL;
}

static void flush_out(h2conn *c);
static void conn_fail(h2conn *c, int err);

/* Frames nghttp2 still holds (RST_STREAMs, say) go out before a close if
 * the socket takes them at once. A write libuv has not called back for
 * may be done already: then the socket takes more directly. */
static void flush_now(h2conn *c) {
  if (!c->connected || c->closing)
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

/* Closes the connection, which must have no exchanges left (conn_fail
 * ends them first). Its memory goes once libuv lets go of the handles. */
static void conn_close(h2conn *c) {
  if (c->closing)
    return;
  if (!c->failed)
    flush_now(c);
  if (c->closing) /* the flush failed it, and closed it */
    return;
  c->closing = true;
  c->failed = true;
  pool_unlink(c);
  lookup_let_go(c);
  /* A pending connect or write is called back with UV_ECANCELED before
   * the close callbacks run. */
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

/* How an exchange still on a connection that ended with err ends. */
static int conn_err_for(h2conn *c, h2stream *st, int err) {
  if (!c->connected)
    return err; /* the lookup's or the connect's verdict */
  if (err == MC_ENOMEM || err == MC_EPROTO || err == MC_ECANCELED)
    return err;
  /* never processed: safe to send again, even if not idempotent */
  if (!st->headers_sent || st->id <= 0 ||
      (c->goaway_seen && st->id > c->goaway_last))
    return MC_ECONNREFUSED;
  return err;
}

/* The connection is over: every exchange on it ends with err (or, never
 * processed, MC_ECONNREFUSED) and lets go of it, and it closes. */
static void conn_fail(h2conn *c, int err) {
  if (c->failed)
    return;
  c->failed = true;
  while (c->streams) {
    h2stream *st = c->streams;
    st->conn_error = conn_err_for(c, st, err);
    st->proto |= c->proto;
    if (st->conn_error == MC_ECONNREFUSED && c->connected)
      set_why(st, "%s",
              c->goaway_seen && st->id > c->goaway_last
                  ? "the server went away before processing the request"
                  : "the connection ended before the request went out");
    if (c->why[0])
      set_why(st, "%s", c->why);
    else
      set_why(st, "%s", mc_strerror(err));
    stream_unlink(st);
    wake(st);
  }
  flush_now(c); /* a GOAWAY nghttp2 sent, say */
  conn_close(c);
}

/* Whether a new exchange may go on c. */
static bool conn_has_room(h2conn *c) {
  if (c->failed || c->closing || c->goaway_seen || c->proto || c->suspect)
    return false;
  if (nghttp2_session_get_next_stream_id(c->h2) >= (1u << 30))
    return false;
  uint32_t max = c->settings_seen
                     ? nghttp2_session_get_remote_settings(
                           c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                     : c->assumed_max;
  if (max > MAX_STREAMS_PER_CONN)
    max = MAX_STREAMS_PER_CONN;
  return c->nstreams < max;
}

static void conn_idle_check(h2conn *c);

/* After reads and writes: whether the session, or the connection, is
 * over. */
static void conn_check(h2conn *c) {
  if (c->failed)
    return;
  if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2)) {
    /* GOAWAY went one way or the other, and nothing is left to do */
    conn_why(c, "the HTTP/2 session ended before the answer did");
    conn_fail(c, c->proto ? MC_EPROTO : MC_ECLOSED);
    return;
  }
  conn_idle_check(c);
}

/* ---- bytes ------------------------------------------------------------- */

static void on_write(uv_write_t *w, int status);

/* Writes what nghttp2 has queued, one uv_write at a time for all the
 * connection's streams: the frames serialized meanwhile wait inside
 * nghttp2. Each write takes at most FLUSH_MAX bytes of frames; a body
 * streaming out (a large window) would otherwise be pulled whole into the
 * buffer. */
#define FLUSH_MAX (256u << 10)
static void flush_out(h2conn *c) {
  if (c->writing || c->closing || !c->connected)
    return;
  while (c->out.len < FLUSH_MAX) {
    const uint8_t *p;
    ssize_t n = nghttp2_session_mem_send(c->h2, &p);
    if (n < 0) {
      conn_why(c, "%s", nghttp2_strerror((int)n));
      conn_fail(c, n == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EPROTO);
      return;
    }
    if (n == 0)
      break;
    int err = mc_buf_append(&c->out, p, (size_t)n);
    if (err) {
      conn_why(c, "too much to send");
      conn_fail(c, err);
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
  h2conn *c = w->data;
  c->writing = false;
  mc_buf_reset(&c->out);
  if (c->closing)
    return;
  if (status == 0)
    flush_out(c);
  conn_check(c);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  h2conn *c = h->data;
  buf->base = c->rbuf;
  buf->len = sizeof c->rbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  h2conn *c = s->data;
  if (c->closing || nread == 0)
    return;
  if (nread < 0) {
    uv_read_stop(s);
    conn_why(c, "%s",
             nread == UV_EOF ? "the server closed the connection"
                             : uv_strerror((int)nread));
    conn_fail(c, c->proto ? MC_EPROTO : from_uv((int)nread));
    return;
  }
  c->last_read_ns = mc_now_ns();
  ssize_t rv = nghttp2_session_mem_recv(c->h2, (const uint8_t *)buf->base,
                                        (size_t)nread);
  if (rv < 0) {
    uv_read_stop(s);
    conn_why(c, "%s", nghttp2_strerror((int)rv));
    conn_fail(c, rv == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EPROTO);
    return;
  }
  flush_out(c); /* SETTINGS and PING acks, WINDOW_UPDATEs, RST_STREAMs */
  conn_check(c);
}

/* ---- name lookup and connect --------------------------------------------- */

static void on_connect(uv_connect_t *r, int status) {
  h2conn *c = r->data;
  if (c->closing)
    return;
  if (status) {
    conn_fail(c, from_uv(status));
    return;
  }
  c->connected = true;
  uv_tcp_nodelay(&c->tcp, 1);
  int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (err) {
    conn_why(c, "%s", uv_strerror(err));
    conn_fail(c, from_uv(err));
    return;
  }
  flush_out(c); /* the preface, and the requests submitted meanwhile */
  conn_check(c);
}

static void conn_connect(h2conn *c) {
  int err = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&c->addr,
                           on_connect);
  if (err) {
    conn_fail(c, from_uv(err));
  }
}

static void on_looked_up(uv_getaddrinfo_t *r, int status,
                         struct addrinfo *res) {
  lookup *op = r->data;
  h2conn *c = op->c;
  if (c) {
    c->looking_up = NULL;
    if (status == 0 && res && res->ai_addrlen <= sizeof c->addr) {
      memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
      conn_connect(c);
    } else {
      conn_why(c, "the name could not be resolved: %s",
               status ? uv_strerror(status) : "no address");
      conn_fail(c, MC_ENAME);
    }
  }
  uv_freeaddrinfo(res);
  free(op);
}

/* Starts the lookup and connect of name:port; their failure fails the
 * connection's exchanges. */
static void conn_start(h2conn *c, const char *name, int port) {
  /* "localhost" may come back as ::1 first, where few test servers
   * listen; take the IPv4 loopback as the HTTP client does. */
  const char *lit = strcmp(name, "localhost") == 0 ? "127.0.0.1" : name;
  if (uv_ip4_addr(lit, port, (struct sockaddr_in *)&c->addr) == 0 ||
      uv_ip6_addr(lit, port, (struct sockaddr_in6 *)&c->addr) == 0) {
    conn_connect(c);
    return;
  }
  lookup *op = calloc(1, sizeof *op);
  if (!op) {
    conn_fail(c, MC_ENOMEM);
    return;
  }
  op->c = c;
  op->req.data = op;
  char portstr[8];
  snprintf(portstr, sizeof portstr, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  if (uv_getaddrinfo(c->tcp.loop, &op->req, on_looked_up, name, portstr,
                     &hints) != 0) {
    free(op);
    conn_why(c, "the name lookup could not start");
    conn_fail(c, MC_ENAME);
    return;
  }
  c->looking_up = op;
}

/* ---- nghttp2's callbacks, which only take notes -------------------------- */

/* The exchange on stream id of the connection ud, or NULL for one that
 * let go of it. Not nghttp2's stream user data: a request still queued
 * when its exchange ends is opened and closed later by nghttp2, with the
 * user data it was submitted with. */
static h2stream *stream_of(void *ud, int32_t id) {
  h2conn *c = ud;
  if (id <= 0)
    return NULL;
  for (h2stream *st = c->streams; st; st = st->next)
    if (st->id == id)
      return st;
  return NULL;
}

static void pump_wake(h2stream *st);

/* The data provider: the body given whole, or what a body source's pump
 * has queued, with a deferral until it queues more. An exchange that let
 * go of its stream (being reset) gives nothing more. */
static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *ud) {
  h2stream *st = stream_of(ud, stream_id);
  if (!st)
    return NGHTTP2_ERR_DEFERRED;
  bool all_queued = !st->src || st->src_eof;
  size_t n = st->body.len - st->body_off;
  if (!n && !all_queued)
    return NGHTTP2_ERR_DEFERRED;
  if (n > length)
    n = length;
  if (n)
    memcpy(buf, st->body.ptr + st->body_off, n);
  st->body_off += n;
  if (st->body_off == st->body.len && all_queued)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  if (st->src)
    pump_wake(st);
  return (ssize_t)n;
}

static bool grpc_content_type(mc_slice v) {
  mc_slice base = MC_LIT("application/grpc");
  return mc_slice_starts_with(v, base) &&
         (v.len == base.len || v.ptr[base.len] == '+' ||
          v.ptr[base.len] == ';');
}

/* Raw mode: a header or trailer field, copied into the caller's arena. */
static int keep_header(h2stream *st, bool trailer, mc_slice n, mc_slice v) {
  mc_header **list = trailer ? &st->ts : &st->hs;
  size_t *len = trailer ? &st->nt : &st->nh;
  size_t *cap = trailer ? &st->capt : &st->caph;
  if (*len == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    mc_header *nl = mc_arena_alloc(st->arena, ncap * sizeof *nl);
    if (!nl)
      return MC_ENOMEM;
    if (*len)
      memcpy(nl, *list, *len * sizeof *nl);
    *list = nl;
    *cap = ncap;
  }
  char *np = mc_arena_strndup(st->arena, n.ptr, n.len);
  char *vp = mc_arena_strndup(st->arena, v.ptr, v.len);
  if (!np || !vp)
    return MC_ENOMEM;
  (*list)[(*len)++] = (mc_header){{np, n.len}, {vp, v.len}};
  return 0;
}

/* A failure of one exchange resets its stream only (INTERNAL_ERROR). */
static int header_fail(h2stream *st, int err, const char *why) {
  set_error(st, err, why);
  wake(st);
  return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  h2stream *st = stream_of(ud, frame->hd.stream_id);
  if (!st || st->error)
    return 0;
  /* nghttp2 caps each field; the whole is ours to cap (32 per field, as
   * HPACK counts). */
  st->header_bytes += namelen + valuelen + 32;
  if (st->header_bytes > MAX_HEADER_BYTES)
    return header_fail(st, MC_ETOOBIG, "the answer's headers are over 64 KiB");
  mc_slice n = {(const char *)name, namelen};
  mc_slice v = {(const char *)value, valuelen};
  if (st->raw && namelen && name[0] != ':') {
    bool trailer = frame->headers.cat == NGHTTP2_HCAT_HEADERS;
    if (keep_header(st, trailer, n, v) != 0)
      return header_fail(st, MC_ENOMEM, "out of memory");
    if (!mc_slice_eq(n, MC_LIT("content-type")))
      return 0;
  }
  if (mc_slice_eq(n, MC_LIT(":status"))) {
    int64_t code;
    if (mc_slice_to_i64(v, &code) == 0)
      st->http_status = (int)code;
  } else if (mc_slice_eq(n, MC_LIT("content-type"))) {
    st->has_content_type = true;
    st->long_content_type = valuelen >= sizeof st->content_type;
    size_t k = st->long_content_type ? sizeof st->content_type - 1 : valuelen;
    memcpy(st->content_type, value, k);
    st->content_type[k] = 0;
  } else if (mc_slice_eq(n, MC_LIT("grpc-status"))) {
    st->bad_grpc_status = mc__grpc_status_parse(v, &st->grpc_status) != 0;
  } else if (mc_slice_eq(n, MC_LIT("grpc-message"))) {
    size_t k = valuelen > MAX_GRPC_MESSAGE ? MAX_GRPC_MESSAGE : valuelen;
    mc_buf_reset(&st->grpc_message);
    if (mc_buf_append(&st->grpc_message, value, k) != 0)
      return header_fail(st, MC_ENOMEM, "out of memory");
  }
  return 0;
}

/* Resets st's stream with CANCEL, once: the source's pump, a refused
 * piece of data and the end of the exchange may each want to, and a
 * stream is reset only once (RFC 9113 §5.4.2: nothing after RST_STREAM). */
static void stream_reset(nghttp2_session *s, h2stream *st) {
  if (st->reset_sent || st->stream_closed || st->id <= 0)
    return;
  st->reset_sent = true;
  nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
}

/* Data an exchange will not take: reset its stream, and give the
 * connection's window back at once. */
static int data_fail(nghttp2_session *s, h2stream *st, int err,
                     const char *why) {
  set_error(st, err, why);
  stream_reset(s, st);
  wake(st);
  return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t stream_id,
                   const uint8_t *data, size_t len, void *ud) {
  h2stream *st = stream_of(ud, stream_id);
  /* The window is given back as the data is used (no automatic window
   * updates): at once, unless the caller reads it in pieces. Data nobody
   * takes (a stream let go of, or failed) is given back at once too, or
   * the connection's window would shrink for good. */
  if (!st || st->error) {
    nghttp2_session_consume(s, stream_id, len);
    return 0;
  }
  if (st->stream)
    st->unconsumed += len;
  else
    nghttp2_session_consume(s, stream_id, len);
  wake(st);
  if (st->raw) {
    if (!st->stream && st->reply.len + len > st->max_raw) {
      data_fail(s, st, MC_ETOOBIG, "the answer's body is over the cap");
      return 0;
    }
    if (mc_buf_append(&st->reply, data, len) != 0)
      data_fail(s, st, MC_ENOMEM, "out of memory");
    return 0;
  }
  while (len > 0) {
    size_t used;
    mc__grpc_frame_event ev = mc__grpc_reader_feed(&st->rd, data, len, &used);
    data += used;
    len -= used;
    if (ev == MC_GRPC_FRAME_ERROR) {
      int err = st->rd.error;
      return data_fail(s, st, err,
                       err == MC_ETOOBIG
                           ? "the answer's message is over the cap"
                       : err == MC_ENOMEM ? "out of memory"
                                          : "a message prefix is malformed");
    }
    if (ev == MC_GRPC_FRAME_MESSAGE) {
      st->compressed |= st->rd.compressed;
      /* A unary answer has one message; more are counted and refused. */
      if (st->rd.nmsgs == 1 &&
          mc_buf_append(&st->reply, st->rd.msg.ptr, st->rd.msg.len) != 0)
        return data_fail(s, st, MC_ENOMEM, "out of memory");
    }
  }
  return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud) {
  h2conn *c = ud;
  if (frame->hd.type == NGHTTP2_SETTINGS &&
      !(frame->hd.flags & NGHTTP2_FLAG_ACK))
    c->settings_seen = true;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c->goaway_seen = true;
    c->goaway_last = frame->goaway.last_stream_id;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR)
      conn_why(c, "the server sent GOAWAY: %s",
               nghttp2_http2_strerror(frame->goaway.error_code));
    return 0;
  }
  h2stream *st = stream_of(ud, frame->hd.stream_id);
  if (!st)
    return 0;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    if (st->http_status >= 200)
      st->head_done = true;
    /* fall through */
  case NGHTTP2_DATA:
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
      st->remote_done = true;
    break;
  case NGHTTP2_RST_STREAM:
    st->rst_received = true;
    break;
  }
  wake(st);
  return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud) {
  h2conn *c = ud;
  h2stream *st = stream_of(ud, frame->hd.stream_id);
  if (st && frame->hd.type == NGHTTP2_HEADERS)
    st->headers_sent = true;
  if (st && frame->hd.type == NGHTTP2_RST_STREAM)
    st->rst_sent = true;
  /* Some violations (DATA before the response's HEADERS, say) end the
   * session with no callback but this GOAWAY, whose debug data holds
   * nghttp2's reason. */
  if (frame->hd.type == NGHTTP2_GOAWAY &&
      frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    c->proto = true;
    conn_why(c, "the server broke HTTP/2: %s (%.*s)",
             nghttp2_http2_strerror(frame->goaway.error_code),
             (int)frame->goaway.opaque_data_len,
             (const char *)frame->goaway.opaque_data);
  }
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t stream_id,
                           uint32_t error_code, void *ud) {
  h2stream *st = stream_of(ud, stream_id);
  if (st) {
    st->stream_closed = true;
    st->close_code = error_code;
    wake(st);
  }
  return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame,
                            int lib_error_code, void *ud) {
  h2stream *st = stream_of(ud, frame->hd.stream_id);
  if (st) {
    st->proto = true;
    set_why(st, "the server broke HTTP/2: %s",
            nghttp2_strerror(lib_error_code));
    wake(st);
    return 0;
  }
  h2conn *c = ud;
  c->proto = true;
  conn_why(c, "the server broke HTTP/2: %s", nghttp2_strerror(lib_error_code));
  return 0;
}

/* nghttp2's account of a protocol error, e.g. an HTTP/1.1 answer where the
 * server's SETTINGS should be. */
static int on_error(nghttp2_session *s, int lib_error_code, const char *msg,
                    size_t len, void *ud) {
  h2conn *c = ud;
  c->proto = true;
  conn_why(c, "%.*s", (int)len, msg);
  return 0;
}

static int session_new(h2conn *c) {
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
  /* The client preface: nghttp2 sends the magic, then these SETTINGS and
   * the connection's larger window. */
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
  };
  if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, COUNT(iv)) ||
      nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0,
                                            CONN_WINDOW))
    return MC_ENOMEM;
  return 0;
}

/* A new connection, not yet started (see conn_start); key NULL: not
 * pooled. */
static h2conn *conn_new(uv_loop_t *loop, const char *key) {
  h2conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (key && !(c->key = strdup(key))) {
    free(c);
    return NULL;
  }
  if (session_new(c) != 0 || uv_tcp_init(loop, &c->tcp) != 0) {
    nghttp2_session_del(c->h2);
    free(c->key);
    free(c);
    return NULL;
  }
  uv_timer_init(loop, &c->idle);
  c->tcp.data = c->idle.data = c->creq.data = c->wreq.data = c;
  c->open_handles = 2;
  c->assumed_max = MAX_STREAMS_PER_CONN;
  mc_buf_init(&c->out, MAX_PENDING_OUT);
  return c;
}

#define NV(name, value, valuelen)                                              \
  {                                                                            \
    (uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (valuelen),       \
        NGHTTP2_NV_FLAG_NONE                                                   \
  }

/* ---- the body source's pump ---------------------------------------------- */

#define PUMP_QUEUE_MAX (64u << 10)

static void pump_wake(h2stream *st) {
  if (st->pump_parked &&
      (st->pump_stop || st->body.len - st->body_off < PUMP_QUEUE_MAX)) {
    st->pump_parked = false;
    mc__fiber_ready(st->pump.fiber);
  }
}

static void pump_cancel(void *arg) {
  h2stream *st = arg;
  st->pump_stop = true;
  pump_wake(st);
}

/* Reads the body source into st->body (from st->body_off on) for the data
 * provider, waiting while PUMP_QUEUE_MAX bytes are queued. */
static void pump_main(void *arg) {
  h2stream *st = arg;
  while (!st->pump_stop && !mc_fiber_canceled() && st->conn) {
    if (st->body.len - st->body_off >= PUMP_QUEUE_MAX) {
      st->pump_parked = true;
      mc__fiber_wait_begin(pump_cancel, st);
      mc__fiber_yield();
      mc__fiber_wait_end();
      continue;
    }
    mc_slice piece = {"", 0};
    int err = st->src->read(st->src->ud, &piece);
    if (st->pump_stop || !st->conn)
      break;
    uint64_t len = (uint64_t)st->src->length;
    if (!err && st->src->length >= 0 &&
        (piece.len > len - st->src_sent || (!piece.len && st->src_sent != len)))
      err = MC_EINVAL; /* not the length announced */
    st->src_sent += piece.len;
    if (!err && !piece.len) {
      st->src_eof = true;
    } else if (!err) {
      if (st->body_off == st->body.len) {
        mc_buf_reset(&st->body);
        st->body_off = 0;
      } else if (st->body_off >= PUMP_QUEUE_MAX) {
        mc_buf_consume(&st->body, st->body_off);
        st->body_off = 0;
      }
      err = mc_buf_append(&st->body, piece.ptr, piece.len);
    }
    h2conn *c = st->conn;
    if (err) {
      st->src_error = err;
      set_why(st, "the request body's source failed: %s", mc_strerror(err));
      stream_reset(c->h2, st);
    } else {
      nghttp2_session_resume_data(c->h2, st->id);
    }
    flush_out(c);
    wake(st);
    if (err || st->src_eof)
      break;
  }
  if (mc__helper_end(&st->pump))
    stream_free(st);
}

/* Stops the pump and, from a fiber, waits for it to end; otherwise the
 * pump frees the exchange itself when it ends (returns true: st is no
 * longer the caller's). */
static bool pump_join(h2stream *st) {
  st->pump_stop = true;
  return mc__helper_join(&st->pump);
}

/* ---- the exchange -------------------------------------------------------- */

/* Whether the exchange is over, and how. */
static bool decided(h2stream *st, int *result) {
  if (st->error || st->src_error) {
    *result = st->error ? st->error : st->src_error;
    return true;
  }
  if ((st->want == W_HEAD && st->head_done) ||
      (st->want == W_DATA && st->reply.len) || st->remote_done) {
    *result = 0;
    return true;
  }
  if (st->stream_closed) { /* closed without the server's END_STREAM */
    if (st->proto || st->rst_sent) {
      set_why(st, "the answer broke HTTP/2 rules; the client reset the stream");
      *result = MC_EPROTO;
    } else {
      bool gone = st->close_code == NGHTTP2_REFUSED_STREAM && !st->rst_received;
      set_why(st, "%s: %s",
              st->rst_received ? "the server reset the stream"
              : gone           ? "the server went away before answering"
                               : "the stream ended early",
              nghttp2_http2_strerror(st->close_code));
      /* REFUSED_STREAM: the server did not process it (RFC 9113 §8.7) */
      *result = st->close_code == NGHTTP2_REFUSED_STREAM ? MC_ECONNREFUSED
                                                         : MC_ECONNRESET;
    }
    return true;
  }
  if (st->conn_error) {
    *result = st->conn_error;
    return true;
  }
  return false;
}

static int wait_decided(h2stream *st, uint64_t deadline) {
  int result;
  while (!decided(st, &result)) {
    int err = stream_wait(st, deadline);
    if (err)
      return err;
  }
  return result;
}

static void conn_idle_check(h2conn *c);

/* An exchange timed out with nothing heard on its connection since it
 * began waiting: the connection may be dead (a peer gone without a word, a
 * route that drops everything), so it takes no new exchanges, which would
 * all time out too; those on it go on, and it closes after them. */
static void note_timeout(h2stream *st, int err) {
  h2conn *c = st->conn;
  if (err == MC_ETIMEDOUT && c && c->last_read_ns < st->since_ns)
    c->suspect = true;
}

/* The exchange is done with its connection: a stream not closed yet is
 * reset, and what it left unread is given back to the connection's
 * window. */
static void stream_detach(h2stream *st) {
  h2conn *c = st->conn;
  if (!c)
    return;
  stream_reset(c->h2, st);
  stream_unlink(st);
  if (st->unconsumed)
    nghttp2_session_consume_connection(c->h2, st->unconsumed);
  st->unconsumed = 0;
  flush_out(c);
  if (!c->failed)
    conn_check(c);
}

/* Sends the request (st->body after the headers, when has_body) on c. */
static int stream_submit(h2stream *st, h2conn *c, const nghttp2_nv *nva,
                         size_t n, bool has_body) {
  nghttp2_data_provider body = {.read_callback = read_body};
  int32_t id = nghttp2_submit_request(c->h2, NULL, nva, n,
                                      has_body ? &body : NULL, NULL);
  if (id < 0)
    return id == NGHTTP2_ERR_NOMEM ? MC_ENOMEM : MC_EINVAL;
  st->id = id;
  st->since_ns = mc_now_ns();
  stream_link(st, c);
  uv_timer_stop(&c->idle);
  if (st->src) {
    if (mc__helper_start(&st->pump, pump_main, st) != 0)
      return MC_ENOMEM;
  }
  flush_out(c);
  return 0;
}

/* Submits the unary call's request on c. */
static int submit_unary(h2stream *st, h2conn *c, const mc__grpc_unary_req *req,
                        uint64_t deadline) {
  uint8_t prefix[MC_GRPC_PREFIX_LEN];
  mc__grpc_prefix(prefix, false, (uint32_t)req->message.len);
  if (mc_buf_append(&st->body, prefix, sizeof prefix) != 0 ||
      mc_buf_append_slice(&st->body, req->message) != 0)
    return MC_ENOMEM;
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
  return stream_submit(st, c, nva, COUNT(nva), true);
}

/* The exchange ended with the server's END_STREAM: is it gRPC, and how
 * did the call end? */
static int conclude(h2stream *st, mc__grpc_unary_res *res) {
  if (st->http_status != 200) {
    set_why(st, "HTTP status %d: not a gRPC answer", st->http_status);
    return MC_EPROTO;
  }
  if (st->has_content_type &&
      (st->long_content_type ||
       !grpc_content_type(mc_slice_cstr(st->content_type)))) {
    set_why(st, "content-type %s: not a gRPC answer", st->content_type);
    return MC_EPROTO;
  }
  if (st->grpc_status < 0 || st->bad_grpc_status) {
    set_why(st, "the answer has no valid grpc-status");
    return MC_EPROTO;
  }
  if (st->grpc_status == MC_GRPC_OK) {
    if (!mc__grpc_reader_at_boundary(&st->rd)) {
      set_why(st, "the answer ends inside a message");
      return MC_EPROTO;
    }
    if (st->compressed) {
      set_why(st, "a compressed message, though no compression was offered");
      return MC_EPROTO;
    }
    if (st->rd.nmsgs != 1) {
      set_why(st, "%llu messages in the answer to a unary call",
              (unsigned long long)st->rd.nmsgs);
      return MC_EPROTO;
    }
    mc_buf tmp = res->reply;
    res->reply = st->reply;
    st->reply = tmp;
  }
  res->grpc_status = st->grpc_status;
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
  /* A connection of its own: a health check sees the instance as a new
   * client would. */
  h2stream *st =
      stream_new(req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE);
  h2conn *c = st ? conn_new(loop, NULL) : NULL;
  if (!c) {
    if (st)
      stream_free(st);
    put_text(res, mc_strerror(MC_ENOMEM));
    return MC_ENOMEM;
  }
  char name[256];
  memcpy(name, req->host.ptr, req->host.len);
  name[req->host.len] = 0;
  int err = submit_unary(st, c, req, deadline);
  if (err) {
    stream_detach(st);
    conn_close(c); /* never started */
  } else {
    conn_start(c, name, req->port);
    err = wait_decided(st, deadline);
  }
  /* c may be gone by now (failed while we waited): st tells */
  if (!err)
    err = conclude(st, res);
  if (err) {
    /* A verdict from the clock or a cancel outranks notes taken before. */
    bool ours = err == MC_ETIMEDOUT || err == MC_ECANCELED;
    put_text(res, st->why[0] && !ours ? st->why : mc_strerror(err));
  } else if (res->text && res->text_cap) {
    mc__grpc_message_decode(mc_buf_slice(&st->grpc_message), res->text,
                            res->text_cap);
  }
  stream_detach(st); /* the last stream of a connection of its own: closes it */
  stream_free(st);
  return err;
}

/* ---- raw exchanges (mc__h2x) --------------------------------------------- */

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

/* Submits the raw request on c. */
static int submit_raw(h2stream *st, h2conn *c, const mc__h2x_req *req) {
  if (mc_buf_append_slice(&st->body, req->body) != 0)
    return MC_ENOMEM;
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
  nghttp2_nv *nva =
      mc_arena_alloc(st->arena, (req->nheaders + 5) * sizeof *nva);
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
  if (st->src && st->src->length >= 0) {
    int w = snprintf(clen, sizeof clen, "%lld", (long long)st->src->length);
    nva[k++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)clen, 14,
                            (size_t)w, NGHTTP2_NV_FLAG_NONE};
  }
  for (size_t i = 0; i < req->nheaders; i++) {
    mc_slice n = req->headers[i].name, v = req->headers[i].value;
    if (!n.len || n.ptr[0] == ':' || h2_forbidden(n, v))
      continue;
    char *lower = mc_arena_alloc(st->arena, n.len);
    if (!lower)
      return MC_ENOMEM;
    for (size_t j = 0; j < n.len; j++)
      lower[j] =
          n.ptr[j] >= 'A' && n.ptr[j] <= 'Z' ? (char)(n.ptr[j] + 32) : n.ptr[j];
    nva[k++] = (nghttp2_nv){(uint8_t *)lower, (uint8_t *)v.ptr, n.len, v.len,
                            NGHTTP2_NV_FLAG_NONE};
  }
  return stream_submit(st, c, nva, k, req->body.len > 0 || st->src);
}

/* Connections of raw exchanges, per thread and host:port: an exchange
 * takes the first with room for another stream, so one connection carries
 * the calls to an instance until the server's (or our) limit of
 * concurrent streams is reached. A connection left without streams waits
 * POOL_IDLE_MS for the next exchange; at most POOL_IDLE_MAX wait. */
#define POOL_IDLE_MAX 16
#define POOL_IDLE_MS 30000

typedef struct h2pool {
  h2conn *conns;
} h2pool;

static __thread h2pool *H2P;

static void pool_unlink(h2conn *c) {
  if (!c->in_pool)
    return;
  c->in_pool = false;
  if (!H2P)
    return;
  for (h2conn **pp = &H2P->conns; *pp; pp = &(*pp)->pool_next)
    if (*pp == c) {
      *pp = c->pool_next;
      break;
    }
  c->pool_next = NULL;
}

static void on_pool_idle(uv_timer_t *t) {
  h2conn *c = t->data;
  if (!c->nstreams)
    conn_close(c);
}

/* A connection whose last exchange is gone waits for the next one, if it
 * is pooled, usable, and not one idle connection too many; else closes. */
static void conn_idle_check(h2conn *c) {
  if (c->nstreams || c->closing)
    return;
  if (!c->in_pool || !c->connected || !conn_has_room(c)) {
    conn_close(c);
    return;
  }
  size_t idle = 0;
  for (h2conn *o = H2P ? H2P->conns : NULL; o; o = o->pool_next)
    idle += o != c && !o->nstreams;
  if (idle >= POOL_IDLE_MAX) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->idle, on_pool_idle, POOL_IDLE_MS, 0);
}

static void pool_close(void *arg) {
  h2pool *p = arg;
  while (p->conns) {
    h2conn *c = p->conns;
    conn_why(c, "the thread's connections are closing");
    conn_fail(c, MC_ECANCELED); /* unlinks it */
  }
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

/* A live connection to key with room for one more stream, or NULL. */
static h2conn *pool_pick(const char *key) {
  for (h2conn *c = H2P ? H2P->conns : NULL; c; c = c->pool_next)
    if (!strcmp(c->key, key) && conn_has_room(c))
      return c;
  return NULL;
}

static void pool_add(h2conn *c) {
  h2pool *p = pool_get();
  if (!p)
    return; /* a connection of one exchange, then */
  /* Until its SETTINGS come, a new connection is assumed to allow what the
   * server's others do: one opened because those are full would otherwise
   * take every exchange made meanwhile, to hold most in nghttp2's queue. */
  for (h2conn *o = p->conns; o; o = o->pool_next)
    if (o->settings_seen && !strcmp(o->key, c->key)) {
      uint32_t m = nghttp2_session_get_remote_settings(
          o->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
      if (m < c->assumed_max)
        c->assumed_max = m;
    }
  /* at the end: exchanges fill the older connections first */
  h2conn **pp = &p->conns;
  while (*pp)
    pp = &(*pp)->pool_next;
  *pp = c;
  c->in_pool = true;
}

/* ---- streamed answers ---------------------------------------------------- */

typedef struct h2_stream {
  mc__http_stream base;
  h2stream *st;
  uint64_t timeout_ms;
} h2_stream;

static int h2_stream_read(mc__http_stream *s, mc_http_response *res,
                          mc_slice *chunk) {
  h2_stream *hs = (h2_stream *)s;
  h2stream *st = hs->st;
  if (!mc_fiber_current())
    return MC_ESTATE;
  mc_buf_reset(&st->taken);
  uint64_t deadline = call_deadline(hs->timeout_ms);
  st->want = W_DATA;
  st->since_ns = mc_now_ns();
  for (;;) {
    if (st->reply.len) {
      mc_buf t = st->taken;
      st->taken = st->reply;
      st->reply = t;
      *chunk = (mc_slice){st->taken.ptr, st->taken.len};
      /* given back to the window only now: the server sends more as the
       * caller reads */
      size_t n =
          st->taken.len < st->unconsumed ? st->taken.len : st->unconsumed;
      st->unconsumed -= n;
      if (st->conn) {
        nghttp2_session_consume(st->conn->h2, st->id, n);
        flush_out(st->conn);
      }
      return 0;
    }
    if (st->remote_done && !st->error && !st->src_error) {
      res->trailers = st->ts;
      res->ntrailers = st->nt;
      return 0;
    }
    int result;
    if (decided(st, &result) && result)
      return result;
    int err = stream_wait(st, deadline);
    if (err) {
      note_timeout(st, err);
      return err;
    }
  }
}

static void h2_stream_close(mc__http_stream *s) {
  h2_stream *hs = (h2_stream *)s;
  h2stream *st = hs->st;
  bool orphaned = pump_join(st);
  st->arena = NULL;
  stream_detach(st);
  if (!orphaned)
    stream_free(st);
}

/* Gives the caller the stream to read the answer's body from. */
static int stream_start(h2stream *st, const mc__h2x_req *req, mc_arena *a,
                        mc__h2x_res *res) {
  h2_stream *hs = mc_arena_calloc(a, sizeof *hs);
  if (!hs || mc__http_stream_adopt(&hs->base, a) != 0)
    return MC_ENOMEM;
  hs->base.read = h2_stream_read;
  hs->base.close = h2_stream_close;
  hs->st = st;
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
  h2stream *st = stream_new(0);
  if (!st)
    return MC_ENOMEM;
  st->raw = true;
  st->arena = a;
  st->max_raw = req->max_response ? req->max_response : DEFAULT_MAX_RESPONSE;
  st->stream = req->stream;
  st->want = req->stream ? W_HEAD : W_END;
  st->src = req->body_source;
  h2conn *c = pool_pick(key);
  bool fresh = !c;
  if (fresh && (c = conn_new(loop, key)) != NULL)
    pool_add(c);
  int err = c ? submit_raw(st, c, req) : MC_ENOMEM;
  if (fresh && c) {
    if (err) {
      stream_detach(st);
      conn_close(c);
    } else {
      conn_start(c, name, req->port);
    }
  }
  if (!err)
    err = wait_decided(st, deadline);
  if (!err && req->stream) {
    res->status = st->http_status;
    res->headers = st->hs;
    res->nheaders = st->nh;
    res->body = (mc_slice){"", 0};
    if (!(err = stream_start(st, req, a, res)))
      return 0;
  }
  bool orphaned = pump_join(st);
  if (!err) {
    res->status = st->http_status;
    res->headers = st->hs;
    res->nheaders = st->nh;
    res->trailers = st->ts;
    res->ntrailers = st->nt;
    char *body = mc_arena_alloc(a, st->reply.len ? st->reply.len : 1);
    if (!body) {
      err = MC_ENOMEM;
    } else {
      if (st->reply.len)
        memcpy(body, st->reply.ptr, st->reply.len);
      res->body = (mc_slice){body, st->reply.len};
    }
  }
  if (err) {
    bool ours = err == MC_ETIMEDOUT || err == MC_ECANCELED;
    snprintf(res->why, sizeof res->why, "%s",
             st->why[0] && !ours ? st->why : mc_strerror(err));
  }
  st->arena = NULL; /* the caller's, gone after this */
  note_timeout(st, err);
  stream_detach(st);
  if (!orphaned)
    stream_free(st);
  return err;
}
