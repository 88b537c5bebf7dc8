/* gRPC internals shared by the module's files: the unary call that the
 * health client (and, later, other clients) make. */
#ifndef MICROC_GRPC_INT_H
#define MICROC_GRPC_INT_H

#include "microc/client.h"
#include "microc/grpc.h"

typedef struct mc__grpc_unary_req {
  mc_slice host;       /* a name or an IP literal, IPv6 without brackets */
  int port;            /* 1-65535 */
  mc_slice path;       /* "/package.Service/Method" */
  mc_slice message;    /* the serialized request, unframed */
  uint64_t timeout_ms; /* the whole call; 0: 10 s. The fiber's deadline
                        * (mc_deadline) also ends it. */
  size_t max_response; /* cap on the response message; 0: 4 MiB */
} mc__grpc_unary_req;

typedef struct mc__grpc_unary_res {
  int grpc_status; /* the call's status; -1 unless 0 was returned */
  mc_buf reply;    /* the response message, unframed, when the status is
                    * OK; initialized by the call, freed by the caller
                    * with mc_buf_free whatever the call returned */
  char *text;      /* caller's buffer (may be NULL): grpc-message, decoded,
                    * or the error's account; NUL-terminated */
  size_t text_cap;
} mc__grpc_unary_res;

/* Makes one unary call on a new h2c connection (closed afterwards) from a
 * fiber, which it suspends. Returns 0 when the call completed with a
 * grpc-status (see res->grpc_status; when it is OK exactly one message was
 * received, in res->reply), or the errors of mc_grpc_health_check. */
int mc__grpc_unary(const mc__grpc_unary_req *req, mc__grpc_unary_res *res);

/* One HTTP/2 request, with bytes as they are: what a proxy passing gRPC on
 * needs (the body is not framed or read as gRPC, and trailers come back).
 * It is a stream on this thread's h2c connection to host:port, shared with
 * the exchanges made at the same time (a new one is opened when none has
 * room); only fibers of the calling thread use it. */
typedef struct mc__h2x_req {
  mc_slice host; /* a name or an IP literal, IPv6 without brackets */
  int port;
  mc_slice method, path, authority; /* authority empty: host:port */
  const mc_header *headers;         /* regular ones; names are lowered, and
                                     * connection-specific ones dropped */
  size_t nheaders;
  mc_slice body;
  /* The body in pieces instead (see mc_body_source): read by a fiber of
   * the exchange's own while the answer comes (full duplex). */
  const mc_body_source *body_source;
  /* Return at the answer's head; the body is read with mc_http_read from
   * res->stream (max_response does not apply), and the exchange holds its
   * stream (not the connection) until mc_http_close, which resets it if
   * it was not read to the end. */
  bool stream;
  uint64_t timeout_ms; /* 0: 10 s; the fiber's deadline also ends it */
  size_t max_response; /* cap on the answer's body; 0: 4 MiB */
} mc__h2x_req;

typedef struct mc__h2x_res {
  int status;
  mc_header *headers, *trailers; /* in the arena given */
  size_t nheaders, ntrailers;
  mc_slice body;           /* in the arena given; empty when streamed */
  mc__http_stream *stream; /* req.stream: the body to read; in the arena */
  char why[200];           /* what went wrong, when something did */
} mc__h2x_res;

/* Returns 0 once the server has ended its side of the stream (with
 * req.stream: once the answer's head is in), or the errors of
 * mc_grpc_health_check; MC_ECONNREFUSED also when the server did not
 * process the stream (it refused it, or went away before it, or the
 * connection broke before it was sent): safe to send again. */
int mc__h2x(const mc__h2x_req *req, mc_arena *a, mc__h2x_res *res);

#endif
