/* Self-registration: an mc_app given --registry registers itself once it
 * listens (with an HTTP check on /health/ready), keeps registering again
 * if the registry forgets it (a registry restarted without its data), and
 * deregisters on SIGTERM before it drains, so callers stop choosing it
 * while it still answers. All of it runs on fibers of the control loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery_int.h"
#include "microc/client.h"
#include "microc/consul.h"
#include "microc/fiber.h"
#include "microc/log.h"

#define RECHECK_MS 30000

static struct {
  mc__register_opts o;
  char *id;
  char *body; /* the registration, as sent */
  bool leaving;
  bool registered;
} S;

static int put(const char *path, mc_slice body, uint64_t timeout_ms,
               int *status) {
  mc_arena *a;
  if (mc_arena_new(&a, 1024, 0) != 0)
    return MC_ENOMEM;
  char url[1024];
  snprintf(url, sizeof url, "%s%s", S.o.registry, path);
  mc_http_response res;
  int err = mc_http_do(
      &(mc_http_request){
          .method = "PUT", .url = url, .body = body, .timeout_ms = timeout_ms},
      a, &res);
  *status = res.status;
  mc_arena_free(a);
  return err;
}

static bool still_known(void) {
  mc_arena *a;
  if (mc_arena_new(&a, 1024, 0) != 0)
    return true;
  char url[1024];
  snprintf(url, sizeof url, "%s/v1/agent/service/%s", S.o.registry, S.id);
  mc_http_response res;
  int err =
      mc_http_do(&(mc_http_request){.url = url, .timeout_ms = 5000}, a, &res);
  bool known = err || res.status != 404; /* unsure: assume it is */
  mc_arena_free(a);
  return known;
}

/* Registers, retrying with backoff until it works; then looks every 30 s
 * that the registry still knows us. */
static void keep_registered(void *arg) {
  unsigned fails = 0;
  while (!S.leaving && !mc_fiber_canceled()) {
    if (!S.registered || !still_known()) {
      int status = 0;
      int err = put("/v1/agent/service/register", mc_slice_cstr(S.body), 5000,
                    &status);
      if (S.leaving)
        break;
      if (!err && status == 200) {
        S.registered = true;
        fails = 0;
        MC_LOG(MC_LOG_INFO, "registered", MC_LOG_CSTR("id", S.id),
               MC_LOG_CSTR("registry", S.o.registry));
      } else {
        S.registered = false;
        if (fails++ % 20 == 0)
          MC_LOG(MC_LOG_WARN, "cannot register; will keep trying",
                 MC_LOG_CSTR("registry", S.o.registry),
                 MC_LOG_CSTR("error", err ? mc_strerror(err) : "refused"),
                 MC_LOG_INT("status", status));
        if (mc_sleep(mc_backoff_ms(fails < 6 ? fails : 6, 200, 5000) + 50))
          break;
        continue;
      }
    }
    if (mc_sleep(RECHECK_MS) != 0)
      break;
  }
}

static void on_ready(mc_app *app, void *ud) {
  const char *host = S.o.advertise;
  if (!host || !*host) {
    host = mc_app_host(app);
    if (!host || !strcmp(host, "0.0.0.0") || !strcmp(host, "::"))
      host = "127.0.0.1";
  }
  int port = mc_app_port(app);
  const char *name = mc_app_name(app);
  char *id = NULL, *check = NULL;
  if (asprintf(&id, "%s-%s-%d", name, host, port) < 0)
    id = NULL;
  bool v6 = strchr(host, ':') != NULL;
  if (asprintf(&check, "http://%s%s%s:%d/health/ready", v6 ? "[" : "", host,
               v6 ? "]" : "", port) < 0)
    check = NULL;
  /* tags: a comma-separated list */
  const char *tags[32];
  size_t ntags = 0;
  char *tagbuf = S.o.tags ? strdup(S.o.tags) : NULL;
  for (char *save = NULL, *t = tagbuf ? strtok_r(tagbuf, ",", &save) : NULL;
       t && ntags < 32; t = strtok_r(NULL, ",", &save))
    if (*t)
      tags[ntags++] = t;
  mc_consul_kv meta[] = {{"microc", MC_VERSION},
                         {"version", S.o.version ? S.o.version : ""}};
  mc_consul_check chk = {
      .id = "",
      .name = "",
      .notes = "",
      .service_id = "",
      .kind = MC_CHECK_HTTP,
      .target = check ? check : "",
      .method = "",
      .body = "",
      .interval_ns = (int64_t)S.o.check_interval_ms * 1000000,
      .timeout_ns =
          (int64_t)(S.o.check_interval_ms < 2000 ? S.o.check_interval_ms
                                                 : 2000) *
          1000000,
      .deregister_after_ns = (int64_t)S.o.deregister_after_ms * 1000000,
  };
  mc_consul_service svc = {
      .id = id ? id : name,
      .name = name,
      .address = host,
      .port = port,
      .tags = tags,
      .ntags = ntags,
      .meta = meta,
      .nmeta = S.o.version ? 2 : 1,
      .weight_passing = 1,
      .weight_warning = 1,
      .checks = &chk,
      .nchecks = check ? 1 : 0,
  };
  mc_buf b;
  mc_buf_init(&b, 0);
  if (id && mc_consul_encode_service(&svc, &b) == 0) {
    S.id = id;
    S.body = b.ptr;
    id = NULL;
    mc_spawn(keep_registered, NULL);
  } else {
    mc_buf_free(&b);
    MC_LOG(MC_LOG_ERROR, "cannot build the registration");
  }
  free(tagbuf);
  free(check);
  free(id);
}

static void on_draining(mc_app *app, void *ud) {
  S.leaving = true;
  if (!S.id || !S.registered)
    return;
  char path[512];
  snprintf(path, sizeof path, "/v1/agent/service/deregister/%s", S.id);
  int status = 0;
  int err = put(path, MC_LIT(""), 2000, &status);
  if (err || status != 200)
    MC_LOG(MC_LOG_WARN, "could not deregister",
           MC_LOG_CSTR("error", err ? mc_strerror(err) : "refused"),
           MC_LOG_INT("status", status));
  else
    MC_LOG(MC_LOG_INFO, "deregistered", MC_LOG_CSTR("id", S.id));
}

static void on_stop(mc_app *app, void *ud) {
  free(S.id);
  free(S.body);
  S.id = S.body = NULL;
}

static const mc_app_hooks hooks = {
    .ready = on_ready,
    .draining = on_draining,
    .stop = on_stop,
};

int mc__register_setup(mc_app *app, const mc__register_opts *o) {
  S.o = *o;
  S.leaving = S.registered = false;
  if (!S.o.check_interval_ms)
    S.o.check_interval_ms = 10000;
  return mc_app_hooks_add(app, &hooks);
}
