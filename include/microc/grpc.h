/* microc gRPC: status codes, and a client for the standard health service
 * (grpc.health.v1.Health/Check), which the registry uses to run
 * Consul-style "GRPC" checks:
 *
 *   int status, serving;
 *   char msg[256];
 *   int err = mc_grpc_health_check(MC_LIT("127.0.0.1"), 9090, MC_LIT(""),
 *                                  2000, &status, &serving, msg, sizeof msg);
 *   bool passing = err == 0 && status == MC_GRPC_OK &&
 *                  serving == MC_GRPC_HEALTH_SERVING;
 *
 * Calls suspend the calling fiber, never the thread. gRPC is spoken over
 * plaintext HTTP/2 (h2c with prior knowledge) on nghttp2; TLS is not
 * spoken yet. */
#ifndef MICROC_GRPC_H
#define MICROC_GRPC_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes -------------------------------------------------------- */

/* The gRPC status codes (grpc/grpc doc/statuscodes.md). */
#define MC_GRPC_STATUS_MAP(X)                                                  \
  X(OK, 0)                                                                     \
  X(CANCELLED, 1)                                                              \
  X(UNKNOWN, 2)                                                                \
  X(INVALID_ARGUMENT, 3)                                                       \
  X(DEADLINE_EXCEEDED, 4)                                                      \
  X(NOT_FOUND, 5)                                                              \
  X(ALREADY_EXISTS, 6)                                                         \
  X(PERMISSION_DENIED, 7)                                                      \
  X(RESOURCE_EXHAUSTED, 8)                                                     \
  X(FAILED_PRECONDITION, 9)                                                    \
  X(ABORTED, 10)                                                               \
  X(OUT_OF_RANGE, 11)                                                          \
  X(UNIMPLEMENTED, 12)                                                         \
  X(INTERNAL, 13)                                                              \
  X(UNAVAILABLE, 14)                                                           \
  X(DATA_LOSS, 15)                                                             \
  X(UNAUTHENTICATED, 16)

enum mc_grpc_status {
#define MC__GRPC_STATUS_ENUM(name, code) MC_GRPC_##name = (code),
  MC_GRPC_STATUS_MAP(MC__GRPC_STATUS_ENUM)
#undef MC__GRPC_STATUS_ENUM
};

/* "NOT_FOUND" and friends; "UNKNOWN_STATUS" for codes outside the table. */
MC_EXTERN const char *mc_grpc_status_name(int code);

/* ---- health checks ------------------------------------------------------- */

/* grpc.health.v1.HealthCheckResponse.ServingStatus. */
enum mc_grpc_serving {
  MC_GRPC_HEALTH_UNKNOWN = 0,
  MC_GRPC_HEALTH_SERVING = 1,
  MC_GRPC_HEALTH_NOT_SERVING = 2,
  MC_GRPC_HEALTH_SERVICE_UNKNOWN = 3, /* only Watch answers it */
};

/* "SERVING" and friends; "UNKNOWN_SERVING_STATUS" outside the enum. */
MC_EXTERN const char *mc_grpc_serving_name(int serving);

/* Calls grpc.health.v1.Health/Check on a gRPC server over plaintext HTTP/2
 * (h2c with prior knowledge), asking about `service` ("" for the server as a
 * whole). Suspends the calling fiber. On return 0 the call completed:
 * *grpc_status holds the call's gRPC status code (0 OK; e.g. 5 NOT_FOUND when
 * the server does not know the service, 12 UNIMPLEMENTED when it has no health
 * service) and, when it is 0, *serving holds the ServingStatus (0 UNKNOWN, 1
 * SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN). message (may be NULL) receives a
 * NUL-terminated grpc-message or error text, truncated to cap. Returns 0;
 * MC_ETIMEDOUT (timeout_ms or the fiber's deadline, see mc_deadline);
 * MC_ECONNREFUSED; MC_ECONNRESET; MC_ECLOSED; MC_EPROTO (not HTTP/2 or not
 * gRPC); MC_ENAME; MC_ECANCELED; MC_ESTATE outside a fiber; MC_ENOMEM.
 *
 * More precisely:
 *  - host is a name or an IP address literal (IPv6 without brackets);
 *    port 1-65535; anything else, or a service holding a NUL byte, is
 *    MC_EINVAL. timeout_ms covers the whole call, name lookup and connect
 *    included; 0 means 10 s (Consul's default check timeout). The server
 *    is told the time left in grpc-timeout.
 *  - One connection is made per call and closed after it. MC_EIO stands
 *    for socket errors outside the list above (an address family the
 *    host lacks, say).
 *  - grpc_status and serving are required. Unless 0 is returned,
 *    *grpc_status is -1; unless the status is OK, *serving is 0. A
 *    ServingStatus outside the enum is passed on as the server sent it.
 *  - message, on return 0, is the server's grpc-message, percent-decoded
 *    (empty when it sent none, as servers do with OK); on an error return
 *    it says what went wrong (e.g. the peer's HTTP status, or nghttp2's
 *    account of the broken protocol). Truncation keeps whole UTF-8
 *    sequences. cap 0 writes nothing.
 *  - MC_EPROTO also covers gRPC-level violations: an HTTP status other
 *    than 200, a content-type other than application/grpc, no
 *    grpc-status, an OK status with no message or with two, a compressed
 *    message (none was asked for), a response that protobuf cannot
 *    decode, and a stream the client reset because it broke HTTP/2 rules.
 *    MC_ECONNRESET covers a stream the server reset (RST_STREAM) or
 *    refused (GOAWAY before it) as well as a connection reset.
 *    MC_ETOOBIG: the answer's headers or message are over the client's
 *    caps (64 KiB each).
 *  - Any number of fibers may call it at once, on any threads that have a
 *    scheduler (the workers and the control loop of an mc_app); a plain
 *    loop callback must mc_spawn a fiber to call it from. */
MC_EXTERN int mc_grpc_health_check(mc_slice host, int port, mc_slice service,
                                   uint64_t timeout_ms, int *grpc_status,
                                   int *serving, char *message, size_t cap);

/* Splits a Consul GRPC check target, "host:port" or "host:port/service"
 * ("[v6addr]:port/..." for IPv6), into slices of target: host without
 * brackets, the port, and the service (everything after the first '/',
 * empty when there is none). Returns 0 or MC_EINVAL (no host, no port, a
 * port outside 1-65535). */
MC_EXTERN int mc_grpc_target_parse(mc_slice target, mc_slice *host, int *port,
                                   mc_slice *service);

#ifdef __cplusplus
}
#endif
#endif
