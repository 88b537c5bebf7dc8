/* microc HTTP client: straight-line outbound calls from fibers.
 *
 *   mc_http_response res;
 *   int err = mc_http_do(&(mc_http_request){.method = "GET",
 *                          .url = "http://127.0.0.1:8001/items/7"},
 *                        mc_req_arena(req), &res);
 *   if (err)
 *     return mc_res_problemf(req, 502, "items: %s", mc_strerror(err));
 *
 * The call suspends the calling fiber, never the thread. Connections are
 * kept alive in a pool per worker thread and per host:port. A call ends by
 * its own timeout and by the fiber's deadline (see mc_deadline), whichever
 * comes first, and tells the callee how much time is left in the
 * X-Request-Timeout-Ms header. Inside a request's handler the W3C trace
 * context and the request id are passed on (traceparent, X-Request-Id).
 *
 * Only http:// URLs are spoken for now. */
#ifndef MICROC_CLIENT_H
#define MICROC_CLIENT_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_header {
  mc_slice name;
  mc_slice value;
} mc_header;

/* A request body given in pieces: set mc_http_request.body_source (or
 * mc_call.body_source) instead of body. The source, and what ud points to,
 * must stay valid until the exchange is over: until mc_http_do returns
 * for an answer held whole, until mc_http_close for a streamed one. */
typedef struct mc_body_source {
  /* Puts the next piece of the body in *chunk (valid until the next call,
   * or the end of the exchange after the last call), an empty piece at the
   * end. Called on a fiber of the exchange's own, so the answer can come
   * and be read while the body goes out; it may suspend that fiber, which
   * is canceled when the exchange ends early. Returns 0, or an MC_E* code,
   * which ends the exchange with that error (over HTTP/2 the stream is
   * reset with CANCEL; over HTTP/1.1 the connection is closed). */
  int (*read)(void *ud, mc_slice *chunk);
  void *ud;
  /* When known (>= 0), sent as Content-Length, and a source that gives
   * more or fewer bytes fails the exchange with MC_EINVAL; -1: unknown
   * (chunked over HTTP/1.1). */
  int64_t length;
} mc_body_source;

/* A streamed answer's state (opaque). */
typedef struct mc__http_stream mc__http_stream;

typedef struct mc_http_request {
  const char *method; /* NULL: "GET" */
  /* Either a URL ("http://host:port/path?query", host may be [v6]) ... */
  const char *url;
  /* ... or its parts, when url is NULL: */
  mc_slice host;   /* a name or an IP address literal */
  int port;        /* 0: 80 */
  mc_slice target; /* "/path?query"; empty: "/" */
  /* Extra request headers. Host, Content-Length, Connection and
   * Transfer-Encoding are the client's to set; given ones are refused with
   * MC_EINVAL, as are names holding CR, LF, NUL or a colon, and values
   * holding control characters other than tab (RFC 9110 §5.5). */
  const mc_header *headers;
  size_t nheaders;
  mc_slice body;
  /* The body in pieces, instead of body (see mc_body_source). The body
   * goes on after the answer's head (a peer may answer as it reads, piece
   * by piece: full duplex), and stops once the whole answer is in; over
   * HTTP/1.1 a connection whose body was cut short is not reused. */
  const mc_body_source *body_source;
  /* The answer's body is read in pieces with mc_http_read instead of being
   * held whole; max_body does not apply to it. timeout_ms then bounds the
   * wait for the head and each wait for a piece after it; the fiber's
   * deadline still bounds everything. */
  bool stream;
  uint64_t timeout_ms;         /* the whole exchange; 0: 30 s */
  uint64_t connect_timeout_ms; /* 0: 5 s (and never past timeout_ms) */
  size_t max_body;             /* cap on the answer's body; 0: 16 MiB */
  /* Sent when headers has no User-Agent: NULL sends "microc/VERSION",
   * "" none (a proxy passing a request on as its client sent it). */
  const char *user_agent;
} mc_http_request;

typedef struct mc_http_response {
  int status;
  mc_header *headers; /* in arena memory */
  size_t nheaders;
  mc_slice body;       /* freed with the arena */
  mc_header *trailers; /* HTTP/2 answers (mc_call.h2) only; in the arena */
  size_t ntrailers;
  /* Non-NULL when the body is to be read with mc_http_read (the request
   * asked for .stream); body is then empty. */
  mc__http_stream *stream;
} mc_http_response;

/* Sends req and waits for the whole answer, which is put in res with its
 * memory in `a`. Any HTTP status is a success (0): look at res->status.
 *
 * Returns 0; MC_EINVAL (bad URL or header, https); MC_ESTATE outside a
 * fiber; MC_ENAME (the host name does not resolve); MC_ECONNREFUSED;
 * MC_ECONNRESET; MC_ECLOSED (the peer closed before a complete answer);
 * MC_EPROTO (the answer is not HTTP/1.x as it should be); MC_ETOOBIG (the
 * answer is over a cap); MC_ETIMEDOUT (the timeout or the deadline passed);
 * MC_ECANCELED (the fiber was canceled); MC_ENOMEM.
 *
 * A pooled connection that turns out to be closed by the peer before it
 * answered is replaced by a fresh one, once, for idempotent methods. */
MC_EXTERN int mc_http_do(const mc_http_request *req, mc_arena *a,
                         mc_http_response *res);

/* A streamed answer's next piece of body in *chunk (valid until the next
 * call), an empty piece at the end; HTTP/2 trailers are in res->trailers
 * after the end. Suspends the fiber. At most about 64 KiB of the answer
 * wait unread: past that the peer is held back (HTTP/1.1: the socket is
 * not read; HTTP/2: flow control).
 *
 * Returns 0; MC_ETIMEDOUT (no piece within the request's timeout_ms, or
 * the fiber's deadline passed); MC_ECONNRESET; MC_ECLOSED (the peer closed
 * before the end: the body is truncated); MC_EPROTO; MC_ECANCELED; MC_EINVAL
 * when res has no open stream; or the body source's error (HTTP/2). */
MC_EXTERN int mc_http_read(mc_http_response *res, mc_slice *chunk);

/* Done with a streamed answer: its connection returns to the pool if the
 * body was read to the end, and is closed otherwise (over HTTP/2 the
 * stream is reset instead, and the connection goes on with its others). Over
 * HTTP/2 a body source still being read is canceled and waited for (from a
 * fiber). Idempotent, and a no-op on answers that are not streamed; the arena
 * the answer lives in calls it when freed, so a caller that forgets leaks
 * nothing (but should not count on that: outside a fiber a running body
 * source is canceled and not waited for). Sets res->stream to NULL. */
MC_EXTERN void mc_http_close(mc_http_response *res);

/* The first header of the answer called name (case-insensitive), or
 * {NULL,0}. */
MC_EXTERN mc_slice mc_http_header(const mc_http_response *res, mc_slice name);

/* URL parts, as slices of the text given. */
typedef struct mc_url {
  mc_slice scheme; /* "http" */
  mc_slice host;   /* without brackets for IPv6 */
  int port;        /* the given one, or the scheme's */
  mc_slice target; /* path and query; "/" when empty */
} mc_url;

/* Parses an absolute http:// or https:// URL. MC_EINVAL. */
MC_EXTERN int mc_url_parse(mc_slice url, mc_url *out);

/* Whether a method may be sent twice with the effect of once (RFC 9110):
 * GET, HEAD, OPTIONS, TRACE, PUT, DELETE. */
MC_EXTERN bool mc_http_idempotent(mc_slice method);

/* Whether a TCP connection to host:port can be made within timeout_ms (and
 * the fiber's deadline); the connection is closed at once. Suspends the
 * fiber. Returns 0, MC_ECONNREFUSED, MC_ETIMEDOUT, MC_ENAME, MC_ECANCELED,
 * MC_ESTATE outside a fiber, MC_ENOMEM. */
MC_EXTERN int mc_tcp_probe(mc_slice host, int port, uint64_t timeout_ms);

/* Counters of this thread's connection pool, for /metrics. */
typedef struct mc_http_pool_stats {
  uint64_t opened;  /* connections made */
  uint64_t reused;  /* exchanges on a pooled connection */
  uint64_t retried; /* stale pooled connections replaced */
  uint32_t idle;    /* pooled now */
} mc_http_pool_stats;
MC_EXTERN void mc_http_pool_stats_get(mc_http_pool_stats *out);

#ifdef __cplusplus
}
#endif
#endif
