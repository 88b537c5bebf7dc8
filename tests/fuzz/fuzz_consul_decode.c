/* Fuzzes the decoding of Consul's JSON (lib/discovery/consul.c): the
 * registrations and checks that clients send to microc-registry, and the
 * health answers that the discovery client reads.
 *
 * The first byte picks what the rest is: (byte % 3) 0 a service
 * registration (mc_consul_decode_service), 1 a check registration
 * (mc_consul_decode_check), 2 a health answer (mc_consul_decode_health).
 * From 128 on, the error buffer is 8 bytes, so messages are cut short.
 * Each input gets an arena limited to 256 KiB, so MC_ENOMEM paths run too.
 * Checked, with abort():
 *  - the returns are the documented ones: 0, MC_EPARSE, MC_EINVAL (not for
 *    health answers), MC_ENOMEM;
 *  - on an error, err holds a non-empty, NUL-terminated message;
 *  - a decoded service has a name and an ID, a port in 0..65535, weights
 *    in range, no NULL strings, and checks that each have one kind with a
 *    target, an interval > 0 (HTTP, TCP, GRPC) or a TTL > 0 (TTL);
 *  - a decoded check is such a check with a name;
 *  - what decodes encodes (mc_consul_encode_service, _check), and the
 *    encoding decodes again to the same fields: IDs, names, address, port,
 *    tags, meta, weights, and per check kind, target, intervals, TTL,
 *    DeregisterCriticalServiceAfter, status, and the HTTP and GRPC options
 *    (headers, method, body, TLS flags) of the checks that use them;
 *  - a health answer gives one entry per element of the array, each with a
 *    health in 1..3, a port in 0..65535 and no NULL strings. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "microc/consul.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

#define ARENA_LIMIT (256u << 10)

static bool same(const char *x, const char *y) {
  CHECK(x && y);
  return strcmp(x, y) == 0;
}

static void check_rc(int rc, bool einval_ok) {
  CHECK(rc == 0 || rc == MC_EPARSE || rc == MC_ENOMEM ||
        (einval_ok && rc == MC_EINVAL));
}

static void check_err(const char *err, size_t errcap) {
  CHECK(err[0] != '\0');
  CHECK(memchr(err, '\0', errcap) != NULL);
}

static void check_kvs(const mc_consul_kv *kv, size_t n) {
  CHECK(n == 0 || kv);
  for (size_t i = 0; i < n; i++)
    CHECK(kv[i].key && kv[i].value);
}

static void check_check(const mc_consul_check *c) {
  CHECK(c->id && c->name && c->notes && c->service_id && c->target &&
        c->method && c->body);
  CHECK(c->kind >= MC_CHECK_TTL && c->kind <= MC_CHECK_GRPC);
  if (c->kind == MC_CHECK_TTL) {
    CHECK(c->ttl_ns > 0);
  } else {
    CHECK(c->interval_ns > 0);
    CHECK(*c->target);
  }
  CHECK(c->timeout_ns >= 0 && c->deregister_after_ns >= 0);
  CHECK(c->status == 0 ||
        (c->status >= MC_HEALTH_PASSING && c->status <= MC_HEALTH_CRITICAL));
  check_kvs(c->headers, c->nheaders);
}

static bool same_kvs(const mc_consul_kv *x, size_t nx, const mc_consul_kv *y,
                     size_t ny) {
  if (nx != ny)
    return false;
  for (size_t i = 0; i < nx; i++)
    if (!same(x[i].key, y[i].key) || !same(x[i].value, y[i].value))
      return false;
  return true;
}

/* What the encoder writes for a check, compared. */
static void check_same_check(const mc_consul_check *x,
                             const mc_consul_check *y) {
  CHECK(same(x->id, y->id) && same(x->name, y->name) &&
        same(x->notes, y->notes) && same(x->service_id, y->service_id));
  CHECK(x->kind == y->kind && same(x->target, y->target));
  CHECK(x->interval_ns == y->interval_ns && x->timeout_ns == y->timeout_ns &&
        x->ttl_ns == y->ttl_ns &&
        x->deregister_after_ns == y->deregister_after_ns);
  CHECK(x->status == y->status);
  CHECK(x->success_before_passing == y->success_before_passing &&
        x->failures_before_critical == y->failures_before_critical);
  if (x->kind == MC_CHECK_HTTP) {
    CHECK(same(x->method, y->method) && same(x->body, y->body));
    CHECK(same_kvs(x->headers, x->nheaders, y->headers, y->nheaders));
    CHECK(x->tls_skip_verify == y->tls_skip_verify);
  }
  if (x->kind == MC_CHECK_GRPC)
    CHECK(x->grpc_use_tls == y->grpc_use_tls);
}

static void check_service(const mc_consul_service *s) {
  CHECK(s->name && *s->name && s->id && *s->id && s->address);
  CHECK(s->port >= 0 && s->port <= 65535);
  CHECK(s->ntags == 0 || s->tags);
  for (size_t i = 0; i < s->ntags; i++)
    CHECK(s->tags[i]);
  check_kvs(s->meta, s->nmeta);
  CHECK(s->weight_passing >= 1 && s->weight_passing <= 65535);
  CHECK(s->weight_warning >= 0 && s->weight_warning <= 65535);
  CHECK(s->nchecks == 0 || s->checks);
  for (size_t i = 0; i < s->nchecks; i++)
    check_check(&s->checks[i]);
}

static void fuzz_service(mc_slice json, mc_arena *a, mc_arena *b, char *err,
                         size_t errcap) {
  mc_consul_service s, t;
  int rc = mc_consul_decode_service(json, a, &s, err, errcap);
  check_rc(rc, true);
  if (rc) {
    check_err(err, errcap);
    return;
  }
  check_service(&s);

  mc_buf enc;
  mc_buf_init(&enc, 0);
  CHECK(mc_consul_encode_service(&s, &enc) == 0);
  char err2[256];
  CHECK(mc_consul_decode_service(mc_buf_slice(&enc), b, &t, err2,
                                 sizeof err2) == 0);
  check_service(&t);
  CHECK(same(s.id, t.id) && same(s.name, t.name) &&
        same(s.address, t.address) && s.port == t.port);
  CHECK(s.ntags == t.ntags);
  for (size_t i = 0; i < s.ntags; i++)
    CHECK(same(s.tags[i], t.tags[i]));
  CHECK(same_kvs(s.meta, s.nmeta, t.meta, t.nmeta));
  CHECK(s.weight_passing == t.weight_passing &&
        s.weight_warning == t.weight_warning &&
        s.enable_tag_override == t.enable_tag_override);
  CHECK(s.nchecks == t.nchecks);
  for (size_t i = 0; i < s.nchecks; i++)
    check_same_check(&s.checks[i], &t.checks[i]);
  mc_buf_free(&enc);
}

static void fuzz_check(mc_slice json, mc_arena *a, mc_arena *b, char *err,
                       size_t errcap) {
  mc_consul_check c, d;
  int rc = mc_consul_decode_check(json, a, &c, err, errcap);
  check_rc(rc, true);
  if (rc) {
    check_err(err, errcap);
    return;
  }
  check_check(&c);
  CHECK(*c.name);

  mc_buf enc;
  mc_buf_init(&enc, 0);
  CHECK(mc_consul_encode_check(&c, &enc) == 0);
  char err2[256];
  CHECK(mc_consul_decode_check(mc_buf_slice(&enc), b, &d, err2, sizeof err2) ==
        0);
  check_check(&d);
  check_same_check(&c, &d);
  mc_buf_free(&enc);
}

static void fuzz_health(mc_slice json, mc_arena *a) {
  mc_consul_instance *list;
  size_t n;
  int rc = mc_consul_decode_health(json, a, &list, &n);
  check_rc(rc, false);
  if (rc)
    return;
  /* an answer is all or nothing: one entry per element */
  json_t *root = json_loadb(json.ptr, json.len, JSON_DECODE_INT_AS_REAL, NULL);
  CHECK(json_is_array(root) && json_array_size(root) == n);
  json_decref(root);
  CHECK(n == 0 || list);
  for (size_t i = 0; i < n; i++) {
    const mc_consul_instance *in = &list[i];
    CHECK(in->health >= MC_HEALTH_PASSING && in->health <= MC_HEALTH_CRITICAL);
    CHECK(in->id && in->service && in->address);
    CHECK(in->port >= 0 && in->port <= 65535);
    CHECK(in->ntags == 0 || in->tags);
    for (size_t k = 0; k < in->ntags; k++)
      CHECK(in->tags[k]);
    check_kvs(in->meta, in->nmeta);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  mc_slice json = {(const char *)data + 1, size - 1};
  mc_arena *a, *b;
  CHECK(mc_arena_new(&a, 4096, ARENA_LIMIT) == 0);
  CHECK(mc_arena_new(&b, 4096, 0) == 0); /* the re-decode must not fail */
  /* garbage, not zeros, so a message left unterminated shows */
  char err[256];
  memset(err, 'x', sizeof err);
  size_t errcap = data[0] >= 128 ? 8 : sizeof err;

  switch (data[0] % 3) {
  case 0:
    fuzz_service(json, a, b, err, errcap);
    break;
  case 1:
    fuzz_check(json, a, b, err, errcap);
    break;
  default:
    fuzz_health(json, a);
    break;
  }
  mc_arena_free(a);
  mc_arena_free(b);
  return 0;
}
