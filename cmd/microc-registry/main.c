/* microc-registry: service discovery with Consul's HTTP API, so that
 * existing Consul clients work against it unmodified. One process, one
 * worker thread (the catalog, its check fibers and its store live there),
 * registrations kept in SQLite under --data-dir. */
#include <microc/http.h>
#include <microc/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry.h"

static const char *data_dir, *node_name, *datacenter;
static uint64_t min_interval_ms, check_timeout_ms;
static char hostname[256];

static const mc_option options[] = {
    {"data-dir", "MICROC_DATA_DIR", MC_OPT_STR, &data_dir,
     "microc-registry-data",
     "directory for the registry's database (created if missing)"},
    {"node", "MICROC_NODE", MC_OPT_STR, &node_name, NULL,
     "node name in answers (default: the host name)"},
    {"datacenter", "MICROC_DATACENTER", MC_OPT_STR, &datacenter, "dc1",
     "datacenter name in answers"},
    {"min-check-interval", "MICROC_MIN_CHECK_INTERVAL", MC_OPT_DURATION,
     &min_interval_ms, "1s",
     "checks asking for a shorter interval run at this one (as Consul)"},
    {"check-timeout", "MICROC_CHECK_TIMEOUT", MC_OPT_DURATION,
     &check_timeout_ms, "10s", "timeout of checks that give none"},
};

static void new_node_id(char out[37]) {
  char hex[32];
  mc_rand_hex(hex, 16);
  hex[12] = '4'; /* a version 4 UUID */
  hex[16] = "89ab"[hex[16] % 4];
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
           hex + 16, hex + 20);
}

static int on_start(mc_app *app, void *ud) {
  char err[512];
  R.app = app;
  R.datacenter = datacenter;
  if (!node_name) {
    if (gethostname(hostname, sizeof hostname - 1) != 0 || !hostname[0])
      strcpy(hostname, "microc");
    node_name = hostname;
  }
  R.node = node_name;
  R.min_interval_ms = min_interval_ms ? min_interval_ms : 1;
  R.default_timeout_ms = check_timeout_ms ? check_timeout_ms : 10000;
  if (reg_store_open(data_dir, &R.store, err, sizeof err) != 0) {
    MC_LOG(MC_LOG_ERROR, "cannot open the data directory",
           MC_LOG_CSTR("data_dir", data_dir), MC_LOG_CSTR("error", err));
    return MC_EIO;
  }
  return 0;
}

/* The catalog lives on worker 0 (the only one): load it there, where its
 * check fibers will run. */
static void on_worker_start(mc_app *app, int worker, void *ud) {
  const char *host = mc_app_host(app);
  snprintf(R.address, sizeof R.address, "%s",
           !host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::")
               ? "127.0.0.1"
               : host);
  R.port = mc_app_port(app);
  if (reg_store_load(R.store) != 0)
    MC_LOG(MC_LOG_ERROR, "could not read all stored registrations");
  if (!R.node_id[0]) {
    new_node_id(R.node_id);
    reg_store_meta(R.store, "node_id", R.node_id);
  }
  if (!R.node_index) {
    R.node_index = ++R.index;
    char v[24];
    snprintf(v, sizeof v, "%llu", (unsigned long long)R.node_index);
    reg_store_meta(R.store, "node_index", v);
    reg_store_index(R.store);
  }
  MC_LOG(MC_LOG_INFO, "catalog loaded",
         MC_LOG_INT("services", (int64_t)mc_map_len(&R.services)),
         MC_LOG_INT("checks", (int64_t)mc_map_len(&R.checks)),
         MC_LOG_INT("index", (int64_t)R.index),
         MC_LOG_CSTR("data_dir", data_dir));
}

/* No new check fibers from here on; the running ones are canceled next. */
static void on_worker_stop(mc_app *app, int worker, void *ud) {
  R.stopping = true;
}

static void on_stop(mc_app *app, void *ud) {
  reg_catalog_free();
  reg_store_close(R.store);
  R.store = NULL;
}

static int registry_metrics(mc_app *app, mc_buf *b, void *ud) {
  size_t by_status[4] = {0};
  size_t it = 0;
  void *v;
  while (mc_map_next(&R.checks, &it, NULL, &v))
    by_status[((reg_check *)v)->status & 3]++;
  return mc_buf_appendf(
      b,
      "# HELP microc_registry_services Registered service instances.\n"
      "# TYPE microc_registry_services gauge\n"
      "microc_registry_services %zu\n"
      "# HELP microc_registry_checks Checks by status.\n"
      "# TYPE microc_registry_checks gauge\n"
      "microc_registry_checks{status=\"passing\"} %zu\n"
      "microc_registry_checks{status=\"warning\"} %zu\n"
      "microc_registry_checks{status=\"critical\"} %zu\n"
      "# HELP microc_registry_check_runs_total Checks run.\n"
      "# TYPE microc_registry_check_runs_total counter\n"
      "microc_registry_check_runs_total %llu\n"
      "# HELP microc_registry_check_failures_total Check runs that were "
      "critical.\n"
      "# TYPE microc_registry_check_failures_total counter\n"
      "microc_registry_check_failures_total %llu\n"
      "# HELP microc_registry_index The catalog's index.\n"
      "# TYPE microc_registry_index gauge\n"
      "microc_registry_index %llu\n",
      mc_map_len(&R.services), by_status[MC_HEALTH_PASSING],
      by_status[MC_HEALTH_WARNING], by_status[MC_HEALTH_CRITICAL],
      (unsigned long long)R.checks_run, (unsigned long long)R.checks_failed,
      (unsigned long long)R.index);
}

static const mc_app_hooks hooks = {
    .start = on_start,
    .worker_start = on_worker_start,
    .worker_stop = on_worker_stop,
    .stop = on_stop,
};

int main(int argc, char **argv) {
  mc_app_info info = {
      .name = "microc-registry",
      .version = MC_VERSION,
      .title = "microc-registry",
      .description = "Service discovery with Consul's HTTP API: register "
                     "services and health\nchecks, find healthy instances, "
                     "watch them with blocking queries.",
      .max_workers = 1,
  };
  mc_app *app;
  if (mc_app_new(&app, &info) != 0)
    return 1;
  int err = mc_app_routes(app, reg_routes, reg_nroutes);
  if (!err)
    err = mc_app_options(app, options, MC_COUNT(options));
  if (!err)
    err = mc_app_default(app, "listen", "127.0.0.1:8500");
  if (!err)
    err = mc_app_default(app, "workers", "1");
  if (!err)
    err = mc_app_default(app, "access-log", "off");
  if (!err)
    err = mc_app_hooks_add(app, &hooks);
  if (!err)
    err = mc_app_metrics_add(app, registry_metrics, NULL);
  if (err) {
    fprintf(stderr, "microc-registry: cannot set up: %s\n", mc_strerror(err));
    return 1;
  }
  int rc = mc_app_main(app, argc, argv);
  mc_app_free(app);
  return rc;
}
