/* Apps: routes, middleware, and the standard command line of a service.
 *
 * The options live in one table that gives the flag, its environment
 * variable, its default, its parsing and its --help line. Flags override
 * MICROC_* variables, which override defaults. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"
#include "microc/log.h"

void mc__docs_free(mc_app *app);

typedef enum { OPT_STR, OPT_INT, OPT_BYTES, OPT_MS, OPT_BOOL } opt_type;

typedef struct opt {
  const char *flag; /* without the leading -- */
  const char *env;
  opt_type type;
  size_t offset;
  const char *def;
  const char *help;
} opt;

#define O(field) offsetof(mc__config, field)

static const opt options[] = {
    {"listen", "MICROC_LISTEN", OPT_STR, O(listen), "127.0.0.1:8000",
     "HOST:PORT to listen on; port 0 picks a free port and prints it"},
    {"workers", "MICROC_WORKERS", OPT_INT, O(workers), "0",
     "worker threads, each with its own loop and listener (0: one per core)"},
    {"name", "MICROC_NAME", OPT_STR, O(name), NULL,
     "service name in logs and metrics (default: the program's)"},
    {"log-level", "MICROC_LOG_LEVEL", OPT_STR, O(log_level), "info",
     "debug, info, warn, error or off"},
    {"log-format", "MICROC_LOG_FORMAT", OPT_STR, O(log_format), "json",
     "json (one object per line) or text"},
    {"access-log", "MICROC_ACCESS_LOG", OPT_BOOL, O(access_log), "on",
     "log every request (on or off)"},
    {"max-body", "MICROC_MAX_BODY", OPT_BYTES, O(max_body), "1m",
     "largest request body a route accepts unless it says otherwise"},
    {"max-header-bytes", "MICROC_MAX_HEADER_BYTES", OPT_BYTES, O(max_head),
     "16k", "largest request line plus headers (431 past it)"},
    {"max-headers", "MICROC_MAX_HEADERS", OPT_INT, O(max_headers), "100",
     "most header fields in a request (431 past it)"},
    {"idle-timeout", "MICROC_IDLE_TIMEOUT", OPT_MS, O(idle_timeout_ms), "60s",
     "close a keep-alive connection idle this long"},
    {"header-timeout", "MICROC_HEADER_TIMEOUT", OPT_MS, O(header_timeout_ms),
     "10s", "a request head must arrive whole within this (408)"},
    {"body-timeout", "MICROC_BODY_TIMEOUT", OPT_MS, O(body_timeout_ms), "10s",
     "longest pause while a request body arrives (408)"},
    {"write-timeout", "MICROC_WRITE_TIMEOUT", OPT_MS, O(write_timeout_ms),
     "30s", "close a connection whose client stops reading the answer"},
    {"shutdown-timeout", "MICROC_SHUTDOWN_TIMEOUT", OPT_MS,
     O(shutdown_timeout_ms), "10s",
     "on SIGTERM, how long in-flight requests may take before they are "
     "canceled"},
    {"max-connections", "MICROC_MAX_CONNECTIONS", OPT_INT, O(max_connections),
     "10000",
     "open connections per worker; more are closed at once (0: no cap)"},
    {"fiber-stack", "MICROC_FIBER_STACK", OPT_BYTES, O(fiber_stack_kb), "0",
     "stack size of a handler's fiber (0: 256k, 1m under sanitizers)"},
    {"docs-dir", "MICROC_DOCS_DIR", OPT_STR, O(docs_dir), MICROC_SWAGGER_UI_DIR,
     "directory with the Swagger UI files that /docs serves"},
};

static int parse_bytes(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (end == s || errno || s[0] == '-')
    return MC_EINVAL;
  uint64_t mul = 1;
  if (*end == 'k' || *end == 'K')
    mul = 1024, end++;
  else if (*end == 'm' || *end == 'M')
    mul = 1024 * 1024, end++;
  else if (*end == 'g' || *end == 'G')
    mul = 1024ull * 1024 * 1024, end++;
  if (*end == 'b' || *end == 'B')
    end++;
  if (*end)
    return MC_EINVAL;
  *out = v * mul;
  return 0;
}

/* "500ms", "10s", "2m", or a plain number of milliseconds. */
static int parse_ms(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || errno || v < 0)
    return MC_EINVAL;
  double mul = 1;
  if (strcmp(end, "ms") == 0 || *end == 0)
    mul = 1;
  else if (strcmp(end, "s") == 0)
    mul = 1000;
  else if (strcmp(end, "m") == 0)
    mul = 60000;
  else
    return MC_EINVAL;
  *out = (uint64_t)(v * mul);
  return 0;
}

static int set_opt(mc__config *cfg, const opt *o, const char *val) {
  char *p = (char *)cfg + o->offset;
  uint64_t v;
  char *end;
  switch (o->type) {
  case OPT_STR:
    *(const char **)p = val;
    return 0;
  case OPT_INT: {
    errno = 0;
    long n = strtol(val, &end, 10);
    if (end == val || *end || errno || n < 0 || n > 1000000)
      return MC_EINVAL;
    if (strcmp(o->flag, "workers") == 0)
      *(int *)p = (int)n;
    else
      *(uint32_t *)p = (uint32_t)n;
    return 0;
  }
  case OPT_BYTES:
    if (parse_bytes(val, &v))
      return MC_EINVAL;
    if (o->offset == O(max_body))
      *(uint64_t *)p = v;
    else if (o->offset == O(fiber_stack_kb))
      *(uint32_t *)p = (uint32_t)(v / 1024);
    else
      *(uint32_t *)p = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    return 0;
  case OPT_MS:
    if (parse_ms(val, &v) || v > UINT32_MAX)
      return MC_EINVAL;
    *(uint32_t *)p = (uint32_t)v;
    return 0;
  case OPT_BOOL:
    if (!strcmp(val, "on") || !strcmp(val, "true") || !strcmp(val, "1") ||
        !strcmp(val, "yes"))
      *(bool *)p = true;
    else if (!strcmp(val, "off") || !strcmp(val, "false") ||
             !strcmp(val, "0") || !strcmp(val, "no"))
      *(bool *)p = false;
    else
      return MC_EINVAL;
    return 0;
  }
  return MC_EINVAL;
}

void mc__config_defaults(mc__config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  for (size_t i = 0; i < MC_COUNT(options); i++)
    if (options[i].def)
      set_opt(cfg, &options[i], options[i].def);
}

int mc_app_new(mc_app **out, const mc_app_info *info) {
  mc_app *app = calloc(1, sizeof *app);
  if (!app)
    return MC_ENOMEM;
  app->info = *info;
  if (!app->info.name)
    app->info.name = "service";
  uv_mutex_init(&app->lock);
  mc__config_defaults(&app->cfg);
  *out = app;
  return 0;
}

void mc_app_free(mc_app *app) {
  if (!app)
    return;
  mc__router_free(&app->router);
  free(app->routes);
  free(app->openapi);
  mc__docs_free(app);
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
  fprintf(
      to,
      "Usage: %s [options]\n\n%s%s%s"
      "Serves the %s HTTP API, with /health/live, /health/ready, /metrics,\n"
      "/openapi.json and /docs. Logs are JSON lines on stderr.\n\n"
      "Options (each also read from its environment variable):\n",
      prog, app->info.description ? app->info.description : "",
      app->info.description ? "\n" : "", app->info.description ? "\n" : "",
      app->info.name);
  for (size_t i = 0; i < MC_COUNT(options); i++) {
    const opt *o = &options[i];
    char left[64];
    snprintf(left, sizeof left, "--%s %s", o->flag,
             o->type == OPT_BOOL    ? "on|off"
             : o->type == OPT_MS    ? "DURATION"
             : o->type == OPT_BYTES ? "SIZE"
             : o->type == OPT_INT   ? "N"
                                    : "VALUE");
    fprintf(to, "  %-30s %s\n  %-30s [%s%s%s]\n", left, o->help, "", o->env,
            o->def ? ", default " : "", o->def ? o->def : "");
  }
  fprintf(to,
          "  %-30s %s\n  %-30s %s\n\n"
          "DURATION: 500ms, 10s, 2m or milliseconds. SIZE: bytes with an "
          "optional k, m or g.\nSIGTERM or SIGINT: stop accepting, finish "
          "in-flight requests, exit 0.\n",
          "--help", "print this and exit", "--version",
          "print the version and exit");
}

static const char *prog_name(const char *argv0) {
  const char *s = strrchr(argv0, '/');
  return s ? s + 1 : argv0;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(mc_app *app, int argc, char **argv) {
  mc__config *cfg = &app->cfg;
  const char *prog = prog_name(argv[0]);
  for (size_t i = 0; i < MC_COUNT(options); i++) {
    const char *v = getenv(options[i].env);
    if (v && *v && set_opt(cfg, &options[i], v) != 0) {
      fprintf(stderr, "%s: bad value for %s: %s\n", prog, options[i].env, v);
      return 2;
    }
  }
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      usage(app, prog, stdout);
      return 0;
    }
    if (!strcmp(arg, "--version")) {
      printf("%s %s (microc %s)\n", prog,
             app->info.version ? app->info.version : MC_VERSION, MC_VERSION);
      return 0;
    }
    if (strncmp(arg, "--", 2) != 0) {
      fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, arg);
      return 2;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    const opt *o = NULL;
    for (size_t i = 0; i < MC_COUNT(options); i++)
      if (strlen(options[i].flag) == nl && !strncmp(options[i].flag, name, nl))
        o = &options[i];
    if (!o) {
      fprintf(stderr, "%s: unknown option '%s' (see --help)\n", prog, arg);
      return 2;
    }
    const char *val = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
    if (!val) {
      fprintf(stderr, "%s: %s needs a value\n", prog, arg);
      return 2;
    }
    if (set_opt(cfg, o, val) != 0) {
      fprintf(stderr, "%s: bad value for --%s: %s\n", prog, o->flag, val);
      return 2;
    }
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
  if (cfg->max_head < 256 || cfg->max_headers < 1) {
    fprintf(stderr,
            "%s: --max-header-bytes must be at least 256 and "
            "--max-headers at least 1\n",
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
  err = mc__server_run(app);
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
