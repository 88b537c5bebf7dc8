/* The HTTP/1.1 server: one libuv loop per worker thread, each with its own
 * SO_REUSEPORT listener; connections read with a per-worker buffer, one
 * request at a time (pipelined requests wait their turn, so answers leave in
 * order); each request runs on a fiber.
 *
 * A connection moves IDLE -> HEAD -> BODY -> BUSY -> (WRITING) -> IDLE, or
 * to LINGER (we said Connection: close: half-close, drain what the client
 * still sends, then close) and CLOSED. One timer per connection enforces the
 * idle, header, body and write timeouts. */
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/http_int.h"
#include "http/server_int.h"
#include "microc/log.h"

/* ---- listening ---------------------------------------------------------- */

int mc__parse_listen(const char *spec, struct sockaddr_storage *ss, char *host,
                     size_t hostcap, int *port) {
  const char *colon = strrchr(spec, ':');
  if (!colon)
    return MC_EINVAL;
  size_t hl = (size_t)(colon - spec);
  const char *h = spec;
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  }
  if (hl == 0 || hl >= hostcap)
    return MC_EINVAL;
  memcpy(host, h, hl);
  host[hl] = 0;
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end || end == colon + 1 || p < 0 || p > 65535)
    return MC_EINVAL;
  *port = (int)p;
  memset(ss, 0, sizeof *ss);
  if (strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss) == 0)
    return 0;
  if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss) == 0)
    return 0;
  return MC_EINVAL;
}

/* SO_REUSEPORT lets our workers share a port, but it would equally let a
 * second copy of the service started by the same user join the first and
 * take half its traffic. A plain bind first tells whether anyone already
 * listens there. */
static int port_taken(struct sockaddr_storage *ss, int port) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                           : sizeof(struct sockaddr_in6);
  int rc = bind(fd, (struct sockaddr *)ss, len) == 0 ? 0 : -errno;
  close(fd);
  return rc;
}

static int listen_socket(struct sockaddr_storage *ss, int *port_io) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)*port_io);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)*port_io);
  socklen_t len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                           : sizeof(struct sockaddr_in6);
  if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  struct sockaddr_storage got;
  socklen_t gl = sizeof got;
  getsockname(fd, (struct sockaddr *)&got, &gl);
  *port_io = ntohs(got.ss_family == AF_INET
                       ? ((struct sockaddr_in *)&got)->sin_port
                       : ((struct sockaddr_in6 *)&got)->sin6_port);
  return fd;
}

/* ---- connections ----------------------------------------------------------
 */

static void conn_feed(mc__conn *c, const char *data, size_t len,
                      bool from_pending);
static void conn_close(mc__conn *c);
static void conn_next(mc__conn *c);
static void conn_stop_reading(mc__conn *c);
static void conn_after_write(mc__conn *c);

/* Bytes read ahead while a request is served; past this, reading stops
 * until the connection has caught up. */
#define PENDING_CAP (64 * 1024)
/* A streamed body stops being read past STREAM_HIGH bytes the handler has
 * not taken; a streamed answer's writer may go on below STREAM_LOW. */
#define STREAM_HIGH (64 * 1024)
#define STREAM_LOW (64 * 1024)

static uint64_t now_ms(mc__worker *w) {
  return uv_now(&w->loop);
}

static void conn_arm(mc__conn *c, uint64_t ms);

/* The time a connection may spend in a state, in ms (0: no limit). */
static uint64_t state_timeout(const mc__config *cfg, int state) {
  switch (state) {
  case C_IDLE:
  case C_H2:
    return cfg->idle_timeout_ms;
  case C_HEAD:
    return cfg->header_timeout_ms;
  case C_BODY:
    return cfg->body_timeout_ms;
  case C_WRITING:
    return cfg->write_timeout_ms;
  case C_LINGER:
    return 2000;
  default:
    return 0;
  }
}

/* Timers are lazy: a state change moves the timer only when its deadline
 * comes before the one armed; a timer that fires early finds the state's
 * deadline ahead and sleeps again. A request then costs one timer update
 * instead of four. */
static void conn_set_state(mc__conn *c, int state) {
  mc__worker *w = c->w;
  uint64_t now = now_ms(w);
  c->state = state;
  c->state_since = now;
  uint64_t t = state_timeout(&w->srv->app->cfg, state);
  c->state_deadline = t ? now + t : 0;
  if (t && (!c->timer_at || c->state_deadline < c->timer_at))
    conn_arm(c, t);
}

static void conn_free_if_done(mc__conn *c) {
  if (c->open_handles > 0 || c->fiber_running || mc__h2_running(c))
    return;
  mc__h2_free(c);
  mc__tls_conn_free(c);
  mc_buf_free(&c->oq);
  mc_buf_free(&c->oq_inflight);
  mc__h1_reader_free(&c->rd);
  mc_arena_free(c->arena);
  mc_buf_free(&c->pending);
  mc_buf_free(&c->out);
  mc_buf_free(&c->res_body);
  mc_buf_free(&c->body_taken);
  free(c);
}

void mc__conn_free_if_done(mc__conn *c) {
  conn_free_if_done(c);
}

/* ---- the out-queue ------------------------------------------------------ */

int mc__out_append(mc__conn *c, const void *p, size_t n) {
  return mc_buf_append(&c->oq, p, n);
}

size_t mc__out_pending(const mc__conn *c) {
  return c->oq.len + c->oq_inflight.len;
}

static void on_out_write(uv_write_t *w, int status) {
  mc__conn *c = w->data;
  c->oq_writing = false;
  mc_buf_reset(&c->oq_inflight);
  if (c->state == C_CLOSED)
    return;
  if (status < 0) {
    conn_close(c);
    return;
  }
  mc__out_flush(c);
  if (c->state == C_CLOSED)
    return;
  if (mc__out_pending(c) < STREAM_LOW && !mc_waitq_empty(&c->out_room))
    mc_waitq_wake_all(&c->out_room); /* a streamed answer may go on */
  if (mc__out_pending(c))
    return;
  if (c->after_drain) {
    c->after_drain = false;
    conn_after_write(c);
    return;
  }
  if (c->tls)
    mc__tls_drained(c);
  if (c->h2 && c->state != C_CLOSED)
    mc__h2_drained(c);
}

void mc__out_flush(mc__conn *c) {
  if (c->oq_writing || !c->oq.len || c->state == C_CLOSED)
    return;
  uv_buf_t b = uv_buf_init(c->oq.ptr, (unsigned)c->oq.len);
  int k = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
  if (k < 0 && k != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  if (k > 0)
    mc_buf_consume(&c->oq, (size_t)k);
  if (!c->oq.len)
    return;
  /* the socket is full: the rest goes from the other buffer */
  mc_buf tmp = c->oq_inflight;
  c->oq_inflight = c->oq;
  c->oq = tmp;
  mc_buf_reset(&c->oq);
  c->oq_writing = true;
  c->oq_wreq.data = c;
  b = uv_buf_init(c->oq_inflight.ptr, (unsigned)c->oq_inflight.len);
  if (uv_write(&c->oq_wreq, (uv_stream_t *)&c->tcp, &b, 1, on_out_write)) {
    c->oq_writing = false;
    conn_close(c);
  }
}

/* A handler reading the body as it comes learns why it stopped. */
static void body_stopped(mc__conn *c, int err) {
  mc_req *req = &c->req;
  if (req->stream_in && !req->body_done && !req->body_err)
    req->body_err = err;
  mc_waitq_wake_all(&req->body_wait);
}

static void on_handle_closed(uv_handle_t *h) {
  mc__conn *c = h->data;
  c->open_handles--;
  conn_free_if_done(c);
}

static void conn_close(mc__conn *c) {
  if (c->state == C_CLOSED)
    return;
  mc__worker *w = c->w;
  c->state = C_CLOSED;
  if (c->fiber_running) { /* its waits end; the closed state tells why */
    body_stopped(c, MC_ECLOSED);
    mc_waitq_wake_all(&c->out_room);
  }
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  w->nconns--;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  if (w->draining && w->nconns == 0)
    mc__worker_maybe_stop(w);
}

static void on_timer(uv_timer_t *t) {
  mc__conn *c = t->data;
  mc__worker *w = c->w;
  const mc__config *cfg = &w->srv->app->cfg;
  uint64_t now = now_ms(w);
  c->timer_at = 0;
  if (!c->state_deadline)
    return; /* a handler runs: no limit here */
  if (now < c->state_deadline) {
    conn_arm(c, c->state_deadline - now);
    return;
  }
  switch (c->state) {
  case C_BODY:
    /* Progress pushes the deadline; a stalled body times out. A body the
     * handler is slow to take is not the client's fault. */
    if (c->fiber_running && !c->reading) {
      conn_arm(c, cfg->body_timeout_ms);
      return;
    }
    if (now - c->last_read < cfg->body_timeout_ms) {
      conn_arm(c, cfg->body_timeout_ms - (now - c->last_read));
      return;
    }
    if (c->fiber_running) { /* the handler reads it: tell it */
      c->close_after = true;
      conn_stop_reading(c);
      conn_set_state(c, C_BUSY);
      body_stopped(c, MC_ETIMEDOUT);
      return;
    }
    mc__conn_fail(c, 408, "request body not received in time");
    return;
  case C_HEAD:
    mc__conn_fail(c, 408, "request head not received in time");
    return;
  case C_H2:
    /* idle: no stream open and nothing read for the idle timeout */
    if (!mc__h2_idle(c) || now - c->last_read < cfg->idle_timeout_ms) {
      conn_arm(c, cfg->idle_timeout_ms);
      return;
    }
    mc__h2_drain(c);
    conn_close(c);
    return;
  default:
    conn_close(c);
    return;
  }
}

static void conn_arm(mc__conn *c, uint64_t ms) {
  if (!ms)
    ms = 1;
  c->timer_at = now_ms(c->w) + ms;
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  mc__conn *c = h->data;
  buf->base = c->w->readbuf;
  buf->len = sizeof c->w->readbuf;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  mc__conn *c = s->data;
  if (nread == 0)
    return;
  if (nread < 0 && c->h2) {
    mc__h2_cancel_all(c); /* the client is gone: so are its streams */
    conn_close(c);
    return;
  }
  if (nread < 0) {
    if (c->state == C_BUSY || c->state == C_WRITING || c->fiber_running) {
      /* The client is gone, or has said all it will: let the handler
       * finish, then close. */
      c->close_after = true;
      conn_stop_reading(c);
      body_stopped(c, MC_ECLOSED);
      return;
    }
    conn_close(c);
    return;
  }
  c->last_read = now_ms(c->w);
  if (c->state == C_LINGER)
    return; /* draining what the client still sends before we close */
  if (c->tls) {
    int err = mc__tls_read(c, buf->base, (size_t)nread);
    if (err == MC_EUNSUPPORTED) {
      /* a plain request on the HTTPS port: say so in plain HTTP */
      static const char body[] =
          "{\"type\":\"about:blank\",\"title\":\"Bad Request\",\"status\":"
          "400,\"detail\":\"a plain HTTP request was sent to the HTTPS "
          "port\"}";
      char head[200];
      int n = snprintf(head, sizeof head,
                       "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                       "application/problem+json\r\nContent-Length: %zu\r\n"
                       "Connection: close\r\n\r\n",
                       sizeof body - 1);
      uv_buf_t bufs[2] = {uv_buf_init(head, (unsigned)n),
                          uv_buf_init((char *)body, sizeof body - 1)};
      uv_try_write((uv_stream_t *)&c->tcp, bufs, 2);
      conn_close(c);
      return;
    }
    if (err && c->state != C_CLOSED) {
      if (c->h2) {
        mc__h2_cancel_all(c);
        conn_close(c);
      } else if (c->state == C_BUSY || c->state == C_WRITING) {
        c->close_after = true;
        conn_stop_reading(c);
      } else {
        conn_close(c);
      }
    }
    return;
  }
  mc__conn_plain(c, buf->base, (size_t)nread);
}

/* Plaintext from TLS: the reader takes it while a request is being read;
 * while one is served, it waits its turn as pipelined bytes do. */
void mc__conn_plain(mc__conn *c, const char *data, size_t len) {
  if (c->h2) {
    mc__h2_feed(c, data, len);
    return;
  }
  if (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY) {
    conn_feed(c, data, len, false);
    return;
  }
  /* The connection keeps reading while a request is served (stopping and
   * starting costs two epoll_ctl calls a request), up to a cap. */
  if (c->state == C_BUSY || c->state == C_WRITING) {
    if (mc_buf_append(&c->pending, data, len) != 0)
      c->close_after = true;
    if (c->pending.len - c->pending_off >= PENDING_CAP)
      conn_stop_reading(c);
  }
}

void mc__conn_h2_state(mc__conn *c) {
  conn_set_state(c, C_H2);
}

void mc__conn_abort(mc__conn *c) {
  conn_close(c);
}

int mc__conn_send_raw(mc__conn *c, const char *data, size_t len) {
  if (c->tls)
    return mc__tls_send_raw(c, data, len);
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  return uv_try_write((uv_stream_t *)&c->tcp, &b, 1) == (int)len ? 0 : MC_EIO;
}

static void conn_start_reading(mc__conn *c) {
  if (!c->reading && c->state != C_CLOSED) {
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = true;
  }
}

static void conn_stop_reading(mc__conn *c) {
  if (c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

static void on_shutdown(uv_shutdown_t *r, int status) {
  (void)status;
  mc__conn *c = r->data;
  if (c->state != C_CLOSED) {
    conn_set_state(c, C_LINGER);
    conn_start_reading(c);
  }
}

static void conn_after_write(mc__conn *c) {
  if (c->state == C_CLOSED)
    return;
  if (c->close_after) {
    /* Half-close and drain, so unread request bytes do not turn our answer
     * into a reset on the client's side. */
    c->state = C_LINGER;
    c->state_deadline = now_ms(c->w) + 2000;
    conn_stop_reading(c);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
      conn_close(c);
    else
      conn_arm(c, 2000);
    return;
  }
  conn_next(c);
}

static void on_write(uv_write_t *r, int status) {
  mc__conn *c = r->data;
  if (status < 0) {
    conn_close(c);
    return;
  }
  conn_after_write(c);
}

void mc__conn_written(mc__conn *c) {
  conn_after_write(c);
}

/* Sends c->out then c->res_body (unless omit_body), then moves on. */
void mc__conn_write(mc__conn *c, bool omit_body) {
  uv_buf_t bufs[2] = {
      uv_buf_init(c->out.ptr, (unsigned)c->out.len),
      uv_buf_init(c->res_body.ptr, omit_body ? 0 : (unsigned)c->res_body.len)};
  unsigned nb = bufs[1].len ? 2 : 1;
  size_t total = bufs[0].len + bufs[1].len;
  if (c->tls) {
    conn_set_state(c, C_WRITING);
    if (mc__tls_write(c, bufs, nb, c->close_after) != 0)
      conn_close(c);
    return;
  }
  int n = uv_try_write((uv_stream_t *)&c->tcp, bufs, nb);
  if (n < 0 && n != UV_EAGAIN) {
    conn_close(c);
    return;
  }
  size_t done = n > 0 ? (size_t)n : 0;
  if (done == total) {
    conn_after_write(c);
    return;
  }
  /* The socket is full: hand the rest to libuv. */
  unsigned i = 0;
  while (done >= bufs[i].len) {
    done -= bufs[i].len;
    i++;
  }
  bufs[i].base += done;
  bufs[i].len -= (unsigned)done;
  conn_set_state(c, C_WRITING);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + i, nb - i, on_write))
    conn_close(c);
}

/* Readies the connection for its next request once an answer has left. */
static void conn_next(mc__conn *c) {
  if (c->driving) {
    c->again = true;
    return;
  }
  c->driving = true;
  do {
    c->again = false;
    mc__h1_reader_next(&c->rd);
    mc__req_reset(c);
    if (c->w->draining) {
      conn_close(c);
      break;
    }
    conn_set_state(c, C_IDLE);
    if (c->pending_off < c->pending.len) {
      conn_feed(c, c->pending.ptr + c->pending_off,
                c->pending.len - c->pending_off, true);
    } else {
      mc_buf_reset(&c->pending);
      c->pending_off = 0;
      conn_start_reading(c);
    }
  } while (c->again && c->state != C_CLOSED);
  c->driving = false;
}

static void conn_dispatch(mc__conn *c);

/* A route that reads its body as it comes starts at the head. */
static bool streams_body(mc__conn *c) {
  const mc__route_entry *e = c->req.match.entry;
  return e && e->route->stream_body &&
         (c->rd.chunked || c->rd.content_length > 0);
}

static void conn_feed(mc__conn *c, const char *data, size_t len,
                      bool from_pending) {
  /* reading a request; a handler may already run (a streamed body) */
  while (c->state == C_IDLE || c->state == C_HEAD || c->state == C_BODY) {
    if (c->state == C_IDLE) {
      if (len == 0)
        return;
      /* h2c with prior knowledge: the connection opens with the client
       * preface ("PRI * HTTP/2.0 ...") instead of a request */
      if (!c->served && !c->tls && !from_pending && len >= 3 &&
          !memcmp(data, "PRI", 3)) {
        if (mc__h2_start(c) != 0) {
          conn_close(c);
          return;
        }
        conn_set_state(c, C_H2);
        mc__h2_feed(c, data, len);
        return;
      }
      conn_set_state(c, C_HEAD);
      c->req.start_ns = mc_now_ns();
    }
    size_t used = 0;
    mc__h1_event ev = mc__h1_reader_feed(&c->rd, data, len, &used);
    data += used;
    len -= used;
    if (from_pending)
      c->pending_off += used;
    bool streaming = c->req.stream_in;
    switch (ev) {
    case MC_H1_MORE:
      if (streaming) { /* the handler takes it from here */
        if (c->rd.body.len)
          mc_waitq_wake_all(&c->req.body_wait);
        if (c->rd.body.len >= STREAM_HIGH)
          conn_stop_reading(c);
      }
      if (from_pending) { /* all pending consumed: back to the socket */
        mc_buf_reset(&c->pending);
        c->pending_off = 0;
        if (!(streaming && c->rd.body.len >= STREAM_HIGH))
          conn_start_reading(c);
      }
      return;
    case MC_H1_HEAD:
      if (mc__conn_on_head(c) != 0)
        return; /* answered (413, ...) and closing */
      conn_set_state(c, C_BODY);
      if (streams_body(c)) {
        c->rd.stream = true;
        c->req.stream_in = true;
        conn_dispatch(c); /* it may answer before reading a byte */
      }
      continue;
    case MC_H1_ERROR:
      if (streaming) { /* the handler answers; the connection closes */
        c->close_after = true;
        conn_stop_reading(c);
        conn_set_state(c, C_BUSY);
        body_stopped(c, c->rd.status == 413 ? MC_ETOOBIG : MC_EPROTO);
        return;
      }
      mc__conn_fail(c, c->rd.status, c->rd.reason);
      return;
    case MC_H1_DONE:
      if (!from_pending && len) {
        /* Pipelined bytes wait in the connection until their turn. */
        if (mc_buf_append(&c->pending, data, len) != 0) {
          mc__conn_fail(c, 431, "too much pipelined data");
          return;
        }
      }
      conn_set_state(c, C_BUSY);
      if (streaming) {
        c->req.body_done = true;
        mc_waitq_wake_all(&c->req.body_wait);
      } else {
        conn_dispatch(c);
      }
      return;
    }
  }
}

/* ---- streamed answers and bodies --------------------------------------- */

int mc__conn_stream_send(mc__conn *c, const char *data, size_t len) {
  if (c->state == C_CLOSED)
    return MC_ECLOSED;
  if (c->tls)
    return mc__tls_send_raw(c, data, len) == 0 ? 0 : MC_ECLOSED;
  if (mc__out_append(c, data, len) != 0)
    return MC_ENOMEM;
  mc__out_flush(c);
  return c->state == C_CLOSED ? MC_ECLOSED : 0;
}

int mc__conn_stream_room(mc__conn *c, size_t high) {
  uint64_t limit = c->w->srv->app->cfg.write_timeout_ms;
  while (c->state != C_CLOSED && mc__out_pending(c) > high) {
    int err = mc_waitq_wait(&c->out_room, limit ? limit : MC_WAIT_FOREVER);
    if (err == MC_ETIMEDOUT) { /* the client stopped reading */
      conn_close(c);
      return err;
    }
    if (err)
      return err;
  }
  return c->state == C_CLOSED ? MC_ECLOSED : 0;
}

void mc__conn_stream_done(mc__conn *c) {
  if (c->state == C_CLOSED)
    return;
  if (c->tls) {
    if (mc__tls_write(c, NULL, 0, c->close_after) != 0)
      conn_close(c);
    return;
  }
  if (mc__out_pending(c))
    c->after_drain = true;
  else
    conn_after_write(c);
}

void mc__conn_body_taken(mc__conn *c) {
  if (c->state == C_BODY && !c->reading && c->pending_off >= c->pending.len) {
    c->last_read = now_ms(c->w);
    conn_start_reading(c);
  }
}

static void on_fiber_exit(void *arg) {
  mc__conn *c = arg;
  c->fiber_running = false;
  c->fiber = NULL;
  c->w->in_flight--;
  if (c->state == C_CLOSED) {
    conn_free_if_done(c);
    return;
  }
  mc__conn_respond(c);
}

static void fiber_main(void *arg) {
  mc__req_run(arg);
}

static void conn_dispatch(mc__conn *c) {
  mc_fiber *f;
  c->served++;
  mc__req_begin(c);
  if (mc__fiber_new(&f, fiber_main, &c->req) != 0) {
    mc__conn_fail(c, 503, "out of fibers");
    return;
  }
  mc__fiber_set_deadline(f, mc__req_deadline(&c->req));
  c->fiber_running = true;
  c->fiber = f;
  c->w->in_flight++;
  mc__fiber_set_data(f, &c->req);
  mc__fiber_on_exit(f, on_fiber_exit, c);
  mc__fiber_resume(f);
}

static void conn_new(mc__worker *w, int fd) {
  const mc__config *cfg = &w->srv->app->cfg;
  mc__conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  mc__h1_limits lim = {.max_head = (uint32_t)cfg->max_head,
                       .max_headers = (uint32_t)cfg->max_headers};
  if (mc__h1_reader_init(&c->rd, &lim) != 0 ||
      mc_arena_new(&c->arena, 4096, 0) != 0) {
    mc__h1_reader_free(&c->rd);
    free(c);
    close(fd);
    return;
  }
  c->w = w;
  uv_tcp_init(&w->loop, &c->tcp);
  uv_timer_init(&w->loop, &c->timer);
  c->open_handles = 2;
  c->tcp.data = c;
  c->timer.data = c;
  if (uv_tcp_open(&c->tcp, fd) != 0) {
    close(fd);
    c->state = C_IDLE;
    c->next = w->conns;
    if (w->conns)
      w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  mc_buf_init(&c->pending, 0);
  mc_buf_init(&c->oq, 0);
  mc_buf_init(&c->oq_inflight, 0);
  mc_buf_init(&c->out, 0);
  mc_buf_init(&c->res_body, MC__RES_BODY_LIMIT);
  mc_buf_init(&c->body_taken, 0);
  mc__req_init(c);
  c->next = w->conns;
  if (w->conns)
    w->conns->prev = c;
  w->conns = c;
  w->nconns++;
  w->accepted++;
  conn_set_state(c, C_IDLE);
  if (w->srv->app->tls_ctx) {
    if (mc__tls_conn_new(c, w->srv->app->tls_ctx) != 0) {
      conn_close(c);
      return;
    }
    /* the handshake and the first request head get the head's time */
    c->state_deadline = now_ms(w) + cfg->header_timeout_ms;
    conn_arm(c, cfg->header_timeout_ms);
  }
  conn_start_reading(c);
}

/* ---- accepting -------------------------------------------------------- */

static void on_listen_readable(uv_poll_t *p, int status, int events);

static void on_backoff(uv_timer_t *t) {
  mc__worker *w = t->data;
  if (!w->draining && w->listen_fd >= 0)
    uv_poll_start(&w->poll, UV_READABLE, on_listen_readable);
}

static void accept_some(mc__worker *w, int max) {
  const mc__config *cfg = &w->srv->app->cfg;
  for (int i = 0; i < max; i++) {
    int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      /* Out of descriptors or memory: stop accepting for a moment instead
       * of spinning; connections wait in the backlog. */
      w->accept_errors++;
      if (mc_log_enabled(MC_LOG_WARN) &&
          now_ms(w) - w->last_accept_warn > 5000) {
        w->last_accept_warn = now_ms(w);
        MC_LOG(MC_LOG_WARN, "accept failed; backing off",
               MC_LOG_CSTR("error", strerror(errno)),
               MC_LOG_INT("worker", w->id));
      }
      uv_poll_stop(&w->poll);
      uv_timer_start(&w->backoff, on_backoff, 100, 0);
      return;
    }
    if (cfg->max_connections && w->nconns >= cfg->max_connections) {
      close(fd);
      w->rejected++;
      continue;
    }
    conn_new(w, fd);
  }
}

static void on_listen_readable(uv_poll_t *p, int status, int events) {
  (void)events;
  mc__worker *w = p->data;
  if (status < 0)
    return;
  accept_some(w, 64);
}

/* ---- workers ------------------------------------------------------------ */

static void update_date(mc__worker *w) {
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  w->date_len =
      strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static void on_tick(uv_timer_t *t) {
  mc__worker *w = t->data;
  update_date(w);
  mc_fiber_stats_get(&w->fstats);
  /* glibc keeps what a burst of connections freed in this thread's arena;
   * once the burst is over, hand it back so idle RSS stays small. */
  if (w->accepted - w->accepted_at_trim >= 256 && w->nconns < 32) {
    w->accepted_at_trim = w->accepted;
    malloc_trim(64 * 1024);
  }
}

static void on_flush(uv_check_t *h) {
  (void)h;
  mc_log_flush();
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void mc__worker_maybe_stop(mc__worker *w) {
  if (w->draining && w->nconns == 0)
    uv_stop(&w->loop);
}

/* Past the shutdown deadline: cancel what still runs, so handlers unwind
 * through their own error paths and answer (503), and close connections
 * that have no handler running. A second, short deadline then stops the
 * loop whatever is left. */
static void on_drain_deadline(uv_timer_t *t) {
  mc__worker *w = t->data;
  if (w->past_deadline) {
    MC_LOG(MC_LOG_WARN, "handlers did not finish after being canceled",
           MC_LOG_INT("worker", w->id), MC_LOG_INT("connections", w->nconns));
    uv_stop(&w->loop);
    return;
  }
  w->past_deadline = true;
  if (w->nconns)
    MC_LOG(MC_LOG_WARN, "shutdown deadline passed; canceling requests",
           MC_LOG_INT("worker", w->id), MC_LOG_INT("connections", w->nconns));
  for (mc__conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (c->h2 && mc__h2_running(c))
      mc__h2_cancel_all(c);
    else if (c->fiber_running)
      mc__fiber_cancel(c->fiber);
    else
      conn_close(c);
  }
  if (w->nconns)
    uv_timer_start(&w->drain, on_drain_deadline, 1000, 0);
  mc__worker_maybe_stop(w);
}

static void on_wake(uv_async_t *a) {
  mc__worker *w = a->data;
  if (w->draining)
    return;
  w->draining = true;
  /* Take what is already in our accept queue, then stop listening. */
  if (w->listen_fd >= 0) {
    accept_some(w, 1 << 20);
    uv_poll_stop(&w->poll);
    uv_timer_stop(&w->backoff);
    close(w->listen_fd);
    w->listen_fd = -1;
  }
  for (mc__conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (c->h2)
      mc__h2_drain(c); /* GOAWAY; closes once its streams are done */
    else if (c->state == C_IDLE)
      conn_close(c);
    else
      c->close_after = true; /* answered with Connection: close */
  }
  uv_timer_start(&w->drain, on_drain_deadline,
                 w->srv->app->cfg.shutdown_timeout_ms, 0);
  mc__worker_maybe_stop(w);
}

/* Cancels the fibers still alive on this thread (background work that
 * hooks started) and runs loop until they have unwound or ms pass. */
/* Looked at before the loop polls: fibers often finish in the closing
 * phase, just after a check handle would have run, and the poll would then
 * sleep until the deadline. */
static void on_fibers_check(uv_prepare_t *c) {
  if (mc__sched_running() == 0)
    uv_stop(c->loop);
}
static void on_fibers_deadline(uv_timer_t *t) {
  uv_stop(t->loop);
}

static void finish_fibers(uv_loop_t *loop, uint64_t ms) {
  mc__sched_cancel_all();
  if (mc__sched_running() == 0)
    return;
  uv_prepare_t check;
  uv_timer_t deadline;
  uv_prepare_init(loop, &check);
  uv_prepare_start(&check, on_fibers_check);
  uv_timer_init(loop, &deadline);
  uv_timer_start(&deadline, on_fibers_deadline, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&check, NULL);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  if (mc__sched_running())
    MC_LOG(MC_LOG_WARN, "fibers did not finish after being canceled",
           MC_LOG_INT("fibers", mc__sched_running()));
}

static void worker_main(void *arg) {
  mc__worker *w = arg;
  mc_app *app = w->srv->app;
  mc__sched_init(&w->loop, (size_t)app->cfg.fiber_stack, 0);
  mc_log_thread_buffered(true);
  update_date(w);
  mc_fiber_stats_get(&w->fstats);
  uv_poll_init(&w->loop, &w->poll, w->listen_fd);
  w->poll.data = w;
  uv_poll_start(&w->poll, UV_READABLE, on_listen_readable);
  uv_timer_init(&w->loop, &w->backoff);
  w->backoff.data = w;
  uv_timer_init(&w->loop, &w->tick);
  w->tick.data = w;
  uv_timer_start(&w->tick, on_tick, 1000, 1000);
  uv_timer_init(&w->loop, &w->drain);
  w->drain.data = w;
  uv_check_init(&w->loop, &w->flush);
  uv_check_start(&w->flush, on_flush);
  for (size_t i = 0; i < app->nhooks; i++)
    if (app->hooks[i]->worker_start)
      app->hooks[i]->worker_start(app, w->id, app->hooks[i]->ud);
  uv_barrier_wait(&w->srv->ready);

  uv_run(&w->loop, UV_RUN_DEFAULT);

  /* Stopped: hooks, then the fibers hooks left, then every handle. */
  for (size_t i = app->nhooks; i-- > 0;)
    if (app->hooks[i]->worker_stop)
      app->hooks[i]->worker_stop(app, w->id, app->hooks[i]->ud);
  for (mc__conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    if (c->fiber_running)
      mc__fiber_cancel(c->fiber);
    conn_close(c);
  }
  finish_fibers(&w->loop, 1000);
  mc_log_flush();
  mc__sched_close();
  uv_walk(&w->loop, close_walk, NULL);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  mc_log_thread_buffered(false);
  if (w->listen_fd >= 0)
    close(w->listen_fd);
  __atomic_add_fetch(&w->srv->stopped_workers, 1, __ATOMIC_ACQ_REL);
  uv_async_send(&w->srv->worker_exit);
}

/* ---- the server --------------------------------------------------------- */

static void wake_workers(mc__server *srv) {
  if (srv->workers_woken)
    return;
  srv->workers_woken = true;
  uv_timer_stop(&srv->hooks_deadline);
  for (int i = 0; i < srv->nworkers; i++)
    uv_async_send(&srv->workers[i].wake);
}

/* SIGTERM: the draining hooks (deregistering, say) run while the workers
 * still serve; then the workers stop accepting and drain. */
static void drain_hooks(void *arg) {
  mc__server *srv = arg;
  mc_app *app = srv->app;
  for (size_t i = 0; i < app->nhooks && !mc_fiber_canceled(); i++)
    if (app->hooks[i]->draining)
      app->hooks[i]->draining(app, app->hooks[i]->ud);
  wake_workers(srv);
}

static void on_hooks_deadline(uv_timer_t *t) {
  mc__server *srv = t->data;
  MC_LOG(MC_LOG_WARN, "draining hooks passed the shutdown timeout");
  mc__sched_cancel_all();
  wake_workers(srv);
}

static void on_signal(uv_signal_t *s, int signum) {
  mc__server *srv = s->data;
  if (srv->draining)
    return;
  MC_LOG(MC_LOG_INFO, "shutting down",
         MC_LOG_CSTR("signal", signum == SIGTERM ? "SIGTERM" : "SIGINT"));
  /* The watchers stay: a second signal is ignored here instead of killing
   * the process with the default action mid-drain. */
  __atomic_store_n(&srv->draining, true, __ATOMIC_RELEASE);
  uv_timer_start(&srv->hooks_deadline, on_hooks_deadline,
                 srv->app->cfg.shutdown_timeout_ms, 0);
  if (mc_spawn(drain_hooks, srv) != 0)
    wake_workers(srv);
}

/* SIGHUP: the reload hooks, one run at a time; a SIGHUP during a run is
 * not queued (the run reads the newest state anyway). */
static void reload_hooks(void *arg) {
  mc__server *srv = arg;
  mc_app *app = srv->app;
  for (size_t i = 0; i < app->nhooks && !mc_fiber_canceled(); i++)
    if (app->hooks[i]->reload)
      app->hooks[i]->reload(app, app->hooks[i]->ud);
  srv->reloading = false;
}

static void on_sighup(uv_signal_t *s, int signum) {
  mc__server *srv = s->data;
  if (srv->draining || srv->reloading)
    return;
  MC_LOG(MC_LOG_INFO, "reloading", MC_LOG_CSTR("signal", "SIGHUP"));
  srv->reloading = true;
  if (mc_spawn(reload_hooks, srv) != 0)
    srv->reloading = false;
}

static void ready_hooks(void *arg) {
  mc__server *srv = arg;
  mc_app *app = srv->app;
  for (size_t i = 0; i < app->nhooks && !mc_fiber_canceled(); i++)
    if (app->hooks[i]->ready)
      app->hooks[i]->ready(app, app->hooks[i]->ud);
}

static void on_worker_exit(uv_async_t *a) {
  mc__server *srv = a->data;
  if (__atomic_load_n(&srv->stopped_workers, __ATOMIC_ACQUIRE) == srv->nworkers)
    uv_stop(&srv->loop);
}

bool mc__server_draining(const mc_app *app) {
  return app->server &&
         __atomic_load_n(&app->server->draining, __ATOMIC_ACQUIRE);
}

int mc__server_run(mc_app *app) {
  mc__config *cfg = &app->cfg;
  mc__server *srv = calloc(1, sizeof *srv);
  if (!srv)
    return MC_ENOMEM;
  srv->app = app;
  app->server = srv;
  struct sockaddr_storage ss;
  int port;
  if (mc__parse_listen(cfg->listen, &ss, srv->host, sizeof srv->host, &port)) {
    MC_LOG(MC_LOG_ERROR, "bad --listen address",
           MC_LOG_CSTR("listen", cfg->listen));
    free(srv);
    app->server = NULL;
    return MC_EINVAL;
  }
  int n =
      cfg->workers > 0 ? (int)cfg->workers : (int)uv_available_parallelism();
  if (n < 1)
    n = 1;
  if (app->info.max_workers > 0 && n > app->info.max_workers) {
    if (cfg->workers > app->info.max_workers)
      MC_LOG(MC_LOG_WARN, "this program runs on fewer workers",
             MC_LOG_INT("asked", cfg->workers),
             MC_LOG_INT("workers", app->info.max_workers));
    n = app->info.max_workers;
  }
  srv->workers = calloc((size_t)n, sizeof *srv->workers);
  if (!srv->workers) {
    free(srv);
    app->server = NULL;
    return MC_ENOMEM;
  }
  srv->nworkers = n;
  int err = 0;
  int taken = port ? port_taken(&ss, port) : 0;
  if (taken) {
    MC_LOG(MC_LOG_ERROR, "cannot listen", MC_LOG_CSTR("listen", cfg->listen),
           MC_LOG_CSTR("error", strerror(-taken)));
    free(srv->workers);
    free(srv);
    app->server = NULL;
    return MC_ESYS;
  }
  for (int i = 0; i < n; i++) {
    mc__worker *w = &srv->workers[i];
    w->srv = srv;
    w->id = i;
    w->listen_fd = -1;
    int fd = listen_socket(&ss, &port);
    if (fd < 0) {
      MC_LOG(MC_LOG_ERROR, "cannot listen", MC_LOG_CSTR("listen", cfg->listen),
             MC_LOG_CSTR("error", strerror(-fd)));
      err = MC_ESYS;
      break;
    }
    w->listen_fd = fd;
    if (mc__metrics_worker_init(w) != 0) {
      err = MC_ENOMEM;
      break;
    }
  }
  if (err) {
    for (int i = 0; i < n; i++) {
      if (srv->workers[i].listen_fd >= 0)
        close(srv->workers[i].listen_fd);
      mc__metrics_worker_free(&srv->workers[i]);
    }
    free(srv->workers);
    free(srv);
    app->server = NULL;
    return err;
  }
  srv->port = port;

  uv_loop_init(&srv->loop);
  mc__sched_init(&srv->loop, 0, 8);
  uv_signal_init(&srv->loop, &srv->sigterm);
  uv_signal_init(&srv->loop, &srv->sigint);
  srv->sigterm.data = srv->sigint.data = srv;
  uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
  uv_signal_start(&srv->sigint, on_signal, SIGINT);
  /* SIGHUP reloads where the app can, and is ignored where it cannot,
   * rather than ending the process. */
  uv_signal_init(&srv->loop, &srv->sighup);
  srv->sighup.data = srv;
  uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
  uv_timer_init(&srv->loop, &srv->hooks_deadline);
  srv->hooks_deadline.data = srv;
  uv_async_init(&srv->loop, &srv->worker_exit, on_worker_exit);
  srv->worker_exit.data = srv;
  signal(SIGPIPE, SIG_IGN);
  uv_barrier_init(&srv->ready, (unsigned)n + 1);
  for (int i = 0; i < n; i++) {
    mc__worker *w = &srv->workers[i];
    uv_loop_init(&w->loop);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_thread_options_t opts = {.flags = UV_THREAD_HAS_STACK_SIZE,
                                .stack_size = 256 * 1024};
    uv_thread_create_ex(&w->thread, &opts, worker_main, w);
  }
  uv_barrier_wait(&srv->ready);
  uv_barrier_destroy(&srv->ready);
  int is6 = ss.ss_family == AF_INET6;
  printf("listening on %s://%s%s%s:%d\n", app->tls_ctx ? "https" : "http",
         is6 ? "[" : "", srv->host, is6 ? "]" : "", port);
  fflush(stdout);
  MC_LOG(MC_LOG_INFO, "listening", MC_LOG_CSTR("host", srv->host),
         MC_LOG_INT("port", port), MC_LOG_INT("workers", n));
  if (app->nhooks)
    mc_spawn(ready_hooks, srv);

  uv_run(&srv->loop, UV_RUN_DEFAULT); /* until every worker has stopped */

  for (int i = 0; i < n; i++)
    uv_thread_join(&srv->workers[i].thread);
  for (int i = 0; i < n; i++) {
    uv_loop_close(&srv->workers[i].loop);
    mc__metrics_worker_free(&srv->workers[i]);
  }
  finish_fibers(&srv->loop, 2000);
  mc__sched_close();
  /* Closing the signal watchers gives SIGTERM back its default action; a
   * second SIGTERM during the teardown (a supervisor repeating itself)
   * must not kill a process that is about to exit 0. */
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, NULL);
  uv_walk(&srv->loop, close_walk, NULL);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  pthread_sigmask(SIG_UNBLOCK, &term, NULL);
  uv_loop_close(&srv->loop);
  MC_LOG(MC_LOG_INFO, "stopped");
  free(srv->workers);
  free(srv);
  app->server = NULL;
  return 0;
}
