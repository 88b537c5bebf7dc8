/* The check runner: one fiber per check. An HTTP, TCP or gRPC check's
 * fiber probes at the check's interval; a TTL check's fiber waits for the
 * next update and marks the check critical when none comes in time. Each
 * fiber also reaps its service once the check has been critical for
 * longer than DeregisterCriticalServiceAfter.
 *
 * Removing a check wakes its fiber, which frees the check and ends. */
#include <microc/client.h>
#include <microc/grpc.h>
#include <microc/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

static uint64_t ms_now(void) {
  return mc_now_ns() / 1000000;
}

static uint64_t interval_ms(const reg_check *c) {
  uint64_t ms = (uint64_t)(c->def.interval_ns / 1000000);
  if (ms < R.min_interval_ms)
    ms = R.min_interval_ms;
  return ms > 366ull * 86400000 ? 366ull * 86400000 : ms;
}

static uint64_t timeout_ms(const reg_check *c) {
  uint64_t ms = (uint64_t)(c->def.timeout_ns / 1000000);
  return ms ? ms : R.default_timeout_ms;
}

/* ---- probes -------------------------------------------------------------- */

typedef struct result {
  mc_health status;
  mc_buf out;
} result;

static void probe_http(reg_check *c, result *r) {
  const char *method = *c->def.method ? c->def.method : "GET";
  mc_arena *a;
  if (mc_arena_new(&a, 4096, 0) != 0) {
    r->status = MC_HEALTH_CRITICAL;
    mc_buf_append_cstr(&r->out, "out of memory");
    return;
  }
  mc_header *h = mc_arena_alloc(a, (c->def.nheaders + 1) * sizeof *h);
  for (size_t i = 0; h && i < c->def.nheaders; i++)
    h[i] = (mc_header){mc_slice_cstr(c->def.headers[i].key),
                       mc_slice_cstr(c->def.headers[i].value)};
  mc_http_response res;
  int err =
      h ? mc_http_do(&(mc_http_request){.method = method,
                                        .url = c->def.target,
                                        .headers = h,
                                        .nheaders = c->def.nheaders,
                                        .body = mc_slice_cstr(c->def.body),
                                        .timeout_ms = timeout_ms(c),
                                        .max_body = 1u << 20},
                     a, &res)
        : MC_ENOMEM;
  mc_buf_appendf(&r->out, "HTTP %s %s: ", method, c->def.target);
  if (err) {
    r->status = MC_HEALTH_CRITICAL;
    mc_buf_append_cstr(&r->out,
                       err == MC_EINVAL && !strncmp(c->def.target, "https", 5)
                           ? "https checks are not supported yet"
                           : mc_strerror(err));
  } else {
    r->status = res.status >= 200 && res.status < 300 ? MC_HEALTH_PASSING
                : res.status == 429                   ? MC_HEALTH_WARNING
                                                      : MC_HEALTH_CRITICAL;
    mc_buf_appendf(&r->out, "%d %s Output: ", res.status,
                   mc_http_reason(res.status));
    size_t room = REG_OUTPUT_MAX > r->out.len ? REG_OUTPUT_MAX - r->out.len : 0;
    mc_buf_append(&r->out, res.body.ptr,
                  res.body.len < room ? res.body.len : room);
  }
  mc_arena_free(a);
}

/* "host:port" or "[v6]:port", with an optional "/service" for gRPC. */
static int split_target(const char *t, mc_slice *host, int *port,
                        mc_slice *rest) {
  const char *slash = strchr(t, '/');
  size_t len = slash ? (size_t)(slash - t) : strlen(t);
  *rest = slash ? mc_slice_cstr(slash + 1) : MC_LIT("");
  const char *colon = NULL;
  for (size_t i = len; i-- > 0;)
    if (t[i] == ':') {
      colon = t + i;
      break;
    }
  if (!colon || colon == t)
    return MC_EINVAL;
  *host = (mc_slice){t, (size_t)(colon - t)};
  if (host->len > 2 && host->ptr[0] == '[' && host->ptr[host->len - 1] == ']')
    *host = (mc_slice){host->ptr + 1, host->len - 2};
  int64_t p;
  if (mc_slice_to_i64((mc_slice){colon + 1, (size_t)(t + len - colon - 1)},
                      &p) != 0 ||
      p < 1 || p > 65535)
    return MC_EINVAL;
  *port = (int)p;
  return 0;
}

static void probe_tcp(reg_check *c, result *r) {
  mc_slice host, rest;
  int port;
  int err = split_target(c->def.target, &host, &port, &rest);
  if (!err)
    err = mc_tcp_probe(host, port, timeout_ms(c));
  r->status = err ? MC_HEALTH_CRITICAL : MC_HEALTH_PASSING;
  mc_buf_appendf(&r->out, "TCP connect %s: %s", c->def.target,
                 err ? mc_strerror(err) : "Success");
}

static void probe_grpc(reg_check *c, result *r) {
  mc_slice host, service;
  int port, grpc_status = 0, serving = 0;
  char msg[256] = "";
  int err = split_target(c->def.target, &host, &port, &service);
  if (!err && c->def.grpc_use_tls)
    err = MC_EUNSUPPORTED;
  if (!err)
    err = mc_grpc_health_check(host, port, service, timeout_ms(c), &grpc_status,
                               &serving, msg, sizeof msg);
  mc_buf_appendf(&r->out, "gRPC check %s: ", c->def.target);
  if (err) {
    r->status = MC_HEALTH_CRITICAL;
    mc_buf_append_cstr(&r->out, err == MC_EUNSUPPORTED
                                    ? "gRPC over TLS is not supported yet"
                                    : mc_strerror(err));
  } else if (grpc_status != 0) {
    r->status = MC_HEALTH_CRITICAL;
    mc_buf_appendf(&r->out, "rpc error: code = %d desc = %s", grpc_status, msg);
  } else if (serving != 1) {
    r->status = MC_HEALTH_CRITICAL;
    mc_buf_appendf(&r->out, "service unhealthy (status %d)", serving);
  } else {
    r->status = MC_HEALTH_PASSING;
    mc_buf_append_cstr(&r->out, "success");
  }
}

/* Applies SuccessBeforePassing and FailuresBeforeCritical: the status
 * moves only after that many results in a row. */
static void record(reg_check *c, result *r) {
  mc_health status = r->status;
  if (status == MC_HEALTH_PASSING) {
    c->successes++;
    c->failures = 0;
    if (c->status != MC_HEALTH_PASSING &&
        c->successes < c->def.success_before_passing)
      status = c->status;
  } else if (status == MC_HEALTH_CRITICAL) {
    c->failures++;
    c->successes = 0;
    if (c->status != MC_HEALTH_CRITICAL &&
        c->failures < c->def.failures_before_critical)
      status = c->status;
  } else {
    c->successes = c->failures = 0;
  }
  if (status == MC_HEALTH_CRITICAL)
    R.checks_failed++;
  R.checks_run++;
  reg_check_set(c, status, r->out.ptr ? r->out.ptr : "", r->out.len);
}

/* ---- the fiber
 * --------------------------------------------------------------- */

/* Past DeregisterCriticalServiceAfter: the service goes, and with it this
 * check (its fiber sees `removed` next). */
static void maybe_reap(reg_check *c) {
  if (!c->def.deregister_after_ns || c->status != MC_HEALTH_CRITICAL ||
      !c->critical_since_ms || !c->svc)
    return;
  uint64_t after_ms = (uint64_t)(c->def.deregister_after_ns / 1000000);
  if (mc_wall_ms() - c->critical_since_ms < after_ms)
    return;
  char *id = strdup(c->service_id);
  MC_LOG(MC_LOG_INFO, "deregistering a service critical for too long",
         MC_LOG_CSTR("service_id", id ? id : ""),
         MC_LOG_CSTR("check_id", c->id));
  if (id)
    reg_service_del(id);
  free(id);
}

/* How long until the reaper should look again (0: no need). */
static uint64_t reap_in_ms(const reg_check *c) {
  if (!c->def.deregister_after_ns || c->status != MC_HEALTH_CRITICAL ||
      !c->critical_since_ms)
    return 0;
  uint64_t at =
      c->critical_since_ms + (uint64_t)(c->def.deregister_after_ns / 1000000);
  uint64_t now = mc_wall_ms();
  return at > now ? at - now : 1;
}

static uint64_t min_nonzero(uint64_t a, uint64_t b) {
  return !a ? b : !b ? a : a < b ? a : b;
}

static void check_fiber(void *arg) {
  reg_check *c = arg;
  /* The first probe comes soon, spread out so a restart does not probe
   * everything at once. */
  uint64_t first = interval_ms(c) < 500 ? interval_ms(c) : 500;
  uint64_t next = ms_now() + (first ? mc_rand64() % first : 0);
  while (!c->removed && !R.stopping) {
    uint64_t now = ms_now();
    if (c->def.kind == MC_CHECK_TTL) {
      if (now >= c->ttl_deadline_ms && c->status != MC_HEALTH_CRITICAL) {
        reg_check_set(c, MC_HEALTH_CRITICAL, "TTL expired", 11);
        continue;
      }
      maybe_reap(c);
      if (c->removed)
        break;
      uint64_t wait = c->ttl_deadline_ms > now ? c->ttl_deadline_ms - now : 0;
      wait = min_nonzero(wait, reap_in_ms(c));
      if (mc_waitq_wait(&c->wake, wait ? wait : MC_WAIT_FOREVER) ==
          MC_ECANCELED)
        break;
      continue;
    }
    if (now < next) {
      uint64_t wait = min_nonzero(next - now, reap_in_ms(c));
      if (mc_waitq_wait(&c->wake, wait) == MC_ECANCELED)
        break;
      maybe_reap(c);
      continue;
    }
    uint64_t start = ms_now();
    result r = {0};
    mc_buf_init(&r.out, 0);
    switch (c->def.kind) {
    case MC_CHECK_HTTP:
      probe_http(c, &r);
      break;
    case MC_CHECK_TCP:
      probe_tcp(c, &r);
      break;
    case MC_CHECK_GRPC:
      probe_grpc(c, &r);
      break;
    default:
      break;
    }
    if (!c->removed && !mc_fiber_canceled())
      record(c, &r);
    mc_buf_free(&r.out);
    maybe_reap(c);
    next = start + interval_ms(c);
  }
  c->has_fiber = false;
  if (c->removed)
    reg_check_free(c);
}

int reg_check_start(reg_check *c) {
  int err = mc_spawn(check_fiber, c);
  if (!err)
    c->has_fiber = true;
  return err;
}
