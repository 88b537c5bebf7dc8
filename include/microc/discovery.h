/* microc discovery: calls by service name, with the instances kept fresh
 * from a registry that speaks Consul's API (microc-registry, or Consul).
 *
 *   mc_http_response res;
 *   int err = mc_call_service(&(mc_call){.service = "catalog",
 *                                        .path = "/books/7"},
 *                             mc_req_arena(req), &res);
 *
 * Each thread that calls keeps its own view of each service it calls: the
 * passing instances, followed with a blocking query per service (no
 * polling), a load balancer, a circuit breaker per instance and a retry
 * budget per service, as Envoy's workers do; nothing on the call path takes
 * a lock. When the registry cannot be reached the last known instances stay
 * in use, and the log and /metrics say so.
 *
 * A failed attempt is tried again on another instance when that is safe:
 * always when the connection was refused (the request never left), and for
 * idempotent calls also on resets, timeouts and 502, 503 and 504 answers;
 * never past the retry budget (retries add at most 20% to the load, plus a
 * floor of 10 a second) or the caller's deadline. Backoff between attempts
 * is exponential with full jitter.
 *
 * Services built with mc_app register themselves when given --registry
 * (see docs/operating.md): they need nothing from this header for that. */
#ifndef MICROC_DISCOVERY_H
#define MICROC_DISCOVERY_H

#include "microc/client.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_balancer {
  MC_BALANCE_DEFAULT = 0, /* in mc_call: the process's; in setup: round robin */
  MC_BALANCE_ROUND_ROBIN,
  MC_BALANCE_LEAST_OUTSTANDING, /* fewest calls in flight from this thread */
  MC_BALANCE_P2C, /* power of two choices: of two instances drawn at random,
                     the one with fewer calls in flight */
} mc_balancer;

/* Sets, for the whole process, the registry calls by name use ("http://
 * 127.0.0.1:8500", copied; NULL: none) and the balancer. Call before the
 * threads that call services start (mc_app does, from --registry and
 * --balancer). Returns 0, MC_EINVAL for a URL that is not http://, or
 * MC_ENOMEM. */
MC_EXTERN int mc_discovery_setup(const char *registry_url, mc_balancer b);
/* "round-robin", "least-outstanding", "p2c". MC_EINVAL otherwise. */
MC_EXTERN int mc_balancer_parse(const char *s, mc_balancer *out);

typedef struct mc_call {
  const char *service; /* its name in the registry */
  const char *method;  /* NULL: "GET" */
  const char *path;    /* target: "/books/7?x=1"; NULL: "/" */
  const mc_header *headers;
  size_t nheaders;
  mc_slice body;
  /* The body in pieces, instead of body (see mc_body_source). A call with
   * one is tried again only when the source was never read (a refused
   * connection, or a stale pooled one before the first piece was taken). */
  const mc_body_source *body_source;
  /* Read the answer's body with mc_http_read (see mc_http_request.stream).
   * An answer whose status is retried (502, 503, 504 on idempotent calls)
   * is closed and the call tried again; the breaker counts the answer at
   * its head. On success the stream is the caller's to close. */
  bool stream;
  uint64_t timeout_ms;  /* each attempt; 0: 10 s (the fiber's deadline
                           bounds the whole call) */
  uint64_t deadline_ns; /* an mc_now_ns instant the attempts, retries and
                           backoff included, end by (with stream: until the
                           answer's head), tighter than the fiber's; 0: none */
  int max_attempts;     /* 0: 3, or 2 for calls that are not idempotent
                           (their second try only follows a refused
                           connection) */
  bool idempotent;      /* safe to repeat though the method says otherwise
                           (a POST with an idempotency key, say) */
  const char *tag;      /* only instances with this tag; NULL: any */
  mc_balancer balancer; /* 0: the process's (mc_discovery_setup) */
  bool h2;         /* speak HTTP/2 (h2c, prior knowledge) to the instance, as
                      a stream on the thread's connection to it (shared by the
                      calls made at the same time), and keep the answer's
                      trailers: what a proxy passing gRPC on needs */
  size_t max_body; /* answer cap; 0: 16 MiB */
  const char *user_agent; /* over HTTP/1.1: see mc_http_request */
  char *served_by; /* if set: gets the ID of the instance that answered */
  size_t served_by_cap;
} mc_call;

/* Calls c->service and waits for the answer (the fiber suspends). An HTTP
 * answer of any status is a success (0), as with mc_http_do; a 5xx answer
 * counts against the instance's breaker and may have been retried first.
 * Returns 0; MC_EUNAVAILABLE when no instance is known and passing, or all
 * of them have open breakers; MC_ESTATE outside a fiber or without a
 * registry; MC_ETIMEDOUT; MC_ECONNREFUSED, MC_ECONNRESET, MC_ECLOSED,
 * MC_EPROTO (the last attempt's error); MC_ECANCELED; MC_ENOMEM. */
MC_EXTERN int mc_call_service(const mc_call *c, mc_arena *a,
                              mc_http_response *res);

/* Appends Prometheus text about discovery and the calls made by name:
 * registry reachability, instances, calls, retries, budget refusals, and
 * circuit breaker states per instance. mc_app adds it to /metrics. */
MC_EXTERN int mc_discovery_metrics(mc_buf *out);

#ifdef __cplusplus
}
#endif
#endif
