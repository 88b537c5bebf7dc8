/* The routes every service answers: health, metrics, OpenAPI and its docs
 * page (Swagger UI, served from the swagger-ui-dist files on disk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"

int mc__openapi_build(mc_app *app, mc_buf *b);

static int live(mc_req *req) {
  return mc_res_json(req, 200, MC_LIT("{\"status\":\"ok\"}"));
}

static int ready(mc_req *req) {
  if (mc__server_draining(req->app))
    return mc_res_json(req, 503, MC_LIT("{\"status\":\"draining\"}"));
  return mc_res_json(req, 200, MC_LIT("{\"status\":\"ready\"}"));
}

static int metrics(mc_req *req) {
  mc_fiber_stats_get(&req->worker->fstats);
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc__metrics_render(req->app, &b);
  if (!err)
    err = mc_res_send(req, 200,
                      MC_LIT("text/plain; version=0.0.4; charset=utf-8"),
                      mc_buf_slice(&b));
  mc_buf_free(&b);
  return err;
}

/* Built once, before the workers start, so a declaration that cannot be
 * documented stops the service at start-up rather than at the first
 * request for it. */
int mc__openapi_prepare(mc_app *app) {
  if (app->openapi)
    return 0;
  mc_buf b;
  mc_buf_init(&b, 0);
  int err = mc__openapi_build(app, &b);
  if (err) {
    mc_buf_free(&b);
    return err;
  }
  app->openapi = b.ptr;
  app->openapi_len = b.len;
  return 0;
}

static int openapi(mc_req *req) {
  mc_app *app = req->app;
  return mc_res_json(req, 200, (mc_slice){app->openapi, app->openapi_len});
}

static const char docs_page[] =
    "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
    "<title>%s - API docs</title>\n"
    "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n</head>\n<body>\n"
    "<div id=\"swagger-ui\"></div>\n"
    "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
    "<script src=\"/docs/docs-init.js\"></script>\n</body>\n</html>\n";

/* Kept out of the page so a Content-Security-Policy without inline scripts
 * can be used. */
static const char docs_init[] =
    "window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui',"
    " deepLinking: true});\n";

static int docs(mc_req *req) {
  char page[sizeof docs_page + 256];
  const char *title =
      req->app->info.title ? req->app->info.title : req->app->info.name;
  int n = snprintf(page, sizeof page, docs_page, title);
  return mc_res_send(req, 200, MC_LIT("text/html; charset=utf-8"),
                     (mc_slice){page, (size_t)n});
}

typedef struct mc__docs_file {
  const char *name;
  const char *type;
  char *data;
  size_t len;
  bool loaded;
} mc__docs_file;

static int docs_file(mc_req *req) {
  static const struct {
    const char *name, *type;
  } allowed[] = {
      {"swagger-ui.css", "text/css"},
      {"swagger-ui-bundle.js", "text/javascript"},
      {"favicon-32x32.png", "image/png"},
  };
  mc_app *app = req->app;
  mc_slice name = mc_req_param(req, "file");
  if (mc_slice_eq(name, MC_LIT("docs-init.js")))
    return mc_res_send(req, 200, MC_LIT("text/javascript"),
                       (mc_slice){docs_init, sizeof docs_init - 1});
  size_t i = 0;
  for (; i < MC_COUNT(allowed); i++)
    if (mc_slice_eq(name, mc_slice_cstr(allowed[i].name)))
      break;
  if (i == MC_COUNT(allowed))
    return mc_res_problem(req, 404, "no such docs file");
  uv_mutex_lock(&app->lock);
  if (!app->docs)
    app->docs = calloc(MC_COUNT(allowed), sizeof(mc__docs_file));
  mc__docs_file *f = app->docs ? &app->docs[i] : NULL;
  if (f && !f->loaded) {
    f->loaded = true;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", app->cfg.docs_dir, allowed[i].name);
    FILE *fp = fopen(path, "rb");
    if (fp) {
      mc_buf b;
      mc_buf_init(&b, 16u << 20);
      char chunk[65536];
      size_t got;
      while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (mc_buf_append(&b, chunk, got) != 0)
          break;
      fclose(fp);
      f->data = b.ptr;
      f->len = b.len;
    }
  }
  uv_mutex_unlock(&app->lock);
  if (!f || !f->data)
    return mc_res_problemf(req, 503,
                           "Swagger UI files are not installed in %s "
                           "(run scripts/bootstrap or set --docs-dir)",
                           app->cfg.docs_dir);
  mc_res_header(req, MC_LIT("Cache-Control"), MC_LIT("public, max-age=86400"));
  return mc_res_send(req, 200, mc_slice_cstr(allowed[i].type),
                     (mc_slice){f->data, f->len});
}

static const mc_route builtin_routes[] = {
    {"GET", "/health/live", live, .hidden = true},
    {"GET", "/health/ready", ready, .hidden = true},
    {"GET", "/metrics", metrics, .hidden = true},
    {"GET", "/openapi.json", openapi, .hidden = true},
    {"GET", "/docs", docs, .hidden = true},
    {"GET", "/docs/{file}", docs_file, .hidden = true},
};

int mc__builtin_routes(mc_app *app) {
  /* the health and metrics routes always; the docs unless the app says
   * its paths are others' (a gateway's) */
  size_t n = app->info.no_docs ? 3 : MC_COUNT(builtin_routes);
  return mc_app_routes(app, builtin_routes, n);
}

void mc__docs_free(mc_app *app) {
  if (!app->docs)
    return;
  for (size_t i = 0; i < 3; i++)
    free(app->docs[i].data);
  free(app->docs);
  app->docs = NULL;
}
