/* Server, worker and connection state, shared by server.c (I/O) and
 * request.c (what a request does). */
#ifndef MICROC_SERVER_INT_H
#define MICROC_SERVER_INT_H

#include <sys/socket.h>

#include "http/http_int.h"

enum {
  C_IDLE,
  C_HEAD,
  C_BODY,
  C_BUSY,
  C_WRITING,
  C_LINGER,
  C_H2, /* HTTP/2: streams come and go; nghttp2 keeps their state */
  C_CLOSED
};

struct mc__metrics;
struct ssl_ctx_st;
typedef struct mc__tls mc__tls;
typedef struct mc__h2 mc__h2;

struct mc__worker {
  struct mc__server *srv;
  int id;
  uv_loop_t loop;
  uv_thread_t thread;
  int listen_fd;
  uv_poll_t poll;
  uv_timer_t backoff, tick, drain;
  uv_async_t wake;
  uv_check_t flush;
  bool draining;
  bool past_deadline; /* in-flight fibers have been canceled */
  char date[40];
  size_t date_len;
  mc__conn *conns;
  uint32_t nconns;
  uint32_t in_flight;
  uint64_t accepted, rejected, accept_errors, last_accept_warn;
  uint64_t accepted_at_trim;
  mc_fiber_stats fstats;
  struct mc__metrics *metrics;
  char readbuf[65536];
  char plainbuf[16384]; /* one TLS record's plaintext */
};

typedef struct mc__server {
  mc_app *app;
  mc__worker *workers;
  int nworkers;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  bool reloading;            /* the reload hooks are running */
  uv_timer_t hooks_deadline; /* draining hooks may take this long */
  uv_async_t worker_exit;    /* a worker has stopped */
  int stopped_workers;
  bool workers_woken;
  uv_barrier_t ready;
  bool draining;
  char host[64];
  int port;
} mc__server;

struct mc__conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  mc__worker *w;
  mc__conn *prev, *next;
  mc__h1_reader rd;
  mc_arena *arena;
  mc_req req;
  mc_buf pending; /* pipelined bytes not parsed yet */
  size_t pending_off;
  mc_buf out;      /* status line and headers of the answer */
  mc_buf res_body; /* body of the answer */
  mc_fiber *fiber; /* the request's, while fiber_running */
  uv_write_t wreq;
  uv_shutdown_t sreq;
  int state;
  uint64_t state_since, last_read;
  uint64_t state_deadline; /* loop ms when this state times out; 0: never */
  uint64_t timer_at;       /* loop ms the timer fires at; 0: not armed */
  int open_handles;
  bool reading, fiber_running, close_after, driving, again;
  mc__tls *tls; /* NULL: plain TCP */
  mc__h2 *h2;   /* NULL: HTTP/1.x */
  /* bytes for the socket outside the HTTP/1 answer path (TLS records,
   * HTTP/2 frames): a queue, and a buffer of its own for what libuv is
   * writing, so a write under way never sees its memory move */
  mc_buf oq, oq_inflight;
  uv_write_t oq_wreq;
  bool oq_writing;
  bool after_drain;  /* a streamed answer ends once the out-queue drains */
  mc_waitq out_room; /* a streamed answer's writer, waiting for room */
  mc_buf body_taken; /* the request body's piece the handler holds */
  uint32_t served;   /* requests dispatched on this connection */
  char peer[46];     /* the client's address, once asked for */
  uint8_t peer_len;
};

int mc__parse_listen(const char *spec, struct sockaddr_storage *ss, char *host,
                     size_t hostcap, int *port);
void mc__conn_write(mc__conn *c, bool omit_body);
/* Bytes outside an answer (100 Continue), through TLS when it is on. */
int mc__conn_send_raw(mc__conn *c, const char *data, size_t len);
/* For tls.c: plaintext that arrived, the answer has left, give up. */
void mc__conn_plain(mc__conn *c, const char *data, size_t len);
void mc__conn_written(mc__conn *c);
void mc__conn_abort(mc__conn *c);
void mc__conn_h2_state(mc__conn *c);

void mc__conn_free_if_done(mc__conn *c);
/* The out-queue: mc__out_append adds bytes, mc__out_flush writes what it
 * can now and the rest through libuv (closing the connection on a write
 * error); when a write libuv took finishes and nothing is left,
 * mc__tls_drained and mc__h2_drained are told. */
int mc__out_append(mc__conn *c, const void *p, size_t n);
void mc__out_flush(mc__conn *c);
size_t mc__out_pending(const mc__conn *c);
void mc__tls_drained(mc__conn *c);
void mc__h2_drained(mc__conn *c);

/* h2.c */
/* Turns the connection to HTTP/2 (after the ALPN h2 or the h2c preface). */
int mc__h2_start(mc__conn *c);
void mc__h2_free(mc__conn *c);
/* Bytes from the client (plaintext). */
void mc__h2_feed(mc__conn *c, const char *data, size_t len);
/* GOAWAY: no new streams; the connection closes when the last one ends. */
void mc__h2_drain(mc__conn *c);
void mc__h2_cancel_all(mc__conn *c);
uint32_t mc__h2_running(const mc__conn *c);
bool mc__h2_idle(const mc__conn *c);
bool mc__tls_busy(const mc__conn *c);

/* tls.c */
int mc__tls_ctx_new(const char *cert, const char *key, struct ssl_ctx_st **out,
                    char *err, size_t errcap);
void mc__tls_ctx_free(struct ssl_ctx_st *ctx);
int mc__tls_conn_new(mc__conn *c, struct ssl_ctx_st *ctx);
void mc__tls_conn_free(mc__conn *c);
/* Ciphertext in; plaintext goes to mc__conn_plain. MC_EUNSUPPORTED (plain
 * HTTP), MC_EPROTO (not TLS, a failed handshake), MC_ECLOSED
 * (close_notify), MC_ENOMEM. */
int mc__tls_read(mc__conn *c, const char *data, size_t len);
/* Encrypts an answer and sends it; mc__conn_written follows once it has
 * left. close_after adds close_notify. */
int mc__tls_write(mc__conn *c, const uv_buf_t *bufs, unsigned n,
                  bool close_after);
int mc__tls_send_raw(mc__conn *c, const char *data, size_t len);
void mc__worker_maybe_stop(mc__worker *w);

/* Streamed answers over HTTP/1.x (request.c builds, server.c sends). */
/* Queues bytes of a streamed answer (through TLS when it is on). */
int mc__conn_stream_send(mc__conn *c, const char *data, size_t len);
/* Waits while more than high bytes wait for the socket. */
int mc__conn_stream_room(mc__conn *c, size_t high);
/* The streamed answer is complete: move on once it has left. */
void mc__conn_stream_done(mc__conn *c);
/* The handler took the body's pieces: read more of it. */
void mc__conn_body_taken(mc__conn *c);

/* Streamed answers and bodies over HTTP/2 (h2.c). */
int mc__h2_res_begin(mc_req *req);
int mc__h2_res_write(mc_req *req, mc_slice data);
int mc__h2_res_end(mc_req *req);
void mc__h2_body_taken(mc_req *req, size_t n);

/* request.c: the parts both protocols share */
/* Routes a request whose head is in req->rd; returns its body cap. */
size_t mc__req_on_head(mc_req *req);
/* Request id and trace context, from the head. */
void mc__req_begin_req(mc_req *req);
/* Metrics and the access log line of an answered request. */
void mc__req_observe(mc_req *req, uint64_t dur);
bool mc__status_has_body(int status);
/* request.c */
void mc__req_init(mc__conn *c);
void mc__req_begin(mc__conn *c);
void mc__req_reset(mc__conn *c);
/* The instant the request's outbound calls must end by (0: none). */
uint64_t mc__req_deadline(mc_req *req);
/* Head parsed: routes, sets the body limit, answers 100-continue. Nonzero
 * when it already answered (413) and the connection is closing. */
int mc__conn_on_head(mc__conn *c);
/* Answers a request that never reached a handler and closes afterwards. */
void mc__conn_fail(mc__conn *c, int status, const char *detail);
/* Serializes and sends the answer of the finished request. */
void mc__conn_respond(mc__conn *c);

/* metrics.c */
int mc__metrics_worker_init(mc__worker *w);
void mc__metrics_worker_free(mc__worker *w);

#endif
