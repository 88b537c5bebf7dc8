/* microc's model of Consul's HTTP API: the service registrations and health
 * checks that clients send (decoded as Consul decodes them: keys in any
 * case, snake_case too; durations as Go strings or nanoseconds), encoded
 * back for clients that register, and the health entries a registry
 * answers with. Bytes in, structs out: no I/O.
 *
 * microc-registry and the discovery client share it, so what one writes
 * the other reads. */
#ifndef MICROC_CONSUL_H
#define MICROC_CONSUL_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum mc_health {
  MC_HEALTH_PASSING = 1,
  MC_HEALTH_WARNING,
  MC_HEALTH_CRITICAL,
} mc_health;

/* "passing", "warning", "critical". */
MC_EXTERN const char *mc_health_name(mc_health h);
/* MC_EINVAL for anything else. */
MC_EXTERN int mc_health_parse(mc_slice s, mc_health *out);

typedef enum mc_check_kind {
  MC_CHECK_TTL = 1,
  MC_CHECK_HTTP,
  MC_CHECK_TCP,
  MC_CHECK_GRPC,
} mc_check_kind;

/* "ttl", "http", "tcp", "grpc": Consul's check Type. */
MC_EXTERN const char *mc_check_kind_name(mc_check_kind k);

typedef struct mc_consul_kv {
  const char *key;
  const char *value;
} mc_consul_kv;

typedef struct mc_consul_check {
  const char *id; /* CheckID or ID; "" when not given */
  const char *name;
  const char *notes;
  const char *service_id; /* checks registered on their own */
  mc_check_kind kind;
  const char *target;    /* HTTP URL, TCP host:port, GRPC host:port[/service] */
  const char *method;    /* HTTP; "" means GET */
  mc_consul_kv *headers; /* HTTP; one entry per value */
  size_t nheaders;
  const char *body; /* HTTP */
  bool tls_skip_verify;
  bool grpc_use_tls;
  int64_t interval_ns;
  int64_t timeout_ns;          /* 0: the registry's default */
  int64_t ttl_ns;              /* TTL checks */
  int64_t deregister_after_ns; /* DeregisterCriticalServiceAfter; 0: never */
  mc_health status;            /* initial status; 0 when not given */
  int64_t success_before_passing;
  int64_t failures_before_critical;
} mc_consul_check;

typedef struct mc_consul_service {
  const char *id; /* defaults to the name */
  const char *name;
  const char *address; /* "" when not given */
  int port;
  const char **tags;
  size_t ntags;
  mc_consul_kv *meta;
  size_t nmeta;
  int64_t weight_passing; /* default 1 */
  int64_t weight_warning; /* default 1 */
  bool enable_tag_override;
  mc_consul_check *checks; /* Check, then Checks */
  size_t nchecks;
} mc_consul_service;

/* Decodes the body of PUT /v1/agent/service/register into out, its memory
 * from `a`. On failure err gets the message Consul answers with (400,
 * text/plain): "Request decode failed: ...", "Missing service name",
 * "Invalid check: ...", "Invalid Service Meta: ...".
 * Returns 0, MC_EPARSE (not JSON, or a field of the wrong type), MC_EINVAL
 * (JSON that Consul would refuse), MC_ENOMEM. */
MC_EXTERN int mc_consul_decode_service(mc_slice json, mc_arena *a,
                                       mc_consul_service *out, char *err,
                                       size_t errcap);

/* Decodes the body of PUT /v1/agent/check/register (a check with Name and
 * an optional ServiceID). Same returns as mc_consul_decode_service. */
MC_EXTERN int mc_consul_decode_check(mc_slice json, mc_arena *a,
                                     mc_consul_check *out, char *err,
                                     size_t errcap);

/* Appends s as registration JSON, as a client sends it and as
 * mc_consul_decode_service reads it back. MC_ENOMEM, MC_ETOOBIG. */
MC_EXTERN int mc_consul_encode_service(const mc_consul_service *s, mc_buf *out);

/* Appends one check as JSON that mc_consul_decode_check reads back. */
MC_EXTERN int mc_consul_encode_check(const mc_consul_check *c, mc_buf *out);

/* Appends a Go duration ("10s", "1m30s", "1.5ms") for ns. */
MC_EXTERN int mc_go_duration_format(int64_t ns, mc_buf *out);

/* One entry of GET /v1/health/service/:name, as a caller needs it. */
typedef struct mc_consul_instance {
  const char *id;      /* Service.ID */
  const char *service; /* Service.Service */
  const char *address; /* Service.Address, or Node.Address when empty */
  int port;
  const char **tags;
  size_t ntags;
  mc_consul_kv *meta;
  size_t nmeta;
  int64_t weight;   /* Weights.Passing, or Weights.Warning when warning */
  mc_health health; /* the worst of its checks (passing when none) */
} mc_consul_instance;

/* Decodes a /v1/health/service answer. Returns 0, MC_EPARSE, MC_ENOMEM. */
MC_EXTERN int mc_consul_decode_health(mc_slice json, mc_arena *a,
                                      mc_consul_instance **out, size_t *n);

#ifdef __cplusplus
}
#endif
#endif
