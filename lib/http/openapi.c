/* /openapi.json: an OpenAPI 3.1 document built from the route table and the
 * declared models, once, before the workers start. */
#include <stdlib.h>
#include <string.h>

#include "http/http_int.h"

static void json_str(mc_buf *b, const char *s) {
  mc_buf_append_json_str(b, s, strlen(s));
}

static void json_slice(mc_buf *b, mc_slice s) {
  mc_buf_append_json_str(b, s.ptr, s.len);
}

static void ref(mc_buf *b, const mc_model *m) {
  mc_buf_append_cstr(b, "{\"$ref\":\"#/components/schemas/");
  mc_buf_append_cstr(b, m->name);
  mc_buf_append_cstr(b, "\"}");
}

static const mc_field *model_field(const mc_model *m, mc_slice name) {
  for (size_t i = 0; m && i < m->nfields; i++)
    if (mc_slice_eq(mc_slice_cstr(m->fields[i].name), name))
      return &m->fields[i];
  return NULL;
}

static void parameters(mc_buf *b, const mc_route *r) {
  bool first = true;
  mc_buf_append_cstr(b, "\"parameters\":[");
  /* path parameters, in the order of the template */
  const char *p = r->path;
  while ((p = strchr(p, '{'))) {
    const char *e = strchr(p, '}');
    if (!e)
      break;
    mc_slice name = {p + 1, (size_t)(e - p - 1)};
    mc_buf_append_cstr(b, first ? "{\"name\":" : ",{\"name\":");
    first = false;
    json_slice(b, name);
    mc_buf_append_cstr(b, ",\"in\":\"path\",\"required\":true,\"schema\":");
    const mc_field *f = model_field(r->params, name);
    if (f)
      mc_field_schema_json(f, b);
    else
      mc_buf_append_cstr(b, "{\"type\":\"string\"}");
    if (f && f->description) {
      mc_buf_append_cstr(b, ",\"description\":");
      json_str(b, f->description);
    }
    mc_buf_append_char(b, '}');
    p = e + 1;
  }
  for (size_t i = 0; r->query && i < r->query->nfields; i++) {
    const mc_field *f = &r->query->fields[i];
    mc_buf_append_cstr(b, first ? "{\"name\":" : ",{\"name\":");
    first = false;
    json_str(b, f->name);
    mc_buf_appendf(b, ",\"in\":\"query\",\"required\":%s,\"schema\":",
                   f->required ? "true" : "false");
    mc_field_schema_json(f, b);
    if (f->description) {
      mc_buf_append_cstr(b, ",\"description\":");
      json_str(b, f->description);
    }
    mc_buf_append_char(b, '}');
  }
  mc_buf_append_char(b, ']');
}

static void operation(mc_buf *b, const mc_route *r) {
  mc_buf_append_char(b, '{');
  if (r->summary) {
    mc_buf_append_cstr(b, "\"summary\":");
    json_str(b, r->summary);
    mc_buf_append_char(b, ',');
  }
  if (r->description) {
    mc_buf_append_cstr(b, "\"description\":");
    json_str(b, r->description);
    mc_buf_append_char(b, ',');
  }
  if (r->tag) {
    mc_buf_append_cstr(b, "\"tags\":[");
    json_str(b, r->tag);
    mc_buf_append_cstr(b, "],");
  }
  /* operationId: method and path with non-alphanumerics as '_' */
  mc_buf_append_cstr(b, "\"operationId\":\"");
  for (const char *m = r->method; *m; m++)
    mc_buf_append_char(b, (char)(*m | 0x20));
  for (const char *p = r->path; *p; p++) {
    char c = *p;
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9');
    if (alnum)
      mc_buf_append_char(b, c);
    else if (b->len && b->ptr[b->len - 1] != '_')
      mc_buf_append_char(b, '_');
  }
  if (b->ptr[b->len - 1] == '_')
    b->len--;
  mc_buf_append_cstr(b, "\",");
  parameters(b, r);
  if (r->body) {
    mc_buf_append_cstr(b, ",\"requestBody\":{\"required\":true,\"content\":{"
                          "\"application/json\":{\"schema\":");
    ref(b, r->body);
    mc_buf_append_cstr(b, "}}}");
  }
  int ok = r->status ? r->status : 200;
  mc_buf_appendf(b, ",\"responses\":{\"%d\":{\"description\":\"%s\"", ok,
                 mc_http_reason(ok));
  if (r->response) {
    mc_buf_append_cstr(b, ",\"content\":{\"application/json\":{\"schema\":");
    ref(b, r->response);
    mc_buf_append_cstr(b, "}}");
  }
  mc_buf_append_char(b, '}');
  if (r->body || r->params || r->query)
    mc_buf_append_cstr(
        b, ",\"422\":{\"description\":\"Validation Error\","
           "\"content\":{\"application/problem+json\":{\"schema\":"
           "{\"$ref\":\"#/components/schemas/ValidationProblem\"}}}}");
  mc_buf_append_cstr(b, ",\"default\":{\"description\":\"Problem\","
                        "\"content\":{\"application/problem+json\":{\"schema\":"
                        "{\"$ref\":\"#/components/schemas/Problem\"}}}}}");
  mc_buf_append_char(b, '}');
}

typedef struct {
  mc_buf *b;
  bool first;
} schema_ctx;

static int emit_schema(const mc_model *m, void *arg) {
  schema_ctx *c = arg;
  if (!c->first)
    mc_buf_append_char(c->b, ',');
  c->first = false;
  json_str(c->b, m->name);
  mc_buf_append_char(c->b, ':');
  return mc_model_schema_json(m, c->b);
}

static const char problem_schemas[] =
    "\"Problem\":{\"type\":\"object\",\"description\":\"RFC 9457 problem "
    "details\",\"properties\":{\"type\":{\"type\":\"string\"},\"title\":{"
    "\"type\":\"string\"},\"status\":{\"type\":\"integer\"},\"detail\":{"
    "\"type\":\"string\"},\"instance\":{\"type\":\"string\"},\"request_id\":{"
    "\"type\":\"string\"}},\"required\":[\"type\",\"title\",\"status\"]},"
    "\"ValidationError\":{\"type\":\"object\",\"properties\":{\"loc\":{"
    "\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":"
    "\"integer\"}]}},\"msg\":{\"type\":\"string\"},\"type\":{\"type\":"
    "\"string\"}},\"required\":[\"loc\",\"msg\",\"type\"]},"
    "\"ValidationProblem\":{\"allOf\":[{\"$ref\":\"#/components/schemas/"
    "Problem\"},{\"type\":\"object\",\"properties\":{\"errors\":{\"type\":"
    "\"array\",\"items\":{\"$ref\":\"#/components/schemas/ValidationError\"}}}}"
    "]}";

/* OpenAPI has no operation for any method, nor a path parameter that
 * spans segments: such routes (a gateway's, a static file tree's) are left
 * out, as hidden ones are. */
static bool undocumented(const mc_route *r) {
  return r->hidden || !strcmp(r->method, "*") || strstr(r->path, "...}");
}

int mc__openapi_build(mc_app *app, mc_buf *b) {
  const mc_app_info *info = &app->info;
  mc_buf_append_cstr(b, "{\"openapi\":\"3.1.0\",\"info\":{\"title\":");
  json_str(b, info->title ? info->title : info->name);
  mc_buf_append_cstr(b, ",\"version\":");
  json_str(b, info->version ? info->version : "0.1.0");
  if (info->description) {
    mc_buf_append_cstr(b, ",\"description\":");
    json_str(b, info->description);
  }
  mc_buf_append_cstr(b, "},\"paths\":{");
  /* Group operations by path, in first-seen order. */
  bool *done = calloc(app->nroutes ? app->nroutes : 1, sizeof(bool));
  if (!done)
    return MC_ENOMEM;
  bool first_path = true;
  for (size_t i = 0; i < app->nroutes; i++) {
    const mc_route *r = app->routes[i];
    if (done[i] || undocumented(r))
      continue;
    if (!first_path)
      mc_buf_append_char(b, ',');
    first_path = false;
    json_str(b, r->path);
    mc_buf_append_cstr(b, ":{");
    bool first_op = true;
    for (size_t k = i; k < app->nroutes; k++) {
      const mc_route *o = app->routes[k];
      if (done[k] || undocumented(o) || strcmp(o->path, r->path) != 0)
        continue;
      done[k] = true;
      if (!first_op)
        mc_buf_append_char(b, ',');
      first_op = false;
      mc_buf_append_char(b, '"');
      for (const char *m = o->method; *m; m++)
        mc_buf_append_char(b, (char)(*m | 0x20));
      mc_buf_append_cstr(b, "\":");
      operation(b, o);
    }
    mc_buf_append_char(b, '}');
  }
  free(done);
  mc_buf_append_cstr(b, "},\"components\":{\"schemas\":{");
  const mc_model *seen[256];
  size_t nseen = 0;
  schema_ctx ctx = {b, true};
  for (size_t i = 0; i < app->nroutes; i++) {
    const mc_route *r = app->routes[i];
    if (undocumented(r))
      continue;
    const mc_model *ms[] = {r->body, r->response};
    for (size_t k = 0; k < 2; k++)
      if (ms[k]) {
        int err = mc_model_walk(ms[k], seen, &nseen, MC_COUNT(seen),
                                emit_schema, &ctx);
        if (err)
          return err;
      }
  }
  if (!ctx.first)
    mc_buf_append_char(b, ',');
  mc_buf_append_cstr(b, problem_schemas);
  return mc_buf_append_cstr(b, "}}}");
}
