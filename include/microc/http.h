/* microc HTTP services: routes declared as a table, handlers that run on
 * fibers, models that validate what comes in and document what goes out.
 *
 *   static int hello(mc_req *req) {
 *     mc_slice name = mc_req_param(req, "name");
 *     greeting out = {.message = ...};
 *     return mc_res_model(req, 200, &greeting_model, &out);
 *   }
 *   static const mc_route routes[] = {
 *     {"GET", "/hello/{name}", hello, .response = &greeting_model},
 *   };
 *   int main(int argc, char **argv) {
 *     return mc_serve(&(mc_app_info){.name = "hello"}, routes,
 *                     MC_COUNT(routes), argc, argv);
 *   }
 *
 * Every service also answers /health/live, /health/ready, /metrics,
 * /openapi.json and /docs. */
#ifndef MICROC_HTTP_H
#define MICROC_HTTP_H

#include "microc/core.h"
#include "microc/model.h"
#include "microc/options.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_app mc_app;
typedef struct mc_req mc_req;

/* A handler answers with one of the mc_res_* calls and returns 0. A
 * negative return without an answer becomes a 500 problem. Handlers run on
 * a fiber: they may call mc_sleep, mc_run_blocking and (later) outbound
 * clients, which suspend only this request. */
typedef int (*mc_handler)(mc_req *req);

typedef struct mc_route {
  /* "GET", "POST", ...; "*" for any method (a route for the method itself
   * wins over it when both match as closely). */
  const char *method;
  /* "/books/{id}": {name} matches one non-empty segment; a last segment
   * {name...} matches the rest of the path, "/" and empty included
   * ("/files/{path...}" takes "/files/" and "/files/a/b"). Literal segments
   * beat parameters, and a fixed length beats {name...}. Routes for any
   * method or with {name...} are left out of /openapi.json. */
  const char *path;
  mc_handler handler;
  const mc_model *params;   /* path parameters, decoded to mc_req_params */
  const mc_model *query;    /* query parameters, decoded to mc_req_query */
  const mc_model *body;     /* JSON body, decoded to mc_req_body */
  const mc_model *response; /* documents the success response */
  int status;               /* success status for the docs (200) */
  size_t max_body;          /* bytes; 0: the app's default (1 MiB) */
  /* Optional: the cap for this request's body, decided from its head
   * (method, path, headers) before any of the body is read; 0 leaves
   * max_body. A body past it is refused with 413. */
  size_t (*body_limit)(mc_req *req);
  /* The handler starts as soon as the head is in, and reads the body as it
   * comes with mc_req_body_read (a proxy, an upload to disk); body models
   * and mc_req_body_raw are then not available. */
  bool stream_body;
  const char *summary;
  const char *description;
  const char *tag;
  bool hidden; /* left out of /openapi.json */
} mc_route;

/* Middleware: before runs in registration order ahead of validation and
 * the handler; returning nonzero stops the chain (it must have answered).
 * after runs in reverse order once the answer is known, before it is sent,
 * also for answers given by before or by the framework (404, 422...). */
typedef struct mc_middleware {
  const char *name;
  int (*before)(mc_req *req, void *ud);
  void (*after)(mc_req *req, void *ud);
  void *ud;
} mc_middleware;

typedef struct mc_app_info {
  const char *name;        /* service name: logs, metrics, registry */
  const char *version;     /* API version for OpenAPI ("0.1.0") */
  const char *title;       /* OpenAPI title (defaults to name) */
  const char *description; /* OpenAPI description */
  int max_workers;         /* most worker threads the app runs on (0: any) */
  bool no_docs; /* no /openapi.json and /docs (a proxy, whose paths are
                   others'); /health/live, /health/ready and /metrics stay */
} mc_app_info;

/* ---- apps ------------------------------------------------------------- */

/* info's strings must outlive the app. MC_ENOMEM. */
MC_EXTERN int mc_app_new(mc_app **out, const mc_app_info *info);
MC_EXTERN void mc_app_free(mc_app *app);
/* Adds routes; the array must outlive the app. MC_EINVAL for a malformed
 * path template or a model that fails mc_model_check, MC_EEXISTS for a
 * second route with the same method and path shape, MC_ENOMEM. */
MC_EXTERN int mc_app_routes(mc_app *app, const mc_route *routes, size_t n);
/* Adds middleware; mw must outlive the app. */
MC_EXTERN int mc_app_use(mc_app *app, const mc_middleware *mw);
/* Adds options of the app's own to the command line (after the built-in
 * ones; see microc/options.h). The table is copied; targets must outlive
 * the app. MC_EEXISTS for a flag already known, MC_ETOOBIG past 64. */
MC_EXTERN int mc_app_options(mc_app *app, const mc_option *opts, size_t n);
/* Changes the default of a known option, built-in or the app's own, e.g.
 * mc_app_default(app, "listen", "127.0.0.1:8500"). value must outlive the
 * app. MC_ENOTFOUND for an unknown flag. */
MC_EXTERN int mc_app_default(mc_app *app, const char *flag, const char *value);

/* Lifecycle hooks, each optional, called in registration order (stop and
 * worker_stop in reverse):
 *  - start: main thread, after the flags are parsed and logging is set up,
 *    before listening. A nonzero return stops the program (exit 1).
 *  - worker_start: on each worker's thread, before it accepts; it may start
 *    fibers there with mc_spawn (they are canceled when the worker stops).
 *  - ready: on a fiber of the control loop (the main thread's), once every
 *    worker accepts; it may wait (register with a registry, say).
 *  - draining: on a fiber of the control loop when SIGTERM or SIGINT
 *    arrives; /health/ready already answers 503 and the workers keep
 *    serving until every draining hook has returned (at most the shutdown
 *    timeout; past it they are canceled).
 *  - reload: on a fiber of the control loop when SIGHUP arrives (one run
 *    at a time); without such a hook SIGHUP is ignored.
 *  - worker_stop: on each worker's thread once it has stopped serving.
 *  - stop: main thread, after every worker has stopped.
 * The struct must outlive the app. MC_ETOOBIG past 8. */
typedef struct mc_app_hooks {
  int (*start)(mc_app *app, void *ud);
  void (*worker_start)(mc_app *app, int worker, void *ud);
  void (*ready)(mc_app *app, void *ud);
  void (*draining)(mc_app *app, void *ud);
  void (*reload)(mc_app *app, void *ud);
  void (*worker_stop)(mc_app *app, int worker, void *ud);
  void (*stop)(mc_app *app, void *ud);
  void *ud;
} mc_app_hooks;
MC_EXTERN int mc_app_hooks_add(mc_app *app, const mc_app_hooks *h);

/* The service name (--name, or the app's). */
MC_EXTERN const char *mc_app_name(const mc_app *app);
/* Where the app listens, once it does (from the ready hook on): the host
 * and the port actually bound (port 0 resolved); NULL and 0 before. */
MC_EXTERN const char *mc_app_host(const mc_app *app);
MC_EXTERN int mc_app_port(const mc_app *app);
MC_EXTERN int mc_app_worker_count(const mc_app *app);
/* Whether shutdown has begun (SIGTERM or SIGINT arrived): long polls
 * should answer now rather than hold the drain up. Any thread. */
MC_EXTERN bool mc_app_draining(const mc_app *app);
/* Adds Prometheus text of the app's own to /metrics: fn appends lines
 * (with their # HELP and # TYPE) to out. It runs on the worker thread that
 * serves the scrape. MC_ETOOBIG past 8. */
MC_EXTERN int mc_app_metrics_add(mc_app *app,
                                 int (*fn)(mc_app *app, mc_buf *out, void *ud),
                                 void *ud);

/* Parses the flags (see --help), serves until SIGTERM or SIGINT, drains
 * and returns the process exit code. */
MC_EXTERN int mc_app_main(mc_app *app, int argc, char **argv);
/* mc_app_new + mc_app_routes + mc_app_main + mc_app_free. */
MC_EXTERN int mc_serve(const mc_app_info *info, const mc_route *routes,
                       size_t n, int argc, char **argv);

/* ---- requests --------------------------------------------------------- */

/* Slices stay valid until the answer has been sent. */
MC_EXTERN mc_slice mc_req_method(const mc_req *req);
/* The path, without the query, as sent (percent-encoded). */
MC_EXTERN mc_slice mc_req_path(const mc_req *req);
MC_EXTERN mc_slice mc_req_query_string(const mc_req *req);
/* First header with this name (case-insensitive), or {NULL,0}. */
MC_EXTERN mc_slice mc_req_header(const mc_req *req, mc_slice name);
/* The request's headers in the order sent: how many, and the i-th. */
MC_EXTERN size_t mc_req_header_count(const mc_req *req);
MC_EXTERN void mc_req_header_at(const mc_req *req, size_t i, mc_slice *name,
                                mc_slice *value);
/* 2 for a request on an HTTP/2 stream, 1 for HTTP/1.x. */
MC_EXTERN int mc_req_http_version(const mc_req *req);
/* Whether the request came over TLS (--tls-cert). */
MC_EXTERN bool mc_req_tls(const mc_req *req);
/* The client's address ("127.0.0.1", "::1"), without the port; empty when
 * it cannot be told. Valid until the answer has been sent. */
MC_EXTERN mc_slice mc_req_peer(mc_req *req);
/* A path parameter, percent-decoded, or {NULL,0}. */
MC_EXTERN mc_slice mc_req_param(const mc_req *req, const char *name);
/* A query parameter (first occurrence), percent-decoded, or {NULL,0}. */
MC_EXTERN mc_slice mc_req_query_param(mc_req *req, const char *name);
/* Every value of a repeated query parameter, in order: up to max go to
 * out; returns how many there are. */
MC_EXTERN size_t mc_req_query_all(mc_req *req, const char *name, mc_slice *out,
                                  size_t max);
MC_EXTERN mc_slice mc_req_body_raw(const mc_req *req);
/* The next piece of the request's body in *chunk, valid until the next
 * call; an empty piece at the end. On a route with stream_body it waits
 * (suspending the fiber) for the client to send more; elsewhere the whole
 * body comes as one piece. Only the request's own fiber may call it.
 * Returns 0; MC_ETOOBIG (past the body limit), MC_ETIMEDOUT (the client
 * stalled past --body-timeout), MC_ECLOSED (the client went away or reset
 * the stream), MC_ECANCELED. After an error the connection closes once
 * the answer has been sent. */
MC_EXTERN int mc_req_body_read(mc_req *req, mc_slice *chunk);
/* Decoded and validated models of the route (NULL when not declared). */
MC_EXTERN const void *mc_req_params(const mc_req *req);
MC_EXTERN const void *mc_req_query(const mc_req *req);
MC_EXTERN const void *mc_req_body(const mc_req *req);
/* Memory that lives until the answer has been sent. */
MC_EXTERN mc_arena *mc_req_arena(mc_req *req);
MC_EXTERN const mc_route *mc_req_route(const mc_req *req);
/* The request id (X-Request-Id, honoured or made) and W3C trace id. */
MC_EXTERN mc_slice mc_req_id(const mc_req *req);
MC_EXTERN mc_slice mc_req_trace_id(const mc_req *req);
/* Names the request in the access log in place of its route's path (a
 * gateway route, say). label must live until the answer has been sent. */
MC_EXTERN void mc_req_set_label(mc_req *req, const char *label);
/* Per-request slot for middleware (one per middleware, by its pointer). */
MC_EXTERN void mc_req_set_local(mc_req *req, const void *key, void *value);
MC_EXTERN void *mc_req_local(const mc_req *req, const void *key);

/* ---- answers ---------------------------------------------------------- */

/* Each answers the request; answering twice returns MC_ESTATE. Bodies are
 * copied. Return MC_ENOMEM or MC_ETOOBIG (answer over 64 MiB) on failure. */
MC_EXTERN int mc_res_send(mc_req *req, int status, mc_slice content_type,
                          mc_slice body);
MC_EXTERN int mc_res_json(mc_req *req, int status, mc_slice json);
MC_EXTERN int mc_res_model(mc_req *req, int status, const mc_model *m,
                           const void *obj);
/* RFC 9457 application/problem+json; title from the status. */
MC_EXTERN int mc_res_problem(mc_req *req, int status, const char *detail);
MC_EXTERN int mc_res_problemf(mc_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Adds a response header (copied). Call before answering or in an after
 * middleware. */
MC_EXTERN int mc_res_header(mc_req *req, mc_slice name, mc_slice value);
/* mc_res_header without the copy: name and value must stay valid until the
 * answer has been sent (the request's arena, or static text). */
MC_EXTERN int mc_res_header_ref(mc_req *req, mc_slice name, mc_slice value);
/* Adds a trailer field, sent after the body (gRPC's grpc-status, say).
 * Trailers travel over HTTP/2 only; an HTTP/1.1 answer leaves them out. */
MC_EXTERN int mc_res_trailer(mc_req *req, mc_slice name, mc_slice value);
MC_EXTERN bool mc_res_answered(const mc_req *req);

/* A streamed answer: the head leaves with mc_res_begin (headers added
 * before it go with it), the body in pieces with mc_res_write, and
 * mc_res_end finishes it (with the trailers, over HTTP/2). length is the
 * body's size when known (Content-Length), or -1: HTTP/1.1 then sends it
 * chunked, and HTTP/1.0 ends it by closing. A writer faster than its
 * client waits (the fiber suspends) while 256 KiB are queued, up to
 * --write-timeout. A handler that returns before mc_res_end leaves a
 * truncated answer: the connection closes (HTTP/1.x) or the stream is
 * reset (HTTP/2), so the client can tell.
 * Returns 0; MC_ESTATE (answered already, or not begun); MC_EINVAL (a bad
 * status, or more bytes than length); MC_ECLOSED (the client went away);
 * MC_ETIMEDOUT; MC_ECANCELED; MC_ENOMEM. */
MC_EXTERN int mc_res_begin(mc_req *req, int status, mc_slice content_type,
                           int64_t length);
MC_EXTERN int mc_res_write(mc_req *req, mc_slice data);
MC_EXTERN int mc_res_end(mc_req *req);
MC_EXTERN int mc_res_status(const mc_req *req);

/* The reason phrase of a status code ("Not Found"); "Unknown" otherwise. */
MC_EXTERN const char *mc_http_reason(int status);

#ifdef __cplusplus
}
#endif
#endif
