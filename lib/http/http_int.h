/* HTTP server internals shared by the files of lib/http. */
#ifndef MICROC_HTTP_INT_H
#define MICROC_HTTP_INT_H

#include <uv.h>

#include "core/fiber_int.h"
#include "http/h1_reader.h"
#include "microc/http.h"
#include "observe/trace.h"

#define MC__MAX_SEGMENTS 32
#define MC__MAX_PARAMS 8
#define MC__MAX_MIDDLEWARE 16
#define MC__RES_BODY_LIMIT (64u << 20)

/* ---- router ------------------------------------------------------------ */

typedef struct mc__route_seg {
  mc_slice text; /* literal text, or the parameter name */
  bool param;
} mc__route_seg;

typedef struct mc__route_entry {
  const mc_route *route;
  uint32_t index; /* position in the app's list, for metrics */
  mc__route_seg segs[MC__MAX_SEGMENTS];
  uint32_t nsegs;
  uint32_t nstatic; /* literal segments: more wins a tie */
  bool rest;        /* the last segment is {name...}: the rest of the path */
  bool any_method;  /* method "*" */
} mc__route_entry;

typedef struct mc__router {
  mc__route_entry *entries;
  size_t n, cap;
} mc__router;

typedef struct mc__match {
  const mc__route_entry *entry; /* NULL: no route for this method */
  mc_slice names[MC__MAX_PARAMS];
  mc_slice raw_values[MC__MAX_PARAMS]; /* still percent-encoded */
  uint32_t nparams;
  uint32_t allow_mask; /* methods that do match the path (bit per method) */
  bool path_matched;   /* some route has this path */
} mc__match;

int mc__router_add(mc__router *r, const mc_route *route, uint32_t index);
void mc__router_free(mc__router *r);
/* Finds the route for method and path (path without query). HEAD matches
 * GET routes. */
void mc__router_match(const mc__router *r, mc_slice method, mc_slice path,
                      mc__match *m);
/* Method names by bit, for Allow and metrics. */
enum {
  MC__M_GET,
  MC__M_HEAD,
  MC__M_POST,
  MC__M_PUT,
  MC__M_DELETE,
  MC__M_PATCH,
  MC__M_OPTIONS,
  MC__M_OTHER,
  MC__M_COUNT
};
int mc__method_index(mc_slice method);
extern const char *const mc__method_names[MC__M_COUNT];
/* Percent-decodes s into arena memory; MC_EPARSE on a bad escape. */
int mc__percent_decode(mc_arena *a, mc_slice s, bool plus_is_space,
                       mc_slice *out);

/* ---- app --------------------------------------------------------------- */

typedef struct mc__config {
  const char *listen;
  int64_t workers;
  const char *name;
  const char *log_level;
  const char *log_format;
  uint64_t max_head;
  int64_t max_headers;
  uint64_t max_body;
  uint64_t idle_timeout_ms;
  uint64_t header_timeout_ms;
  uint64_t body_timeout_ms;
  uint64_t write_timeout_ms;
  uint64_t shutdown_timeout_ms;
  uint64_t request_timeout_ms;
  const char *registry;
  const char *advertise;
  const char *service_tags;
  uint64_t check_interval_ms;
  uint64_t deregister_after_ms;
  const char *balancer;
  int64_t max_connections;
  uint64_t fiber_stack;
  const char *docs_dir;
  bool access_log;
  const char *tls_cert, *tls_key;
} mc__config;

struct mc_app {
  mc_app_info info;
  mc__router router;
  const mc_route **routes; /* user routes then built-in ones */
  size_t nroutes, routes_cap;
  const mc_middleware *mw[MC__MAX_MIDDLEWARE];
  size_t nmw;
  mc__config cfg;
  mc_option *opts; /* built-in options, then the app's */
  size_t nopts;
  const mc_app_hooks **hooks;
  size_t nhooks;
  struct {
    int (*fn)(mc_app *, mc_buf *, void *);
    void *ud;
  } metrics[8];
  size_t nmetrics;
  char *registry_url;
  struct ssl_ctx_st *tls_ctx; /* --tls-cert and --tls-key; NULL: plain */
  struct mc__server *server;
  char *openapi; /* generated once */
  size_t openapi_len;
  uv_mutex_t lock; /* guards lazily built shared data (openapi, docs) */
  struct mc__docs_file *docs;
};

/* ---- server ------------------------------------------------------------ */

typedef struct mc__worker mc__worker;
typedef struct mc__conn mc__conn;

typedef struct mc__res_header {
  mc_slice name, value;
  struct mc__res_header *next;
} mc__res_header;

typedef struct mc__local {
  const void *key;
  void *value;
} mc__local;

struct mc_req {
  mc__conn *conn;
  mc__worker *worker;
  mc_app *app;
  mc_arena *arena;
  mc__h1_reader *rd;
  mc_slice path, query;
  const char *label; /* the access log's route, when set */
  mc__match match;
  mc_slice param_values[MC__MAX_PARAMS]; /* decoded */
  bool params_decoded;
  mc_slice *qkeys, *qvals; /* decoded query pairs, on first use */
  size_t nq;
  bool query_parsed;
  void *params_obj, *query_obj, *body_obj;
  int method_index;
  bool is_head;
  uint64_t start_ns;
  char request_id[65];
  size_t request_id_len;
  mc__trace trace;
  /* the answer */
  int status;
  bool answered;
  mc_slice content_type;
  mc_buf *body; /* the connection's response body buffer */
  mc__res_header *headers;
  mc__res_header *trailers; /* sent after the body, over HTTP/2 */
  /* a body read as it comes (mc_route.stream_body) */
  bool stream_in;     /* the handler runs while the body arrives */
  bool body_done;     /* its last byte is in */
  bool body_given;    /* a whole body went out as one piece */
  int body_err;       /* what ended it early: MC_ETOOBIG, MC_ECLOSED... */
  mc_buf *taken;      /* the piece mc_req_body_read gave last */
  mc_waitq body_wait; /* the handler, waiting for more of it */
  /* an answer sent in pieces (mc_res_begin) */
  bool streamed, ended, chunked;
  int64_t res_length; /* -1: not known */
  uint64_t res_sent;
  mc__local locals[MC__MAX_MIDDLEWARE];
  size_t nlocals;
};

/* The request the calling fiber serves, or NULL (a fiber of its own). */
mc_req *mc__req_current(void);

/* Serves app until stopped. Prints "listening on http://HOST:PORT". */
int mc__server_run(mc_app *app);
/* Runs the request's pipeline; called on the request's fiber. */
void mc__req_run(mc_req *req);
/* Finishes an answer given by the framework (no handler involved). */
int mc__res_problem_errors(mc_req *req, int status, const char *detail,
                           const mc_model_errors *errs);

/* ---- built-ins --------------------------------------------------------- */

int mc__builtin_routes(mc_app *app);
/* Builds /openapi.json from the routes; MC_EEXISTS when two models share a
 * name, MC_ETOOBIG past 256 models, MC_ENOMEM. */
int mc__openapi_prepare(mc_app *app);
/* Appends the Prometheus text for the whole server. */
int mc__metrics_render(mc_app *app, mc_buf *out);
/* Records a finished request in the calling worker's counters. */
void mc__metrics_observe(mc_req *req, uint64_t duration_ns);
bool mc__server_draining(const mc_app *app);

#endif
