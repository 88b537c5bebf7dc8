/* Apps: routes, middleware, hooks, and the standard command line of a
 * service (an mc_option table: the built-in options, then the app's). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discovery/discovery_int.h"
#include "http/server_int.h"
#include "microc/log.h"

void mc__docs_free(mc_app *app);

#define MC__MAX_OPTIONS 64
#define MC__MAX_HOOKS 8

/* The options every service has, aimed at the app's own config. */
static int builtin_options(mc_app *app) {
  mc__config *c = &app->cfg;
  const mc_option opts[] = {
      {"listen", "MICROC_LISTEN", MC_OPT_STR, &c->listen, "127.0.0.1:8000",
       "HOST:PORT to listen on; port 0 picks a free port and prints it"},
      {"workers", "MICROC_WORKERS", MC_OPT_INT, &c->workers, "0",
       "worker threads, each with its own loop and listener (0: one per "
       "core)",
       0, 256},
      {"name", "MICROC_NAME", MC_OPT_STR, &c->name, NULL,
       "service name in logs, metrics and the registry (default: the "
       "program's)"},
      {"log-level", "MICROC_LOG_LEVEL", MC_OPT_STR, &c->log_level, "info",
       "debug, info, warn, error or off"},
      {"log-format", "MICROC_LOG_FORMAT", MC_OPT_STR, &c->log_format, "json",
       "json (one object per line) or text"},
      {"access-log", "MICROC_ACCESS_LOG", MC_OPT_BOOL, &c->access_log, "on",
       "log every request (on or off)"},
      {"max-body", "MICROC_MAX_BODY", MC_OPT_SIZE, &c->max_body, "1m",
       "largest request body a route accepts unless it says otherwise"},
      {"max-header-bytes", "MICROC_MAX_HEADER_BYTES", MC_OPT_SIZE, &c->max_head,
       "16k", "largest request line plus headers (431 past it)"},
      {"max-headers", "MICROC_MAX_HEADERS", MC_OPT_INT, &c->max_headers, "100",
       "most header fields in a request (431 past it)", 1, 10000},
      {"idle-timeout", "MICROC_IDLE_TIMEOUT", MC_OPT_DURATION,
       &c->idle_timeout_ms, "60s",
       "close a keep-alive connection idle this long"},
      {"header-timeout", "MICROC_HEADER_TIMEOUT", MC_OPT_DURATION,
       &c->header_timeout_ms, "10s",
       "a request head must arrive whole within this (408)"},
      {"body-timeout", "MICROC_BODY_TIMEOUT", MC_OPT_DURATION,
       &c->body_timeout_ms, "10s",
       "longest pause while a request body arrives (408)"},
      {"write-timeout", "MICROC_WRITE_TIMEOUT", MC_OPT_DURATION,
       &c->write_timeout_ms, "30s",
       "close a connection whose client stops reading the answer"},
      {"shutdown-timeout", "MICROC_SHUTDOWN_TIMEOUT", MC_OPT_DURATION,
       &c->shutdown_timeout_ms, "10s",
       "on SIGTERM, how long in-flight requests may take before they are "
       "canceled"},
      {"request-timeout", "MICROC_REQUEST_TIMEOUT", MC_OPT_DURATION,
       &c->request_timeout_ms, "60s",
       "time a handler's outbound calls have in all (0: none); a caller's "
       "X-Request-Timeout-Ms narrows it"},
      {"max-connections", "MICROC_MAX_CONNECTIONS", MC_OPT_INT,
       &c->max_connections, "10000",
       "open connections per worker; more are closed at once (0: no cap)", 0,
       10000000},
      {"fiber-stack", "MICROC_FIBER_STACK", MC_OPT_SIZE, &c->fiber_stack, "0",
       "stack size of a handler's fiber (0: 256k, 1m under sanitizers)"},
      {"registry", "MICROC_REGISTRY", MC_OPT_STR, &c->registry, NULL,
       "registry URL (Consul's API, e.g. http://127.0.0.1:8500): register "
       "there and find services there"},
      {"advertise", "MICROC_ADVERTISE", MC_OPT_STR, &c->advertise, NULL,
       "address others reach this service at (default: the listen host)"},
      {"service-tags", "MICROC_SERVICE_TAGS", MC_OPT_STR, &c->service_tags,
       NULL, "comma-separated tags to register with"},
      {"check-interval", "MICROC_CHECK_INTERVAL", MC_OPT_DURATION,
       &c->check_interval_ms, "10s",
       "how often the registry checks /health/ready"},
      {"deregister-after", "MICROC_DEREGISTER_AFTER", MC_OPT_DURATION,
       &c->deregister_after_ms, "1m",
       "the registry drops this service after failing checks this long (0: "
       "never)"},
      {"balancer", "MICROC_BALANCER", MC_OPT_STR, &c->balancer, "round-robin",
       "how calls by name pick an instance: round-robin, "
       "least-outstanding or p2c"},
      {"tls-cert", "MICROC_TLS_CERT", MC_OPT_STR, &c->tls_cert, NULL,
       "serve HTTPS with this certificate chain (PEM); needs --tls-key"},
      {"tls-key", "MICROC_TLS_KEY", MC_OPT_STR, &c->tls_key, NULL,
       "the private key (PEM) of --tls-cert"},
      {"docs-dir", "MICROC_DOCS_DIR", MC_OPT_STR, &c->docs_dir,
       MICROC_SWAGGER_UI_DIR,
       "directory with the Swagger UI files that /docs serves"},
  };
  return mc_app_options(app, opts, MC_COUNT(opts));
}

int mc_app_options(mc_app *app, const mc_option *opts, size_t n) {
  if (app->nopts + n > MC__MAX_OPTIONS)
    return MC_ETOOBIG;
  for (size_t i = 0; i < n; i++) {
    if (!opts[i].flag || !opts[i].target || !opts[i].type)
      return MC_EINVAL;
    for (size_t k = 0; k < app->nopts; k++)
      if (!strcmp(app->opts[k].flag, opts[i].flag))
        return MC_EEXISTS;
  }
  for (size_t i = 0; i < n; i++)
    app->opts[app->nopts++] = opts[i];
  return 0;
}

int mc_app_default(mc_app *app, const char *flag, const char *value) {
  for (size_t i = 0; i < app->nopts; i++)
    if (!strcmp(app->opts[i].flag, flag)) {
      app->opts[i].def = value;
      return 0;
    }
  return MC_ENOTFOUND;
}

int mc_app_hooks_add(mc_app *app, const mc_app_hooks *h) {
  if (app->nhooks == MC__MAX_HOOKS)
    return MC_ETOOBIG;
  app->hooks[app->nhooks++] = h;
  return 0;
}

int mc_app_metrics_add(mc_app *app,
                       int (*fn)(mc_app *app, mc_buf *out, void *ud),
                       void *ud) {
  if (app->nmetrics == MC_COUNT(app->metrics))
    return MC_ETOOBIG;
  app->metrics[app->nmetrics].fn = fn;
  app->metrics[app->nmetrics].ud = ud;
  app->nmetrics++;
  return 0;
}

bool mc_app_draining(const mc_app *app) {
  return mc__server_draining(app);
}

const char *mc_app_name(const mc_app *app) {
  return app->info.name;
}
int mc_app_port(const mc_app *app) {
  return app->server ? app->server->port : 0;
}
const char *mc_app_host(const mc_app *app) {
  return app->server ? app->server->host : NULL;
}
int mc_app_worker_count(const mc_app *app) {
  return app->server ? app->server->nworkers : 0;
}

int mc_app_new(mc_app **out, const mc_app_info *info) {
  mc_app *app = calloc(1, sizeof *app);
  if (!app)
    return MC_ENOMEM;
  app->info = *info;
  if (!app->info.name)
    app->info.name = "service";
  app->opts = calloc(MC__MAX_OPTIONS, sizeof *app->opts);
  app->hooks = calloc(MC__MAX_HOOKS, sizeof *app->hooks);
  if (!app->opts || !app->hooks || builtin_options(app) != 0) {
    free(app->opts);
    free(app->hooks);
    free(app);
    return MC_ENOMEM;
  }
  uv_mutex_init(&app->lock);
  *out = app;
  return 0;
}

void mc_app_free(mc_app *app) {
  if (!app)
    return;
  mc__router_free(&app->router);
  free(app->routes);
  mc__tls_ctx_free(app->tls_ctx);
  free(app->openapi);
  mc__docs_free(app);
  free(app->opts);
  free(app->hooks);
  free(app->registry_url);
  uv_mutex_destroy(&app->lock);
  free(app);
}

int mc_app_routes(mc_app *app, const mc_route *routes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (app->nroutes == app->routes_cap) {
      size_t cap = app->routes_cap ? app->routes_cap * 2 : 16;
      const mc_route **r = realloc(app->routes, cap * sizeof *r);
      if (!r)
        return MC_ENOMEM;
      app->routes = r;
      app->routes_cap = cap;
    }
    const mc_route *r = &routes[i];
    const mc_model *models[] = {r->params, r->query, r->body, r->response};
    for (size_t k = 0; k < MC_COUNT(models); k++)
      if (models[k] && mc_model_check(models[k]) != 0)
        return MC_EINVAL;
    int err = mc__router_add(&app->router, r, (uint32_t)app->nroutes);
    if (err)
      return err;
    app->routes[app->nroutes++] = &routes[i];
  }
  return 0;
}

int mc_app_use(mc_app *app, const mc_middleware *mw) {
  if (app->nmw == MC__MAX_MIDDLEWARE)
    return MC_ETOOBIG;
  app->mw[app->nmw++] = mw;
  return 0;
}

static void usage(const mc_app *app, const char *prog, FILE *to) {
  fprintf(to, "Usage: %s [options]\n\n", prog);
  if (app->info.description)
    fprintf(to, "%s\n\n", app->info.description);
  fprintf(
      to,
      "Serves the %s HTTP API, with /health/live, /health/ready, /metrics,\n"
      "/openapi.json and /docs. Logs are JSON lines on stderr.\n\n"
      "Options (each also read from its environment variable):\n",
      app->info.name);
  mc_options_usage(app->opts, app->nopts, to);
  fprintf(to,
          "  %-30s %s\n  %-30s %s\n\n"
          "DURATION: 500ms, 10s, 1m30s or a number of milliseconds. SIZE: "
          "bytes with an\noptional k, m or g. SIGTERM or SIGINT: stop "
          "accepting, finish in-flight\nrequests, exit 0.\n",
          "--help", "print this and exit", "--version",
          "print the version and exit");
}

static const char *prog_name(const char *argv0) {
  const char *s = strrchr(argv0, '/');
  return s ? s + 1 : argv0;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(mc_app *app, int argc, char **argv) {
  const char *prog = prog_name(argv[0]);
  bool help, version;
  if (mc_options_parse(app->opts, app->nopts, argc, argv, prog, stderr, &help,
                       &version) != 0)
    return 2;
  if (help) {
    usage(app, prog, stdout);
    return 0;
  }
  if (version) {
    printf("%s %s (microc %s)\n", prog,
           app->info.version ? app->info.version : MC_VERSION, MC_VERSION);
    return 0;
  }
  return -1;
}

int mc_app_main(mc_app *app, int argc, char **argv) {
  int rc = parse_args(app, argc, argv);
  if (rc >= 0)
    return rc;
  mc__config *cfg = &app->cfg;
  if (cfg->name)
    app->info.name = cfg->name;
  mc_log_level level;
  if (mc_log_level_parse(cfg->log_level, &level) != 0 ||
      (strcmp(cfg->log_format, "json") && strcmp(cfg->log_format, "text"))) {
    fprintf(stderr, "%s: bad --log-level or --log-format\n",
            prog_name(argv[0]));
    return 2;
  }
  mc_log_setup(app->info.name, level, strcmp(cfg->log_format, "json") == 0);
  {
    struct sockaddr_storage ss;
    char host[64];
    int port;
    if (mc__parse_listen(cfg->listen, &ss, host, sizeof host, &port) != 0) {
      fprintf(stderr,
              "%s: bad --listen '%s': want HOST:PORT, e.g. "
              "127.0.0.1:8000 or [::1]:0\n",
              prog_name(argv[0]), cfg->listen);
      return 2;
    }
  }
  if (cfg->max_head < 256 || cfg->max_head > (64u << 20)) {
    fprintf(stderr, "%s: --max-header-bytes must be between 256 and 64m\n",
            prog_name(argv[0]));
    return 2;
  }
  int err = mc__builtin_routes(app);
  if (err) {
    MC_LOG(MC_LOG_ERROR, "bad route table",
           MC_LOG_CSTR("error", mc_strerror(err)));
    return 1;
  }
  if ((err = mc__openapi_prepare(app)) != 0) {
    MC_LOG(MC_LOG_ERROR, "cannot build the OpenAPI document",
           MC_LOG_CSTR("error", mc_strerror(err)),
           MC_LOG_CSTR("hint", err == MC_EEXISTS
                                   ? "two different models share a name"
                                   : ""));
    return 1;
  }
  if (!cfg->tls_cert != !cfg->tls_key) {
    fprintf(stderr, "%s: --tls-cert and --tls-key go together\n",
            prog_name(argv[0]));
    return 2;
  }
  if (cfg->tls_cert) {
    char why[512];
    if (mc__tls_ctx_new(cfg->tls_cert, cfg->tls_key, &app->tls_ctx, why,
                        sizeof why) != 0) {
      fprintf(stderr, "%s: %s\n", prog_name(argv[0]), why);
      return 2;
    }
  }
  mc_balancer bal;
  if (mc_balancer_parse(cfg->balancer, &bal) != 0) {
    fprintf(stderr,
            "%s: bad --balancer '%s': round-robin, "
            "least-outstanding or p2c\n",
            prog_name(argv[0]), cfg->balancer);
    return 2;
  }
  if (cfg->registry && *cfg->registry) {
    if (mc_discovery_setup(cfg->registry, bal) != 0) {
      fprintf(stderr, "%s: bad --registry '%s': want http://HOST:PORT\n",
              prog_name(argv[0]), cfg->registry);
      return 2;
    }
    char *url = strdup(cfg->registry);
    if (!url)
      return 1;
    for (size_t n = strlen(url); n && url[n - 1] == '/'; n--)
      url[n - 1] = 0;
    app->registry_url = url;
    mc__register_opts ro = {.registry = url,
                            .advertise = cfg->advertise,
                            .tags = cfg->service_tags,
                            .version = app->info.version,
                            .check_interval_ms = cfg->check_interval_ms,
                            .deregister_after_ms = cfg->deregister_after_ms};
    if ((err = mc__register_setup(app, &ro)) != 0)
      return 1;
  }
  for (size_t i = 0; i < app->nhooks; i++)
    if (app->hooks[i]->start &&
        (err = app->hooks[i]->start(app, app->hooks[i]->ud)) != 0) {
      MC_LOG(MC_LOG_ERROR, "start-up failed",
             MC_LOG_CSTR("error", mc_strerror(err)));
      return 1;
    }
  err = mc__server_run(app);
  for (size_t i = app->nhooks; i-- > 0;)
    if (app->hooks[i]->stop)
      app->hooks[i]->stop(app, app->hooks[i]->ud);
  mc__discovery_free();
  return err ? 1 : 0;
}

int mc_serve(const mc_app_info *info, const mc_route *routes, size_t n,
             int argc, char **argv) {
  mc_app *app;
  if (mc_app_new(&app, info) != 0)
    return 1;
  int err = mc_app_routes(app, routes, n);
  if (err) {
    fprintf(stderr, "%s: bad route table: %s\n", info->name, mc_strerror(err));
    mc_app_free(app);
    return 1;
  }
  int rc = mc_app_main(app, argc, argv);
  mc_app_free(app);
  return rc;
}
