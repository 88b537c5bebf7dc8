/* The grpc.health.v1 client: Health/Check as a unary call, its messages
 * from protoc-c (proto/grpc/health/v1/health.proto), and the parsing of
 * Consul's "host:port/service" check targets. See microc/grpc.h. */
#include <stdlib.h>
#include <string.h>

#include "grpc/framing.h"
#include "grpc/grpc_int.h"
#include "grpc/health/v1/health.pb-c.h"

/* A HealthCheckResponse is a few bytes; anything near this is not one. */
#define MAX_HEALTH_RESPONSE (64u << 10)

static void put_text(char *message, size_t cap, const char *s) {
  if (message)
    mc__grpc_text_copy(mc_slice_cstr(s), message, cap);
}

int mc_grpc_health_check(mc_slice host, int port, mc_slice service,
                         uint64_t timeout_ms, int *grpc_status, int *serving,
                         char *message, size_t cap) {
  *grpc_status = -1;
  *serving = MC_GRPC_HEALTH_UNKNOWN;
  put_text(message, cap, "");
  /* protobuf-c takes strings NUL-terminated. */
  if (service.len && memchr(service.ptr, 0, service.len)) {
    put_text(message, cap, "the service name holds a NUL byte");
    return MC_EINVAL;
  }
  char *name = strndup(service.len ? service.ptr : "", service.len);
  if (!name) {
    put_text(message, cap, mc_strerror(MC_ENOMEM));
    return MC_ENOMEM;
  }
  Grpc__Health__V1__HealthCheckRequest rq =
      GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  rq.service = name;
  size_t n = grpc__health__v1__health_check_request__get_packed_size(&rq);
  uint8_t *packed = malloc(n ? n : 1);
  if (!packed) {
    free(name);
    put_text(message, cap, mc_strerror(MC_ENOMEM));
    return MC_ENOMEM;
  }
  grpc__health__v1__health_check_request__pack(&rq, packed);
  free(name);

  mc__grpc_unary_res res = {.text = message, .text_cap = cap};
  int err = mc__grpc_unary(
      &(mc__grpc_unary_req){.host = host,
                            .port = port,
                            .path = MC_LIT("/grpc.health.v1.Health/Check"),
                            .message = {(const char *)packed, n},
                            .timeout_ms = timeout_ms,
                            .max_response = MAX_HEALTH_RESPONSE},
      &res);
  free(packed);
  if (!err && res.grpc_status == MC_GRPC_OK) {
    static const uint8_t empty[1];
    const uint8_t *p = res.reply.len ? (const uint8_t *)res.reply.ptr : empty;
    Grpc__Health__V1__HealthCheckResponse *r =
        grpc__health__v1__health_check_response__unpack(NULL, res.reply.len, p);
    if (!r) {
      put_text(message, cap, "the answer is not a HealthCheckResponse");
      err = MC_EPROTO;
    } else {
      *serving = (int)r->status;
      grpc__health__v1__health_check_response__free_unpacked(r, NULL);
    }
  }
  if (!err)
    *grpc_status = res.grpc_status;
  mc_buf_free(&res.reply);
  return err;
}

int mc_grpc_target_parse(mc_slice t, mc_slice *host, int *port,
                         mc_slice *service) {
  *host = MC_SLICE_NULL;
  *port = 0;
  *service = MC_LIT("");
  const char *end = t.ptr + t.len;
  /* As Consul does: the service is everything after the first '/'. */
  const char *slash = t.len ? memchr(t.ptr, '/', t.len) : NULL;
  const char *hp_end = slash ? slash : end;
  const char *p = t.ptr, *port_at;
  mc_slice h;
  if (p < hp_end && *p == '[') {
    const char *rb = memchr(p, ']', (size_t)(hp_end - p));
    if (!rb || rb + 1 >= hp_end || rb[1] != ':')
      return MC_EINVAL;
    h = (mc_slice){p + 1, (size_t)(rb - p - 1)};
    port_at = rb + 2;
  } else {
    const char *colon =
        p < hp_end ? memrchr(p, ':', (size_t)(hp_end - p)) : NULL;
    if (!colon)
      return MC_EINVAL;
    h = (mc_slice){p, (size_t)(colon - p)};
    if (memchr(h.ptr, ':', h.len)) /* an IPv6 address wants brackets */
      return MC_EINVAL;
    port_at = colon + 1;
  }
  if (!h.len || port_at >= hp_end || hp_end - port_at > 5)
    return MC_EINVAL;
  int n = 0;
  for (const char *q = port_at; q < hp_end; q++) {
    if (*q < '0' || *q > '9')
      return MC_EINVAL;
    n = n * 10 + (*q - '0');
  }
  if (n < 1 || n > 65535)
    return MC_EINVAL;
  *host = h;
  *port = n;
  if (slash)
    *service = (mc_slice){slash + 1, (size_t)(end - slash - 1)};
  return 0;
}
