/* microc-gateway: the edge of a microc system. Routes from a YAML file
 * (--routes) send requests to services found in the registry
 * (--registry), with JWT checks, rate limits, CORS, timeouts, retries and
 * circuit breakers on the way. SIGHUP reloads the file; a bad file is
 * refused and the routes in force stay. */
#include <microc/http.h>
#include <microc/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <microc/map.h>

#include "gateway.h"

static const char *routes_file;
static int64_t max_limit_keys;

static const mc_option options[] = {
    {"routes", "MICROC_ROUTES", MC_OPT_STR, &routes_file, "gateway.yaml",
     "the route file (YAML; see docs/gateway.md); SIGHUP reloads it"},
    {"rate-limit-keys", "MICROC_RATE_LIMIT_KEYS", MC_OPT_INT, &max_limit_keys,
     "100000", "most clients and subjects tracked by the rate limits", 1,
     100000000},
};

/* ---- the config in force ---------------------------------------------- */

static uv_mutex_t cfg_lock;
static gw_config *cfg_current;
static gw_limiter *limiter;
static uv_mutex_t stats_lock;
static mc_map stats_by_name; /* gw_stats *, never freed before exit */

gw_config *gw_config_acquire(void) {
  uv_mutex_lock(&cfg_lock);
  gw_config *c = cfg_current;
  __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
  uv_mutex_unlock(&cfg_lock);
  return c;
}

void gw_config_release(gw_config *c) {
  if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
    gw_config_free(c);
}

gw_limiter *gw_limiter_get(void) {
  return limiter;
}

static int attach_stats(gw_config *c) {
  uv_mutex_lock(&stats_lock);
  int rc = 0;
  for (size_t i = 0; i < c->nroutes && !rc; i++) {
    gw_route *r = &c->routes[i];
    gw_stats *s = mc_map_get(&stats_by_name, mc_slice_cstr(r->name));
    if (!s) {
      if (!(s = calloc(1, sizeof *s)) || !(s->name = strdup(r->name)) ||
          mc_map_put(&stats_by_name, mc_slice_cstr(r->name), s, NULL) != 0) {
        if (s)
          free((char *)s->name);
        free(s);
        rc = MC_ENOMEM;
        break;
      }
    }
    r->stats = s;
  }
  uv_mutex_unlock(&stats_lock);
  return rc;
}

/* Reads and parses the route file; on success the new config is in
 * force. */
static int load(char *err, size_t errcap) {
  mc_buf b;
  int rc = gw_read_file(routes_file, 16u << 20, &b);
  if (rc) {
    mc_buf_free(&b);
    if (rc == MC_EIO)
      snprintf(err, errcap, "cannot open %s", routes_file);
    else
      snprintf(err, errcap, "%s: %s", routes_file, mc_strerror(rc));
    return rc;
  }
  gw_config *c;
  rc = gw_config_parse(mc_buf_slice(&b), routes_file, NULL, &c, err, errcap);
  mc_buf_free(&b);
  if (rc)
    return rc;
  if ((rc = attach_stats(c)) != 0) {
    gw_config_free(c);
    snprintf(err, errcap, "out of memory");
    return rc;
  }
  c->refs = 1;
  uv_mutex_lock(&cfg_lock);
  gw_config *old = cfg_current;
  cfg_current = c;
  uv_mutex_unlock(&cfg_lock);
  gw_config_release(old);
  return 0;
}

static int on_start(mc_app *app, void *ud) {
  char err[1024];
  int rc = load(err, sizeof err);
  if (rc) {
    MC_LOG(MC_LOG_ERROR, "the route file is refused",
           MC_LOG_CSTR("error", err));
    fprintf(stderr, "microc-gateway: %s\n", err);
    return rc;
  }
  if ((rc = gw_limiter_new(&limiter, (size_t)max_limit_keys)) != 0)
    return rc;
  gw_config *c = gw_config_acquire();
  MC_LOG(MC_LOG_INFO, "routes loaded", MC_LOG_CSTR("file", routes_file),
         MC_LOG_INT("routes", (int64_t)c->nroutes));
  gw_config_release(c);
  return 0;
}

static void on_reload(mc_app *app, void *ud) {
  char err[1024];
  int rc = load(err, sizeof err);
  if (rc) {
    MC_LOG(MC_LOG_ERROR, "the route file is refused; the routes in force stay",
           MC_LOG_CSTR("error", err));
    return;
  }
  gw_config *c = gw_config_acquire();
  MC_LOG(MC_LOG_INFO, "routes reloaded", MC_LOG_CSTR("file", routes_file),
         MC_LOG_INT("routes", (int64_t)c->nroutes));
  gw_config_release(c);
}

static void on_stop(mc_app *app, void *ud) {
  uv_mutex_lock(&cfg_lock);
  gw_config *c = cfg_current;
  cfg_current = NULL;
  uv_mutex_unlock(&cfg_lock);
  gw_config_release(c);
  gw_limiter_free(limiter);
  limiter = NULL;
  size_t it = 0;
  void *v;
  while (mc_map_next(&stats_by_name, &it, NULL, &v)) {
    free((char *)((gw_stats *)v)->name);
    free(v);
  }
  mc_map_free(&stats_by_name);
}

/* ---- /metrics ----------------------------------------------------------- */

static void label(mc_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      mc_buf_append_char(b, '\\');
    if (*s == '\n')
      mc_buf_append_cstr(b, "\\n");
    else
      mc_buf_append_char(b, *s);
  }
}

#define LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

static int gateway_metrics(mc_app *app, mc_buf *b, void *ud) {
  mc_buf_append_cstr(
      b, "# HELP microc_gateway_requests_total Answers by route and status "
         "class.\n# TYPE microc_gateway_requests_total counter\n");
  uv_mutex_lock(&stats_lock);
  size_t it = 0;
  void *v;
  while (mc_map_next(&stats_by_name, &it, NULL, &v)) {
    gw_stats *s = v;
    for (int k = 1; k <= 5; k++) {
      mc_buf_append_cstr(b, "microc_gateway_requests_total{route=\"");
      label(b, s->name);
      mc_buf_appendf(b, "\",code=\"%dxx\"} %llu\n", k,
                     (unsigned long long)LOAD(s->by_class[k]));
    }
  }
  mc_buf_append_cstr(b, "# HELP microc_gateway_request_duration_seconds "
                        "Time to answer, by route.\n# TYPE "
                        "microc_gateway_request_duration_seconds histogram\n");
  it = 0;
  while (mc_map_next(&stats_by_name, &it, NULL, &v)) {
    gw_stats *s = v;
    uint64_t cum = 0;
    for (int k = 0; k <= GW_LATENCY_BUCKETS; k++) {
      cum += LOAD(s->latency[k]);
      mc_buf_append_cstr(b, "microc_gateway_request_duration_seconds_bucket{"
                            "route=\"");
      label(b, s->name);
      if (k < GW_LATENCY_BUCKETS)
        mc_buf_appendf(b, "\",le=\"%g\"} %llu\n", gw_latency_bounds[k],
                       (unsigned long long)cum);
      else
        mc_buf_appendf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    mc_buf_append_cstr(b,
                       "microc_gateway_request_duration_seconds_sum{route=\"");
    label(b, s->name);
    mc_buf_appendf(b, "\"} %.6f\n", (double)LOAD(s->latency_sum_us) / 1e6);
    mc_buf_append_cstr(
        b, "microc_gateway_request_duration_seconds_count{route=\"");
    label(b, s->name);
    mc_buf_appendf(b, "\"} %llu\n", (unsigned long long)cum);
  }
  mc_buf_append_cstr(b, "# HELP microc_gateway_refusals_total Requests the "
                        "gateway answered itself, by route and reason.\n"
                        "# TYPE microc_gateway_refusals_total counter\n");
  it = 0;
  while (mc_map_next(&stats_by_name, &it, NULL, &v)) {
    gw_stats *s = v;
    struct {
      const char *reason;
      uint64_t n;
    } rs[] = {{"unauthorized", LOAD(s->unauthorized)},
              {"forbidden", LOAD(s->forbidden)},
              {"rate_limited", LOAD(s->rate_limited)},
              {"bad_gateway", LOAD(s->bad_gateway)},
              {"unavailable", LOAD(s->unavailable)},
              {"timeout", LOAD(s->timeouts)},
              {"preflight", LOAD(s->preflights)}};
    for (size_t k = 0; k < MC_COUNT(rs); k++) {
      mc_buf_append_cstr(b, "microc_gateway_refusals_total{route=\"");
      label(b, s->name);
      mc_buf_appendf(b, "\",reason=\"%s\"} %llu\n", rs[k].reason,
                     (unsigned long long)rs[k].n);
    }
  }
  uv_mutex_unlock(&stats_lock);
  return mc_buf_appendf(b,
                        "# HELP microc_gateway_rate_limit_keys Clients and "
                        "subjects with a bucket.\n# TYPE "
                        "microc_gateway_rate_limit_keys gauge\n"
                        "microc_gateway_rate_limit_keys %zu\n",
                        limiter ? gw_limiter_keys(limiter) : 0);
}

static int health(mc_req *req) {
  return mc_res_json(req, 200, MC_LIT("{\"status\":\"ok\"}"));
}

static const mc_route routes[] = {
    {"GET", "/health", health, .hidden = true},
};

static const mc_app_hooks hooks = {
    .start = on_start,
    .reload = on_reload,
    .stop = on_stop,
};

int main(int argc, char **argv) {
  mc_app_info info = {
      .name = "microc-gateway",
      .version = MC_VERSION,
      .title = "microc-gateway",
      .description = "The edge of a microc system: routes to services found "
                     "in the registry,\nwith JWT checks, rate limits, CORS, "
                     "timeouts, retries and circuit breakers.",
      .no_docs = true, /* /docs and /openapi.json belong to the routes */
  };
  uv_mutex_init(&cfg_lock);
  uv_mutex_init(&stats_lock);
  mc_app *app;
  if (mc_app_new(&app, &info) != 0)
    return 1;
  int err = mc_app_routes(app, routes, MC_COUNT(routes));
  if (!err)
    err = mc_app_routes(app, &gw_proxy_route, 1);
  if (!err)
    err = mc_app_options(app, options, MC_COUNT(options));
  if (!err)
    err = mc_app_default(app, "listen", "127.0.0.1:8080");
  if (!err)
    err = mc_app_default(app, "registry", "http://127.0.0.1:8500");
  if (!err)
    err = mc_app_hooks_add(app, &hooks);
  if (!err)
    err = mc_app_metrics_add(app, gateway_metrics, NULL);
  if (err) {
    fprintf(stderr, "microc-gateway: cannot set up: %s\n", mc_strerror(err));
    return 1;
  }
  int rc = mc_app_main(app, argc, argv);
  mc_app_free(app);
  return rc;
}
