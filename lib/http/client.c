/* The outbound HTTP/1.1 client. See microc/client.h.
 *
 * Each thread with a scheduler has one pool: hosts by name and port, each
 * with a list of idle keep-alive connections. An exchange borrows a
 * connection (or makes one), writes the request, and reads the answer with
 * the response reader while its fiber waits. Whatever ends the wait (the
 * answer, an error, the timer, a cancel) finishes it exactly once; the
 * fiber then gives the connection back to the pool or closes it.
 *
 * libuv requests and handles live in the connection, never on a fiber's
 * stack, so a connection closed mid-exchange is freed only once libuv has
 * called back for all of them.
 *
 * Exchanges that stream (a body source, or an answer read in pieces) read
 * with a callback of their own that only takes notes and wakes the fiber,
 * which looks at the notes and decides: the fiber may be away (in the
 * caller's code between two mc_http_read) when bytes come. A body source
 * is sent by a pump fiber of the exchange's own meanwhile. The exchanges
 * held whole keep the leaner path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fiber_int.h"
#include "http/h1_response.h"
#include "http/server_int.h"
#include "http/stream_int.h"
#include "microc/client.h"

#define IDLE_PER_HOST 64
#define IDLE_TIMEOUT_MS 30000 /* below the 60 s most servers allow */
#define RESOLVE_TTL_NS (30ull * 1000000000ull)
#define MAX_HEAD (64u << 10)
#define MAX_HEADERS 128

typedef struct pool_host host;
typedef struct conn conn;

struct conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  uv_write_t wreq;
  host *h;
  conn *next; /* idle list */
  mc__h1_response rd;
  mc_buf wbuf; /* the request head */
  mc_fiber *waiter;
  int result;
  bool waiting; /* the waiter waits for this connection */
  bool writing; /* a write is still with libuv */
  bool extra;   /* the peer sent bytes past the answer */
  bool closing;
  bool pooled; /* idle in its host's list */
  int open_handles;
  /* The one timer, moved lazily: a wait or an idle spell sets due, and the
   * timer is restarted only when it would fire later than that; firing
   * early, it sleeps again until due. An exchange then costs no timer
   * calls but the first. */
  uint64_t due;      /* mc_now_ns when the wait or idle spell ends; 0: none */
  uint64_t timer_at; /* mc_now_ns the armed timer fires at; 0: not armed */
  /* streaming exchanges: see on_read_stream */
  bool streaming;   /* on_read_stream reads for this exchange */
  bool stream;      /* the answer's body is read in pieces */
  bool answer_done; /* the whole answer is in */
  bool paused;      /* reading stopped: too much waits unread */
  bool body_unsent; /* the request's body was cut short */
  bool source_read; /* the body source was asked for a piece */
  int error;        /* what ended the answer early */
  int write_error;
  /* the body source's pump: see pump_main */
  const mc_body_source *src;
  int src_error;   /* the source failed, or gave other than announced */
  mc__helper pump; /* sends src's pieces; orphaned, it closes c */
  bool pump_parked, pump_stop;
  mc_buf taken; /* the piece handed to mc_http_read */
  char chunk_head[24];
};

struct pool_host {
  host *next;
  char *name;
  int port;
  struct sockaddr_storage addr;
  bool resolved;
  uint64_t resolved_at;
  conn *idle;
  unsigned nidle;
};

typedef struct pool {
  uv_loop_t *loop;
  host *hosts;
  mc_http_pool_stats stats;
  char rbuf[65536];
} pool;

static __thread pool *P;

/* ---- the pool --------------------------------------------------------- */

static void conn_close(conn *c);

static void pool_close(void *arg) {
  pool *p = arg;
  for (host *h = p->hosts, *hn; h; h = hn) {
    hn = h->next;
    while (h->idle) {
      conn *c = h->idle;
      h->idle = c->next;
      c->h = NULL;
      conn_close(c);
    }
    free(h->name);
    free(h);
  }
  free(p);
  P = NULL;
}

static pool *pool_get(void) {
  if (P)
    return P;
  uv_loop_t *loop = mc__sched_loop();
  if (!loop)
    return NULL;
  pool *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->loop = loop;
  if (mc__sched_on_close(pool_close, p) != 0) {
    free(p);
    return NULL;
  }
  P = p;
  return p;
}

static host *host_get(pool *p, mc_slice name, int port) {
  for (host *h = p->hosts; h; h = h->next)
    if (h->port == port && strlen(h->name) == name.len &&
        memcmp(h->name, name.ptr, name.len) == 0)
      return h;
  host *h = calloc(1, sizeof *h);
  if (!h || !(h->name = strndup(name.ptr, name.len))) {
    free(h);
    return NULL;
  }
  h->port = port;
  h->next = p->hosts;
  p->hosts = h;
  return h;
}

void mc_http_pool_stats_get(mc_http_pool_stats *out) {
  memset(out, 0, sizeof *out);
  if (!P)
    return;
  *out = P->stats;
  for (host *h = P->hosts; h; h = h->next)
    out->idle += h->nidle;
}

/* ---- errors ------------------------------------------------------------ */

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

/* ---- waiting on a connection ------------------------------------------- */

/* Ends the waiter's wait with result, once. From a cancel function the
 * fiber is queued, never resumed on the spot. */
static void finish(conn *c, int result, bool queue) {
  if (!c->waiting)
    return;
  c->waiting = false;
  c->result = result;
  if (queue)
    mc__fiber_ready(c->waiter);
  else
    mc__fiber_resume(c->waiter);
}

static void conn_arm(conn *c, uint64_t at);

static void on_timer(uv_timer_t *t) {
  conn *c = t->data;
  c->timer_at = 0;
  if (!c->due || c->closing)
    return;
  if (mc_now_ns() < c->due) {
    conn_arm(c, c->due);
    return;
  }
  c->due = 0;
  if (c->waiting)
    finish(c, MC_ETIMEDOUT, false);
  else if (c->pooled)
    conn_close(c); /* idle too long */
}

static void conn_arm(conn *c, uint64_t at) {
  c->due = at;
  if (c->timer_at && c->timer_at <= at)
    return; /* fires first, and looks again */
  uint64_t now = mc_now_ns();
  c->timer_at = at;
  uv_timer_start(&c->timer, on_timer,
                 at > now ? (at - now + 999999) / 1000000 : 0, 0);
}

static void on_cancel(void *arg) {
  finish(arg, MC_ECANCELED, true);
}

/* Waits for the phase under way to end, until deadline (mc_now_ns). */
static int conn_wait(conn *c, uint64_t deadline) {
  uint64_t now = mc_now_ns();
  if (deadline <= now)
    return MC_ETIMEDOUT;
  c->waiting = true;
  c->result = 0;
  c->waiter = mc_fiber_current();
  conn_arm(c, deadline);
  mc__fiber_wait_begin(on_cancel, c);
  mc__fiber_yield();
  mc__fiber_wait_end();
  c->due = 0; /* the timer, if it fires, finds nothing due */
  return c->result;
}

/* ---- connections ----------------------------------------------------------
 */

static void on_conn_handle_closed(uv_handle_t *hd) {
  conn *c = hd->data;
  if (--c->open_handles > 0)
    return;
  mc__h1r_free(&c->rd);
  mc_buf_free(&c->wbuf);
  mc_buf_free(&c->taken);
  free(c);
}

static void idle_unlink(conn *c) {
  host *h = c->h;
  c->pooled = false;
  if (!h)
    return;
  for (conn **pp = &h->idle; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      h->nidle--;
      break;
    }
  c->next = NULL;
}

static void conn_close(conn *c) {
  if (c->closing)
    return;
  c->closing = true;
  idle_unlink(c);
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_alloc(uv_handle_t *hd, size_t hint, uv_buf_t *buf) {
  buf->base = P->rbuf;
  buf->len = sizeof P->rbuf;
}

static void on_read_stream(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void pump_wake(conn *c);

/* One read callback for every state of a connection, so that moving
 * between them costs no epoll_ctl calls. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  if (c->streaming) {
    on_read_stream(s, nread, buf);
    return;
  }
  if (nread == 0)
    return;
  if (!c->waiting) {
    /* Idle in the pool: the peer closed it, or sent what nobody asked
     * for. Either way it is done. */
    conn_close(c);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    if (nread == UV_EOF) {
      mc__h1r_event ev = mc__h1r_finish(&c->rd);
      finish(c, ev == MC_H1R_DONE ? 0 : c->rd.error, false);
    } else {
      finish(c, from_uv((int)nread), false);
    }
    return;
  }
  size_t used;
  mc__h1r_event ev = mc__h1r_feed(&c->rd, buf->base, (size_t)nread, &used);
  if (ev == MC_H1R_MORE)
    return;
  /* After a whole answer the connection keeps reading: back in the pool,
   * that notices the peer closing it, and it saves two epoll_ctl calls a
   * request over stopping and starting again. */
  if (ev != MC_H1R_DONE)
    uv_read_stop(s);
  if (ev == MC_H1R_DONE) {
    c->extra = used < (size_t)nread;
    finish(c, 0, false);
  } else {
    finish(c, c->rd.error ? c->rd.error : MC_EPROTO, false);
  }
}

/* The read callback of streaming exchanges: notes what came and wakes the
 * fiber, if it waits, to look. */
static void on_read_stream(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  conn *c = s->data;
  if (nread == 0 || c->closing)
    return;
  if (c->answer_done || c->error) {
    /* past the answer: the peer closing, or bytes nobody asked for */
    c->extra = true;
    uv_read_stop(s);
    return;
  }
  if (nread < 0) {
    uv_read_stop(s);
    if (nread != UV_EOF)
      c->error = from_uv((int)nread);
    else if (mc__h1r_finish(&c->rd) == MC_H1R_DONE)
      c->answer_done = true;
    else
      c->error = c->rd.error;
    c->extra = true; /* closed: never reused */
  } else {
    size_t used;
    mc__h1r_event ev = mc__h1r_feed(&c->rd, buf->base, (size_t)nread, &used);
    if (ev == MC_H1R_DONE) {
      c->answer_done = true;
      c->extra = used < (size_t)nread;
    } else if (ev == MC_H1R_ERROR) {
      c->error = c->rd.error ? c->rd.error : MC_EPROTO;
      uv_read_stop(s);
    } else if (c->stream && c->rd.body.len > MC__STREAM_UNREAD_MAX) {
      uv_read_stop(s); /* the reader is slow: hold the peer back */
      c->paused = true;
    }
  }
  if (c->answer_done || c->error)
    pump_wake(c);
  finish(c, 0, false);
}

/* Back to the pool if both sides allow it; closed otherwise. */
static void conn_release(conn *c, bool reusable) {
  host *h = c->h;
  if (!reusable || c->closing || !h || h->nidle >= IDLE_PER_HOST ||
      c->writing || c->extra || c->paused) {
    conn_close(c);
    return;
  }
  mc__h1r_reset(&c->rd, false);
  mc_buf_reset(&c->wbuf);
  if (c->streaming) {
    c->streaming = c->stream = false;
    mc_buf_reset(&c->taken);
    if (c->taken.cap > 2 * MC__STREAM_UNREAD_MAX)
      mc_buf_free(&c->taken); /* a large answer's memory is not kept */
    if (c->rd.body.cap > 2 * MC__STREAM_UNREAD_MAX)
      mc_buf_free(&c->rd.body);
  }
  int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (err && err != UV_EALREADY) {
    conn_close(c);
    return;
  }
  conn_arm(c, mc_now_ns() + IDLE_TIMEOUT_MS * 1000000ull);
  c->pooled = true;
  c->next = h->idle;
  h->idle = c;
  h->nidle++;
}

static conn *conn_new(pool *p, host *h, size_t max_body) {
  conn *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  if (mc__h1r_init(&c->rd, MAX_HEAD, MAX_HEADERS, max_body) != 0) {
    free(c);
    return NULL;
  }
  mc_buf_init(&c->wbuf, 0);
  c->h = h;
  uv_tcp_init(p->loop, &c->tcp);
  uv_timer_init(p->loop, &c->timer);
  c->tcp.data = c->timer.data = c->creq.data = c->wreq.data = c;
  c->open_handles = 2;
  return c;
}

static void on_connect(uv_connect_t *r, int status) {
  finish(r->data, from_uv(status), false);
}

/* ---- names ------------------------------------------------------------------
 */

typedef struct resolve_op {
  uv_getaddrinfo_t req;
  mc_fiber *fiber;
  int status;
  struct sockaddr_storage addr;
} resolve_op;

static void on_resolved(uv_getaddrinfo_t *r, int status, struct addrinfo *res) {
  resolve_op *op = r->data;
  op->status = status;
  if (status == 0 && res) {
    memcpy(&op->addr, res->ai_addr, res->ai_addrlen);
  } else if (status == 0) {
    op->status = UV_EAI_NONAME;
  }
  uv_freeaddrinfo(res);
  mc__fiber_resume(op->fiber);
}

/* Running lookups cannot be stopped; a queued one is taken off the queue.
 * Either way the callback comes and resumes the fiber. */
static void on_resolve_cancel(void *arg) {
  resolve_op *op = arg;
  uv_cancel((uv_req_t *)&op->req);
}

static int resolve(pool *p, host *h) {
  uint64_t now = mc_now_ns();
  if (h->resolved && now - h->resolved_at < RESOLVE_TTL_NS)
    return 0;
  memset(&h->addr, 0, sizeof h->addr);
  const char *name = strcmp(h->name, "localhost") == 0 ? "127.0.0.1" : h->name;
  if (uv_ip4_addr(name, h->port, (struct sockaddr_in *)&h->addr) == 0 ||
      uv_ip6_addr(name, h->port, (struct sockaddr_in6 *)&h->addr) == 0) {
    h->resolved = true;
    h->resolved_at = UINT64_MAX / 2; /* literals never go stale */
    return 0;
  }
  resolve_op op = {.fiber = mc_fiber_current()};
  op.req.data = &op;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  char port[8];
  snprintf(port, sizeof port, "%d", h->port);
  if (uv_getaddrinfo(p->loop, &op.req, on_resolved, h->name, port, &hints))
    return MC_ENAME;
  mc__fiber_wait_begin(on_resolve_cancel, &op);
  mc__fiber_yield();
  mc__fiber_wait_end();
  if (op.status == UV_ECANCELED)
    return MC_ECANCELED;
  if (op.status != 0)
    return MC_ENAME;
  h->addr = op.addr;
  h->resolved = true;
  h->resolved_at = mc_now_ns();
  return 0;
}

/* ---- requests
 * ------------------------------------------------------------------ */

/* Whether s holds none of CR, LF, NUL (and, for a name, ':'): eight bytes
 * at a time, since every header of every call passes through here. */
static bool field_ok(mc_slice s, bool name) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
#define HAS_BYTE(x, c)                                                         \
  ((((x) ^ (ones * (c))) - ones) & ~((x) ^ (ones * (c))) & highs)
  const unsigned char *p = (const unsigned char *)s.ptr;
  size_t i = 0;
  for (; i + 8 <= s.len; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    if (HAS_BYTE(x, 0) | HAS_BYTE(x, '\r') | HAS_BYTE(x, '\n') |
        (name ? HAS_BYTE(x, ':') : 0))
      return false;
  }
#undef HAS_BYTE
  for (; i < s.len; i++)
    if (!p[i] || p[i] == '\r' || p[i] == '\n' || (name && p[i] == ':'))
      return false;
  return true;
}

/* What a caller's header is to the client: one the client sets itself
 * (refused), one it would add if missing, or neither. */
enum {
  H_RESERVED = 1,
  H_USER_AGENT = 2,
  H_TRACEPARENT = 4,
  H_REQUEST_ID = 8,
  H_TIMEOUT = 16
};

static unsigned header_kind(mc_slice n) {
#define IS(lit) mc_slice_eq_nocase(n, MC_LIT(lit))
  switch (n.len) {
  case 4:
    return IS("host") ? H_RESERVED : 0;
  case 7:
    return IS("upgrade") ? H_RESERVED : 0;
  case 10:
    return IS("user-agent")                       ? H_USER_AGENT
           : IS("connection") || IS("keep-alive") ? H_RESERVED
                                                  : 0;
  case 11:
    return IS("traceparent") ? H_TRACEPARENT : 0;
  case 12:
    return IS("x-request-id") ? H_REQUEST_ID : 0;
  case 14:
    return IS("content-length") ? H_RESERVED : 0;
  case 17:
    return IS("transfer-encoding") ? H_RESERVED : 0;
  case 20:
    return IS("x-request-timeout-ms") ? H_TIMEOUT : 0;
  default:
    return 0;
  }
#undef IS
}

static int write_head(mc_buf *b, mc_slice method, mc_slice hostname, int port,
                      mc_slice target, const mc_http_request *r,
                      uint64_t deadline, unsigned given) {
  bool v6 = memchr(hostname.ptr, ':', hostname.len) != NULL;
  mc_buf_append_slice(b, method);
  mc_buf_append_char(b, ' ');
  mc_buf_append_slice(b, target);
  mc_buf_append_cstr(b, v6 ? " HTTP/1.1\r\nHost: [" : " HTTP/1.1\r\nHost: ");
  mc_buf_append_slice(b, hostname);
  if (v6)
    mc_buf_append_char(b, ']');
  if (port != 80) {
    mc_buf_append_char(b, ':');
    mc_buf_append_u64(b, (uint64_t)port);
  }
  mc_buf_append_cstr(b, "\r\n");
  const mc_body_source *src = r->body_source;
  bool needs_length = r->body.len > 0 || mc_slice_eq(method, MC_LIT("POST")) ||
                      mc_slice_eq(method, MC_LIT("PUT")) ||
                      mc_slice_eq(method, MC_LIT("PATCH"));
  if (src && src->length < 0) {
    mc_buf_append_cstr(b, "Transfer-Encoding: chunked\r\n");
  } else if (src || needs_length) {
    mc_buf_append_cstr(b, "Content-Length: ");
    mc_buf_append_u64(b, src ? (uint64_t)src->length : r->body.len);
    mc_buf_append(b, "\r\n", 2);
  }
  for (size_t i = 0; i < r->nheaders; i++) {
    mc_buf_append_slice(b, r->headers[i].name);
    mc_buf_append(b, ": ", 2);
    mc_buf_append_slice(b, r->headers[i].value);
    mc_buf_append(b, "\r\n", 2);
  }
  if (!(given & H_USER_AGENT) && !r->user_agent)
    mc_buf_append_cstr(b, "User-Agent: microc/" MC_VERSION "\r\n");
  else if (!(given & H_USER_AGENT) && r->user_agent[0]) {
    mc_buf_append_cstr(b, "User-Agent: ");
    mc_buf_append_cstr(b, r->user_agent);
    mc_buf_append(b, "\r\n", 2);
  }
  /* Inside a request: pass its trace and id on. */
  mc_req *in = mc__req_current();
  if (in) {
    if (!(given & H_TRACEPARENT)) {
      char tp[56];
      mc__trace_format(&in->trace, tp);
      mc_buf_append_cstr(b, "traceparent: ");
      mc_buf_append(b, tp, 55);
      mc_buf_append(b, "\r\n", 2);
    }
    if (!(given & H_REQUEST_ID)) {
      mc_buf_append_cstr(b, "X-Request-Id: ");
      mc_buf_append(b, in->request_id, in->request_id_len);
      mc_buf_append(b, "\r\n", 2);
    }
  }
  if (!(given & H_TIMEOUT)) {
    uint64_t now = mc_now_ns();
    uint64_t left = deadline > now ? (deadline - now) / 1000000 : 0;
    mc_buf_append_cstr(b, "X-Request-Timeout-Ms: ");
    mc_buf_append_u64(b, left);
    mc_buf_append(b, "\r\n", 2);
  }
  return mc_buf_append_cstr(b, "\r\n");
}

static void on_write(uv_write_t *w, int status) {
  conn *c = w->data;
  c->writing = false;
  if (status != 0)
    finish(c, from_uv(status), false);
}

/* One exchange on c, connected already. */
static int exchange(conn *c, mc_slice body, bool head_request,
                    uint64_t deadline) {
  mc__h1r_reset(&c->rd, head_request);
  c->extra = false;
  uv_buf_t bufs[2] = {uv_buf_init(c->wbuf.ptr, (unsigned)c->wbuf.len),
                      uv_buf_init((char *)body.ptr, (unsigned)body.len)};
  unsigned nb = body.len ? 2 : 1;
  size_t total = bufs[0].len + bufs[1].len;
  int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
  if (n < 0 && n != UV_EAGAIN)
    return from_uv(n);
  size_t done = n > 0 ? (size_t)n : 0;
  if (done < total) {
    unsigned i = 0;
    while (done >= bufs[i].len)
      done -= bufs[i++].len;
    bufs[i].base += done;
    bufs[i].len -= (unsigned)done;
    c->writing = true;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + i, nb - i,
                 on_write) != 0) {
      c->writing = false;
      return MC_ECONNRESET;
    }
  }
  /* Read at once: a peer may answer before it has read the whole body. */
  int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (err && err != UV_EALREADY)
    return from_uv(err);
  return conn_wait(c, deadline);
}

/* ---- streaming exchanges ------------------------------------------------- */

static void on_write_stream(uv_write_t *w, int status) {
  conn *c = w->data;
  c->writing = false;
  if (status != 0 && !c->write_error)
    c->write_error = from_uv(status);
  pump_wake(c);
  finish(c, 0, false);
}

/* Writes bufs now as far as the socket takes them, and hands the rest to
 * libuv (a write that must wait costs two epoll_ctl calls); the next write
 * waits for that one. */
static int write_stream(conn *c, uv_buf_t *bufs, unsigned n) {
  int k = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
  if (k < 0 && k != UV_EAGAIN)
    return from_uv(k);
  size_t done = k > 0 ? (size_t)k : 0;
  unsigned i = 0;
  while (i < n && done >= bufs[i].len)
    done -= bufs[i++].len;
  if (i == n)
    return 0;
  bufs[i].base += done;
  bufs[i].len -= (unsigned)done;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + i, n - i,
               on_write_stream))
    return MC_ECONNRESET;
  c->writing = true;
  return 0;
}

/* ---- the body source's pump ----------------------------------------------
 *
 * A request body from a source is sent by a fiber of its own, so that the
 * answer can come, and be read, while the body still goes out: a peer may
 * answer early (an error, and then the rest is not sent), or answer as it
 * reads, each piece in turn (then the body goes on after the answer's
 * head). The pump sends a piece once libuv has written the one before, and
 * stops when the body is done, the answer is whole, or the connection
 * fails. It is always joined before the connection is given back or
 * closed; one whose owner let go outside a fiber closes it itself. */

/* Whether the pump must stop sending. */
static bool pump_done(const conn *c) {
  return c->pump_stop || c->answer_done || c->error || c->write_error ||
         c->src_error || c->closing;
}

static void pump_wake(conn *c) {
  if (c->pump_parked && (!c->writing || pump_done(c))) {
    c->pump_parked = false;
    mc__fiber_ready(c->pump.fiber);
  }
}

static void pump_cancel(void *arg) {
  conn *c = arg;
  c->pump_stop = true;
  pump_wake(c);
}

static void pump_main(void *arg) {
  static const char crlf[] = "\r\n", last[] = "0\r\n\r\n";
  conn *c = arg;
  const mc_body_source *src = c->src;
  bool chunked = src->length < 0, sent_all = false;
  uint64_t sent = 0;
  for (;;) {
    while (c->writing && !pump_done(c)) {
      c->pump_parked = true;
      mc__fiber_wait_begin(pump_cancel, c);
      mc__fiber_yield();
      mc__fiber_wait_end();
    }
    if (pump_done(c) || mc_fiber_canceled())
      break;
    mc_slice piece = {"", 0};
    c->source_read = true;
    int err = src->read(src->ud, &piece);
    if (pump_done(c))
      break;
    if (!err && !chunked &&
        (piece.len > (uint64_t)src->length - sent ||
         (!piece.len && sent != (uint64_t)src->length)))
      err = MC_EINVAL; /* not the length announced */
    if (err) {
      c->src_error = err;
      break;
    }
    sent += piece.len;
    uv_buf_t b[3];
    unsigned n = 0;
    if (chunked && piece.len) {
      int k =
          snprintf(c->chunk_head, sizeof c->chunk_head, "%zx\r\n", piece.len);
      b[n++] = uv_buf_init(c->chunk_head, (unsigned)k);
    }
    if (piece.len)
      b[n++] = uv_buf_init((char *)piece.ptr, (unsigned)piece.len);
    if (chunked)
      b[n++] = piece.len ? uv_buf_init((char *)crlf, 2)
                         : uv_buf_init((char *)last, sizeof last - 1);
    if (n && (err = write_stream(c, b, n))) {
      c->write_error = err;
      break;
    }
    if (!piece.len) {
      sent_all = true;
      break;
    }
  }
  if (!sent_all)
    c->body_unsent = true;
  finish(c, 0, true); /* the reader looks again: a failed source ends it */
  if (mc__helper_end(&c->pump))
    conn_close(c);
}

static int pump_start(conn *c, const mc_body_source *src) {
  c->src = src;
  c->src_error = 0;
  c->pump_stop = c->pump_parked = false;
  return mc__helper_start(&c->pump, pump_main, c);
}

/* Stops the pump and, from a fiber, waits for it to end; otherwise the
 * pump closes the connection itself when it ends (returns true: c is no
 * longer the caller's). */
static bool pump_join(conn *c) {
  c->pump_stop = true;
  return mc__helper_join(&c->pump);
}

/* One exchange on c for a request with a body source or a streamed
 * answer: the body goes out (by the pump, for a source) while the answer
 * is read, and the exchange ends once the answer's head (stream) or all of
 * it is in. The pump may still be sending then. */
static int exchange_streaming(conn *c, const mc_http_request *r,
                              bool head_request, uint64_t deadline) {
  mc__h1r_reset(&c->rd, head_request);
  c->streaming = true;
  c->stream = r->stream;
  c->extra = c->answer_done = c->paused = false;
  c->body_unsent = c->source_read = false;
  c->error = c->write_error = c->src_error = 0;
  if (r->stream)
    c->rd.body.limit = 0;
  mc_buf_reset(&c->taken);
  /* a pooled connection reads already (on_read turns to on_read_stream) */
  int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (err && err != UV_EALREADY)
    return from_uv(err);
  uv_buf_t b[2] = {uv_buf_init(c->wbuf.ptr, (unsigned)c->wbuf.len),
                   uv_buf_init((char *)r->body.ptr, (unsigned)r->body.len)};
  if (write_stream(c, b, !r->body_source && r->body.len ? 2 : 1))
    return MC_ECONNRESET;
  if (r->body_source && (err = pump_start(c, r->body_source)))
    return err;
  for (;;) {
    if (c->src_error)
      return c->src_error;
    if (c->answer_done || (c->stream && c->rd.headers_done))
      return 0;
    if (c->error)
      return c->error;
    if (mc_fiber_canceled())
      return MC_ECANCELED;
    if ((err = conn_wait(c, deadline)))
      return err;
  }
}

typedef struct h1_stream {
  mc__http_stream base;
  conn *c;
  uint64_t timeout_ms;
  bool eof; /* the end was handed out */
} h1_stream;

static int h1_stream_read(mc__http_stream *s, mc_http_response *res,
                          mc_slice *chunk) {
  h1_stream *hs = (h1_stream *)s;
  conn *c = hs->c;
  if (!mc_fiber_current())
    return MC_ESTATE;
  mc_buf_reset(&c->taken);
  uint64_t deadline = mc_now_ns() + hs->timeout_ms * 1000000u;
  uint64_t fd = mc_deadline();
  if (fd && fd < deadline)
    deadline = fd;
  for (;;) {
    if (c->rd.body.len) {
      mc_buf t = c->taken;
      c->taken = c->rd.body;
      c->rd.body = t;
      *chunk = (mc_slice){c->taken.ptr, c->taken.len};
      if (c->paused && !c->closing) {
        c->paused = false;
        int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (err && err != UV_EALREADY && !c->error)
          c->error = from_uv(err);
      }
      return 0;
    }
    if (c->answer_done) {
      hs->eof = true;
      *chunk = (mc_slice){"", 0};
      return 0;
    }
    if (c->error)
      return c->error;
    if (c->src_error)
      return c->src_error;
    if (mc_fiber_canceled())
      return MC_ECANCELED;
    int err = conn_wait(c, deadline);
    if (err)
      return err;
  }
}

static void h1_stream_close(mc__http_stream *s) {
  h1_stream *hs = (h1_stream *)s;
  conn *c = hs->c;
  if (!P) /* the thread's pool is gone, and its hosts with it */
    c->h = NULL;
  if (pump_join(c))
    return; /* the pump closes it */
  conn_release(c, hs->eof && c->rd.keep_alive && !c->body_unsent && !c->error &&
                      !c->write_error && !c->src_error);
}

static void stream_cleanup(void *arg) {
  mc__http_stream *s = arg;
  if (!s->closed) {
    s->closed = true;
    s->close(s);
  }
}

int mc__http_stream_adopt(mc__http_stream *s, mc_arena *a) {
  return mc_arena_cleanup_add(a, stream_cleanup, s);
}

int mc_http_read(mc_http_response *res, mc_slice *chunk) {
  *chunk = (mc_slice){"", 0};
  if (!res->stream || res->stream->closed)
    return MC_EINVAL;
  return res->stream->read(res->stream, res, chunk);
}

void mc_http_close(mc_http_response *res) {
  mc__http_stream *s = res->stream;
  res->stream = NULL;
  if (s)
    stream_cleanup(s);
}

/* ---- answers ------------------------------------------------------------- */

static int copy_head(conn *c, mc_arena *a, mc_http_response *res) {
  mc__h1_response *rd = &c->rd;
  res->status = rd->status;
  res->nheaders = rd->nheaders;
  /* one block for the array and one for the text, each name and value
   * NUL-terminated */
  res->headers = mc_arena_alloc(a, (rd->nheaders ? rd->nheaders : 1) *
                                       sizeof *res->headers);
  char *text = mc_arena_alloc(a, rd->head.len + 2 * rd->nheaders + 1);
  if (!res->headers || !text)
    return MC_ENOMEM;
  for (uint32_t i = 0; i < rd->nheaders; i++) {
    mc_slice n, v;
    mc__h1r_header(rd, i, &n, &v);
    memcpy(text, n.ptr, n.len);
    text[n.len] = 0;
    res->headers[i].name = (mc_slice){text, n.len};
    text += n.len + 1;
    memcpy(text, v.ptr, v.len);
    text[v.len] = 0;
    res->headers[i].value = (mc_slice){text, v.len};
    text += v.len + 1;
  }
  return 0;
}

static int copy_response(conn *c, mc_arena *a, mc_http_response *res) {
  mc__h1_response *rd = &c->rd;
  int err = copy_head(c, a, res);
  if (err)
    return err;
  /* The body's buffer moves to the arena: no copy. */
  if (rd->body.len) {
    if (mc_arena_cleanup_add(a, free, rd->body.ptr) != 0)
      return MC_ENOMEM;
    res->body = (mc_slice){rd->body.ptr, rd->body.len};
    size_t limit = rd->body.limit;
    mc_buf_init(&rd->body, limit);
  } else {
    res->body = (mc_slice){"", 0};
  }
  return 0;
}

int mc_url_parse(mc_slice url, mc_url *out) {
  memset(out, 0, sizeof *out);
  const char *p = url.ptr, *end = url.ptr + url.len;
  const char *sep = url.len > 3 ? memchr(p, ':', url.len) : NULL;
  if (!sep || end - sep < 3 || sep[1] != '/' || sep[2] != '/')
    return MC_EINVAL;
  out->scheme = (mc_slice){p, (size_t)(sep - p)};
  if (mc_slice_eq_nocase(out->scheme, MC_LIT("http")))
    out->port = 80;
  else if (mc_slice_eq_nocase(out->scheme, MC_LIT("https")))
    out->port = 443;
  else
    return MC_EINVAL;
  p = sep + 3;
  const char *auth_end = p;
  while (auth_end < end && *auth_end != '/' && *auth_end != '?' &&
         *auth_end != '#')
    auth_end++;
  const char *hp = p, *he;
  const char *port_at = NULL;
  if (hp < auth_end && *hp == '[') {
    const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));
    if (!rb)
      return MC_EINVAL;
    out->host = (mc_slice){hp + 1, (size_t)(rb - hp - 1)};
    he = rb + 1;
    if (he < auth_end) {
      if (*he != ':')
        return MC_EINVAL;
      port_at = he + 1;
    }
  } else {
    const char *colon = memchr(hp, ':', (size_t)(auth_end - hp));
    he = colon ? colon : auth_end;
    out->host = (mc_slice){hp, (size_t)(he - hp)};
    if (colon)
      port_at = colon + 1;
  }
  if (!out->host.len || memchr(out->host.ptr, '@', out->host.len))
    return MC_EINVAL; /* no userinfo */
  if (port_at) {
    int port = 0;
    if (port_at == auth_end)
      return MC_EINVAL;
    for (const char *q = port_at; q < auth_end; q++) {
      if (*q < '0' || *q > '9' || port > 65535)
        return MC_EINVAL;
      port = port * 10 + (*q - '0');
    }
    if (port < 1 || port > 65535)
      return MC_EINVAL;
    out->port = port;
  }
  const char *frag = memchr(auth_end, '#', (size_t)(end - auth_end));
  const char *tend = frag ? frag : end;
  out->target = auth_end < tend
                    ? (mc_slice){auth_end, (size_t)(tend - auth_end)}
                    : MC_LIT("/");
  if (out->target.ptr[0] == '?') /* "http://h?q" means "/?q" */
    return MC_EINVAL;
  return 0;
}

bool mc_http_idempotent(mc_slice m) {
  static const char *const names[] = {"GET",   "HEAD", "OPTIONS",
                                      "TRACE", "PUT",  "DELETE"};
  for (size_t i = 0; i < MC_COUNT(names); i++)
    if (mc_slice_eq(m, mc_slice_cstr(names[i])))
      return true;
  return false;
}

mc_slice mc_http_header(const mc_http_response *res, mc_slice name) {
  for (size_t i = 0; i < res->nheaders; i++)
    if (mc_slice_eq_nocase(res->headers[i].name, name))
      return res->headers[i].value;
  return MC_SLICE_NULL;
}

/* Gives the caller the answer's head and the stream to read the rest. */
static int stream_start(conn *c, const mc_http_request *r, mc_arena *a,
                        mc_http_response *res) {
  h1_stream *hs = mc_arena_calloc(a, sizeof *hs);
  int err = hs ? copy_head(c, a, res) : MC_ENOMEM;
  if (!err && mc__http_stream_adopt(&hs->base, a) != 0)
    err = MC_ENOMEM;
  if (err) {
    pump_join(c); /* (on mc_http_do's fiber) */
    conn_close(c);
    return err;
  }
  hs->base.read = h1_stream_read;
  hs->base.close = h1_stream_close;
  hs->c = c;
  hs->timeout_ms = r->timeout_ms ? r->timeout_ms : 30000;
  res->body = (mc_slice){"", 0};
  res->stream = &hs->base;
  return 0;
}

int mc_http_do(const mc_http_request *r, mc_arena *a, mc_http_response *res) {
  memset(res, 0, sizeof *res);
  if (!mc_fiber_current())
    return MC_ESTATE;
  if (mc_fiber_canceled())
    return MC_ECANCELED;
  mc_slice method = mc_slice_cstr(r->method ? r->method : "GET");
  mc_slice hostname = r->host, target = r->target;
  int port = r->port ? r->port : 80;
  if (r->url) {
    mc_url u;
    if (mc_url_parse(mc_slice_cstr(r->url), &u) != 0 ||
        !mc_slice_eq_nocase(u.scheme, MC_LIT("http")))
      return MC_EINVAL;
    hostname = u.host;
    port = u.port;
    target = u.target;
  }
  if (!target.len)
    target = MC_LIT("/");
  if (!hostname.len || port < 1 || port > 65535 || !field_ok(target, false) ||
      memchr(target.ptr, ' ', target.len) || !method.len ||
      !field_ok(method, false) || memchr(method.ptr, ' ', method.len))
    return MC_EINVAL;
  if (r->user_agent && !field_ok(mc_slice_cstr(r->user_agent), false))
    return MC_EINVAL;
  unsigned given = 0;
  for (size_t i = 0; i < r->nheaders; i++) {
    const mc_header *hd = &r->headers[i];
    unsigned kind = header_kind(hd->name);
    if (!hd->name.len || (kind & H_RESERVED) || !field_ok(hd->name, true) ||
        !mc_slice_is_field_value(hd->value))
      return MC_EINVAL;
    given |= kind;
  }

  pool *p = pool_get();
  if (!p)
    return MC_ENOMEM;
  host *h = host_get(p, hostname, port);
  if (!h)
    return MC_ENOMEM;
  uint64_t now = mc_now_ns();
  uint64_t deadline = now + (r->timeout_ms ? r->timeout_ms : 30000) * 1000000;
  uint64_t fd = mc_deadline();
  if (fd && fd < deadline)
    deadline = fd;
  uint64_t connect_deadline =
      now + (r->connect_timeout_ms ? r->connect_timeout_ms : 5000) * 1000000;
  if (connect_deadline > deadline)
    connect_deadline = deadline;
  size_t max_body = r->max_body ? r->max_body : (16u << 20);
  bool streaming = r->stream || r->body_source;
  if (r->body_source && (!r->body_source->read || r->body.len))
    return MC_EINVAL;
  bool head_request = mc_slice_eq(method, MC_LIT("HEAD"));
  bool idempotent = mc_http_idempotent(method);

  int err = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    conn *c = h->idle;
    bool reused = c != NULL;
    if (c) {
      idle_unlink(c);
      c->due = 0;
      c->rd.body.limit = max_body; /* the previous one's */
      p->stats.reused++;
    } else {
      if ((err = resolve(p, h)) != 0)
        return err;
      if (!(c = conn_new(p, h, max_body)))
        return MC_ENOMEM;
      uv_tcp_nodelay(&c->tcp, 1);
      p->stats.opened++;
      err = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&h->addr,
                           on_connect);
      err = err ? from_uv(err) : conn_wait(c, connect_deadline);
      if (err) {
        conn_close(c);
        return err == MC_ETIMEDOUT && connect_deadline < deadline ? MC_ETIMEDOUT
                                                                  : err;
      }
    }
    mc_buf_reset(&c->wbuf);
    if (write_head(&c->wbuf, method, hostname, port, target, r, deadline,
                   given)) {
      conn_close(c);
      return MC_ENOMEM;
    }
    if (!streaming) {
      err = exchange(c, r->body, head_request, deadline);
      if (!err) {
        err = copy_response(c, a, res);
        conn_release(c, !err && c->rd.keep_alive);
        return err;
      }
    } else {
      err = exchange_streaming(c, r, head_request, deadline);
      if (!err && !r->stream) {
        err = copy_response(c, a, res);
        pump_join(c); /* (on a fiber: always joined, never orphaned) */
        conn_release(c, !err && c->rd.keep_alive && !c->body_unsent);
        return err;
      }
      if (!err)
        return stream_start(c, r, a, res);
      pump_join(c);
    }
    bool stale = reused && !c->rd.started && !c->source_read &&
                 (err == MC_ECLOSED || err == MC_ECONNRESET);
    conn_close(c);
    if (!(stale && idempotent))
      break;
    p->stats.retried++;
  }
  return err;
}

int mc_tcp_probe(mc_slice hostname, int port, uint64_t timeout_ms) {
  if (!mc_fiber_current())
    return MC_ESTATE;
  if (mc_fiber_canceled())
    return MC_ECANCELED;
  if (!hostname.len || port < 1 || port > 65535)
    return MC_EINVAL;
  pool *p = pool_get();
  host *h = p ? host_get(p, hostname, port) : NULL;
  if (!h)
    return MC_ENOMEM;
  uint64_t deadline = mc_now_ns() + (timeout_ms ? timeout_ms : 10000) * 1000000;
  uint64_t fd = mc_deadline();
  if (fd && fd < deadline)
    deadline = fd;
  int err = resolve(p, h);
  if (err)
    return err;
  conn *c = conn_new(p, NULL, 0);
  if (!c)
    return MC_ENOMEM;
  err = uv_tcp_connect(&c->creq, &c->tcp, (struct sockaddr *)&h->addr,
                       on_connect);
  err = err ? from_uv(err) : conn_wait(c, deadline);
  conn_close(c);
  return err;
}
