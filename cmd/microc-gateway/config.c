/* The route file: YAML in, a gw_config out, every mistake refused with
 * its line. Unknown keys are refused too: a misspelt "auth" must not leave
 * a route public. */
#include <microc/options.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "gateway.h"

/* A body cap is at least a byte: 0 would read as "no cap of the route's
 * own", and let through what the server allows. */
#define MAX_BODY_WANTED                                                        \
  "max_body: want a size such as 64k or 1m (from 1 byte to 1g)"

typedef struct parse {
  yaml_document_t *doc;
  gw_config *c;
  const char *path;
  const char *(*getenv_fn)(const char *);
  char *err;
  size_t errcap;
  int rc;
} parse;

static void failf(parse *p, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void failf(parse *p, const yaml_node_t *n, const char *fmt, ...) {
  if (p->rc)
    return;
  p->rc = MC_EINVAL;
  int k = snprintf(p->err, p->errcap, "%s:%zu: ", p->path,
                   n ? n->start_mark.line + 1 : 1);
  if (k < 0 || (size_t)k >= p->errcap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->err + k, p->errcap - (size_t)k, fmt, ap);
  va_end(ap);
}

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value
                                          : NULL;
}

static const char *dup(parse *p, const char *s) {
  char *d = mc_arena_strndup(p->c->arena, s, strlen(s));
  if (!d && !p->rc)
    p->rc = MC_ENOMEM, snprintf(p->err, p->errcap, "out of memory");
  return d ? d : "";
}

static const char *get_str(parse *p, const yaml_node_t *n, const char *key) {
  const char *s = scalar(n);
  if (!s || !*s) {
    failf(p, n, "%s: want a non-empty string", key);
    return "";
  }
  return dup(p, s);
}

static uint64_t get_duration_ms(parse *p, const yaml_node_t *n,
                                const char *key) {
  const char *s = scalar(n);
  int64_t ns;
  if (!s || mc_parse_go_duration(mc_slice_cstr(s), &ns) != 0 || ns <= 0 ||
      ns > 3600 * 1000000000ll) {
    failf(p, n, "%s: want a duration such as 500ms, 10s or 1m (at most 1h)",
          key);
    return 0;
  }
  return (uint64_t)((ns + 999999) / 1000000);
}

static double get_number(parse *p, const yaml_node_t *n, const char *key,
                         double lo, double hi) {
  const char *s = scalar(n);
  char *end = NULL;
  double v = s ? strtod(s, &end) : 0;
  if (!s || end == s || *end || !(v >= lo && v <= hi)) {
    failf(p, n, "%s: want a number from %g to %g", key, lo, hi);
    return lo;
  }
  return v;
}

static bool get_bool(parse *p, const yaml_node_t *n, const char *key) {
  const char *s = scalar(n);
  if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")))
    return true;
  if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")))
    return false;
  failf(p, n, "%s: want true or false", key);
  return false;
}

/* A list of strings; a single string is a list of one. */
static const char **get_list(parse *p, const yaml_node_t *n, const char *key,
                             size_t *count) {
  *count = 0;
  if (scalar(n)) {
    const char **v = mc_arena_alloc(p->c->arena, sizeof *v);
    if (!v)
      return failf(p, n, "out of memory"), NULL;
    v[0] = get_str(p, n, key);
    *count = 1;
    return v;
  }
  if (!n || n->type != YAML_SEQUENCE_NODE)
    return failf(p, n, "%s: want a list of strings", key), NULL;
  size_t len =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  const char **v = mc_arena_calloc(p->c->arena, (len ? len : 1) * sizeof *v);
  if (!v)
    return failf(p, n, "out of memory"), NULL;
  for (size_t i = 0; i < len; i++) {
    yaml_node_t *item =
        yaml_document_get_node(p->doc, n->data.sequence.items.start[i]);
    v[i] = get_str(p, item, key);
  }
  *count = len;
  return v;
}

static const char *join(parse *p, const char **v, size_t n) {
  mc_buf b;
  mc_buf_init(&b, 0);
  for (size_t i = 0; i < n; i++) {
    if (i)
      mc_buf_append_cstr(&b, ", ");
    mc_buf_append_cstr(&b, v[i]);
  }
  const char *s = dup(p, b.ptr ? b.ptr : "");
  mc_buf_free(&b);
  return s;
}

/* Header values built from the file: no CR, LF or NUL, no commas in
 * tokens. */
static bool token_ok(const char *s) {
  for (; *s; s++)
    if (*s <= 0x20 || *s >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *s))
      return false;
  return true;
}

static const char *key_text(const yaml_node_t *k) {
  const char *s = scalar(k);
  return s ? s : "";
}

/* Walks a mapping: key is each key's text ("" for one that is not a
 * scalar), k its node (for the line in messages), v the value's node. */
#define FOREACH_PAIR(p, map, key, k, v)                                        \
  for (yaml_node_pair_t *pr_ = (map)->data.mapping.pairs.start;                \
       pr_ < (map)->data.mapping.pairs.top &&                                  \
       ((k) = yaml_document_get_node((p)->doc, pr_->key),                      \
       (v) = yaml_document_get_node((p)->doc, pr_->value),                     \
       (key) = key_text(k), 1);                                                \
       pr_++)

static bool is_map(parse *p, const yaml_node_t *n, const char *what) {
  if (n && n->type == YAML_MAPPING_NODE)
    return true;
  failf(p, n, "%s: want a mapping", what);
  return false;
}

static void parse_cors(parse *p, const yaml_node_t *n, gw_cors *c) {
  if (!is_map(p, n, "cors"))
    return;
  c->on = true;
  c->methods = "GET, HEAD, PUT, PATCH, POST, DELETE";
  c->max_age_s = 600;
  const char *key;
  yaml_node_t *k, *v;
  FOREACH_PAIR(p, n, key, k, v) {
    if (!strcmp(key, "origins")) {
      c->origins = get_list(p, v, "cors.origins", &c->norigins);
      for (size_t i = 0; c->origins && i < c->norigins; i++)
        if (!strcmp(c->origins[i], "*"))
          c->any_origin = true;
    } else if (!strcmp(key, "methods") || !strcmp(key, "headers") ||
               !strcmp(key, "expose_headers")) {
      size_t cnt;
      const char **l = get_list(p, v, key, &cnt);
      for (size_t i = 0; l && i < cnt; i++)
        if (!token_ok(l[i]))
          failf(p, v, "cors.%s: '%s' is not a token", key, l[i]);
      const char *j = l ? join(p, l, cnt) : "";
      if (!strcmp(key, "methods"))
        c->methods = j;
      else if (!strcmp(key, "headers"))
        c->headers = j;
      else
        c->expose = j;
    } else if (!strcmp(key, "credentials")) {
      c->credentials = get_bool(p, v, "cors.credentials");
    } else if (!strcmp(key, "max_age")) {
      c->max_age_s = (int64_t)(get_duration_ms(p, v, "cors.max_age") / 1000);
    } else {
      failf(p, k,
            "cors: unknown key '%s' (origins, methods, headers, "
            "expose_headers, credentials, max_age)",
            key);
    }
  }
  if (!c->norigins)
    failf(p, n, "cors: origins is required");
  if (c->any_origin && c->credentials)
    failf(p, n,
          "cors: credentials cannot go with origin \"*\" (browsers "
          "refuse it); list the origins");
}

static void parse_rate(parse *p, const yaml_node_t *n, gw_route *r) {
  if (!is_map(p, n, "rate_limit"))
    return;
  const char *key;
  yaml_node_t *k, *v;
  FOREACH_PAIR(p, n, key, k, v) {
    if (!strcmp(key, "rps"))
      r->rate = get_number(p, v, "rate_limit.rps", 0.001, 1e9);
    else if (!strcmp(key, "burst"))
      r->burst = get_number(p, v, "rate_limit.burst", 1, 1e9);
    else if (!strcmp(key, "by")) {
      const char *s = scalar(v);
      if (s && !strcmp(s, "client"))
        r->limit_by = GW_BY_CLIENT;
      else if (s && !strcmp(s, "subject"))
        r->limit_by = GW_BY_SUBJECT;
      else
        failf(p, v, "rate_limit.by: client or subject");
    } else {
      failf(p, k, "rate_limit: unknown key '%s' (rps, burst, by)", key);
    }
  }
  if (r->rate <= 0)
    failf(p, n, "rate_limit: rps is required");
  if (r->burst <= 0)
    r->burst = r->rate < 1 ? 1 : r->rate;
}

static const char *const known_methods[] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"};

static void parse_route(parse *p, const yaml_node_t *n, gw_route *r) {
  if (!is_map(p, n, "routes[]"))
    return;
  r->timeout_ms = p->c->default_timeout_ms;
  r->max_body = p->c->default_max_body;
  const yaml_node_t *rate = NULL, *auth_node = NULL;
  const char *key;
  yaml_node_t *k, *v;
  FOREACH_PAIR(p, n, key, k, v) {
    if (!strcmp(key, "name")) {
      r->name = get_str(p, v, "name");
    } else if (!strcmp(key, "prefix")) {
      r->prefix = get_str(p, v, "prefix");
      r->prefix_len = strlen(r->prefix);
      if (r->prefix[0] != '/')
        failf(p, v, "prefix: must start with /");
    } else if (!strcmp(key, "host")) {
      r->host = get_str(p, v, "host");
    } else if (!strcmp(key, "methods")) {
      r->methods = get_list(p, v, "methods", &r->nmethods);
      for (size_t i = 0; r->methods && i < r->nmethods; i++)
        if (!token_ok(r->methods[i]))
          failf(p, v, "methods: '%s' is not a method", r->methods[i]);
    } else if (!strcmp(key, "service")) {
      r->service = get_str(p, v, "service");
    } else if (!strcmp(key, "rewrite")) {
      r->rewrite = get_str(p, v, "rewrite");
      if (r->rewrite[0] != '/')
        failf(p, v, "rewrite: must start with /");
    } else if (!strcmp(key, "strip_prefix")) {
      if (get_bool(p, v, "strip_prefix") && !r->rewrite)
        r->rewrite = "/";
    } else if (!strcmp(key, "timeout")) {
      r->timeout_ms = get_duration_ms(p, v, "timeout");
    } else if (!strcmp(key, "retries")) {
      r->attempts = 1 + (int)get_number(p, v, "retries", 0, 7);
    } else if (!strcmp(key, "balancer")) {
      const char *s = scalar(v);
      if (!s || mc_balancer_parse(s, &r->balancer) != 0)
        failf(p, v, "balancer: round-robin, least-outstanding or p2c");
    } else if (!strcmp(key, "auth")) {
      auth_node = v;
      const char *s = scalar(v);
      if (s && !strcmp(s, "public"))
        r->auth = GW_AUTH_PUBLIC;
      else if (s && !strcmp(s, "jwt"))
        r->auth = GW_AUTH_JWT;
      else
        failf(p, v, "auth: public or jwt");
    } else if (!strcmp(key, "scopes")) {
      r->scopes = get_list(p, v, "scopes", &r->nscopes);
    } else if (!strcmp(key, "rate_limit")) {
      rate = v;
      parse_rate(p, v, r);
    } else if (!strcmp(key, "cors")) {
      parse_cors(p, v, &r->cors);
    } else if (!strcmp(key, "max_body")) {
      const char *s = scalar(v);
      uint64_t sz;
      if (!s || mc_parse_size(s, &sz) != 0 || !sz || sz > (1ull << 30))
        failf(p, v, MAX_BODY_WANTED);
      else
        r->max_body = sz;
    } else {
      failf(p, k,
            "unknown key '%s' (name, prefix, host, methods, service, "
            "rewrite, strip_prefix, timeout, retries, balancer, auth, "
            "scopes, rate_limit, cors, max_body)",
            key);
    }
  }
  (void)rate;
  if (!r->prefix)
    failf(p, n, "a route needs a prefix");
  if (!r->service)
    failf(p, n, "a route needs a service");
  if (!auth_node)
    failf(p, n,
          "a route needs auth: public or jwt (say which; none is "
          "assumed)");
  if (r->nscopes && r->auth != GW_AUTH_JWT)
    failf(p, n, "scopes need auth: jwt");
  if (r->limit_by == GW_BY_SUBJECT && r->auth != GW_AUTH_JWT)
    failf(p, n, "rate_limit by subject needs auth: jwt");
  for (size_t i = 0; i < r->nmethods; i++) {
    bool known = false;
    for (size_t m = 0; m < MC_COUNT(known_methods); m++)
      known |= !strcmp(r->methods[i], known_methods[m]);
    if (!known)
      failf(p, n, "methods: unknown method '%s'", r->methods[i]);
  }
  if (!r->name)
    r->name = r->prefix;
}

static void parse_jwt(parse *p, const yaml_node_t *n) {
  gw_jwt_conf *j = &p->c->jwt;
  if (!is_map(p, n, "jwt"))
    return;
  const char *key;
  yaml_node_t *k, *v;
  FOREACH_PAIR(p, n, key, k, v) {
    if (!strcmp(key, "secret_env"))
      j->secret_env = get_str(p, v, "jwt.secret_env");
    else if (!strcmp(key, "jwks_file"))
      j->jwks_file = get_str(p, v, "jwt.jwks_file");
    else if (!strcmp(key, "issuer"))
      j->issuer = get_str(p, v, "jwt.issuer");
    else if (!strcmp(key, "audience") || !strcmp(key, "audiences"))
      j->audiences = get_list(p, v, "jwt.audience", &j->naudiences);
    else if (!strcmp(key, "leeway"))
      j->leeway_s = (int64_t)(get_duration_ms(p, v, "jwt.leeway") / 1000);
    else if (!strcmp(key, "require_exp"))
      j->require_exp = get_bool(p, v, "jwt.require_exp");
    else if (!strcmp(key, "subject_header"))
      p->c->subject_header = get_str(p, v, "jwt.subject_header");
    else if (!strcmp(key, "scopes_header"))
      p->c->scopes_header = get_str(p, v, "jwt.scopes_header");
    else
      failf(p, k,
            "jwt: unknown key '%s' (secret_env, jwks_file, issuer, "
            "audience, leeway, require_exp, subject_header, scopes_header)",
            key);
  }
}

static int load_jwks(parse *p, const yaml_node_t *where) {
  gw_jwt_conf *j = &p->c->jwt;
  char path[4096];
  const char *slash = strrchr(p->path, '/');
  if (j->jwks_file[0] != '/' && slash)
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - p->path), p->path,
             j->jwks_file);
  else
    snprintf(path, sizeof path, "%s", j->jwks_file);
  mc_buf b;
  int rc = gw_read_file(path, 1 << 20, &b);
  if (rc == MC_EIO) {
    mc_buf_free(&b);
    return failf(p, where, "jwt.jwks_file: cannot open %s", path), MC_EINVAL;
  }
  char err[256] = "";
  if (!rc)
    rc = gw_jwks_parse(mc_buf_slice(&b), &j->jwks, err, sizeof err);
  mc_buf_free(&b);
  if (rc)
    failf(p, where, "jwt.jwks_file %s: %s", path,
          err[0] ? err : mc_strerror(rc));
  return rc;
}

int gw_read_file(const char *path, size_t cap, mc_buf *out) {
  mc_buf_init(out, cap);
  FILE *f = fopen(path, "rb");
  if (!f)
    return MC_EIO;
  char chunk[8192];
  size_t got;
  int rc = 0;
  while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
    rc = mc_buf_append(out, chunk, got);
  if (!rc && ferror(f))
    rc = MC_EIO;
  fclose(f);
  return rc;
}

static void cleanup_jwks(void *arg) {
  gw_jwks_free(arg);
}

static void parse_root(parse *p, const yaml_node_t *root) {
  gw_config *c = p->c;
  if (!root || root->type != YAML_MAPPING_NODE) {
    failf(p, root, "the file should be a mapping with a routes list");
    return;
  }
  const yaml_node_t *routes = NULL, *jwt = NULL;
  const char *key;
  yaml_node_t *k, *v;
  FOREACH_PAIR(p, root, key, k, v) {
    if (!strcmp(key, "routes"))
      routes = v;
    else if (!strcmp(key, "jwt"))
      jwt = v;
    else if (!strcmp(key, "timeout"))
      c->default_timeout_ms = get_duration_ms(p, v, "timeout");
    else if (!strcmp(key, "max_body")) {
      const char *s = scalar(v);
      if (!s || mc_parse_size(s, &c->default_max_body) != 0 ||
          !c->default_max_body || c->default_max_body > (1ull << 30))
        failf(p, v, MAX_BODY_WANTED);
    } else
      failf(p, k, "unknown key '%s' (routes, jwt, timeout, max_body)", key);
  }
  if (jwt)
    parse_jwt(p, jwt);
  if (!routes || routes->type != YAML_SEQUENCE_NODE) {
    failf(p, routes ? routes : root, "routes: want a list of routes");
    return;
  }
  size_t n = (size_t)(routes->data.sequence.items.top -
                      routes->data.sequence.items.start);
  c->routes = mc_arena_calloc(c->arena, (n ? n : 1) * sizeof *c->routes);
  if (!c->routes) {
    failf(p, routes, "out of memory");
    return;
  }
  bool wants_jwt = false;
  for (size_t i = 0; i < n && !p->rc; i++) {
    yaml_node_t *item =
        yaml_document_get_node(p->doc, routes->data.sequence.items.start[i]);
    parse_route(p, item, &c->routes[i]);
    wants_jwt |= c->routes[i].auth == GW_AUTH_JWT;
  }
  c->nroutes = n;
  if (p->rc)
    return;
  /* Keys are looked for only when a route needs them, and then must be
   * there: a JWT route that no key can satisfy would refuse everyone. */
  gw_jwt_conf *j = &c->jwt;
  if (!j->secret_env)
    j->secret_env = "MICROC_JWT_SECRET";
  const char *secret = p->getenv_fn(j->secret_env);
  if (secret && *secret) {
    j->secret = (const unsigned char *)dup(p, secret);
    j->secret_len = strlen(secret);
  }
  if (wants_jwt && j->jwks_file && load_jwks(p, jwt) == 0)
    mc_arena_cleanup_add(c->arena, cleanup_jwks, j->jwks);
  if (wants_jwt && !j->secret_len && !j->jwks)
    failf(p, jwt ? jwt : routes,
          "routes with auth: jwt need a key: set %s (HS256) or jwt.jwks_file "
          "(RS256, ES256)",
          j->secret_env);
  if (j->secret_len && j->secret_len < 32)
    failf(p, jwt ? jwt : routes,
          "%s is %zu bytes; HS256 wants a secret of at least 32 (RFC 7518 "
          "§3.2)",
          j->secret_env, j->secret_len);
}

static const char *env_default(const char *name) {
  return getenv(name);
}

int gw_config_parse(mc_slice yaml, const char *path,
                    const char *(*getenv_fn)(const char *name), gw_config **out,
                    char *err, size_t errcap) {
  *out = NULL;
  err[0] = 0;
  gw_config *c = calloc(1, sizeof *c);
  if (!c || mc_arena_new(&c->arena, 4096, 0) != 0) {
    free(c);
    snprintf(err, errcap, "out of memory");
    return MC_ENOMEM;
  }
  c->subject_header = "X-Auth-Subject";
  c->scopes_header = "X-Auth-Scopes";
  c->default_timeout_ms = 15000;
  c->default_max_body = 1 << 20;
  c->jwt.require_exp = true;
  c->jwt.leeway_s = 30;
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)yaml.ptr,
                               yaml.len);
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errcap, "%s:%zu: not YAML: %s", path,
             parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "?");
    yaml_parser_delete(&parser);
    gw_config_free(c);
    return MC_EPARSE;
  }
  parse p = {&doc, c,      path, getenv_fn ? getenv_fn : env_default,
             err,  errcap, 0};
  parse_root(&p, yaml_document_get_root_node(&doc));
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (p.rc) {
    gw_config_free(c);
    return p.rc;
  }
  c->subject_hdr = mc_slice_cstr(c->subject_header);
  c->scopes_hdr = mc_slice_cstr(c->scopes_header);
  *out = c;
  return 0;
}

void gw_config_free(gw_config *c) {
  if (!c)
    return;
  mc_arena_free(c->arena);
  free(c);
}

static bool host_fits(const gw_route *r, mc_slice host) {
  if (!r->host)
    return true;
  /* without the port; an IPv6 literal keeps its brackets */
  const char *end = host.ptr + host.len;
  for (const char *q = end; q > host.ptr; q--)
    if (q[-1] == ':') {
      end = q - 1;
      break;
    } else if (q[-1] == ']') {
      break;
    }
  mc_slice h = {host.ptr, (size_t)(end - host.ptr)};
  return mc_slice_eq_nocase(h, mc_slice_cstr(r->host));
}

static bool method_fits(const gw_route *r, mc_slice method) {
  if (!r->nmethods)
    return true;
  for (size_t i = 0; i < r->nmethods; i++)
    if (mc_slice_eq(method, mc_slice_cstr(r->methods[i])))
      return true;
  return false;
}

const gw_route *gw_route_match(const gw_config *c, mc_slice method,
                               mc_slice path, mc_slice host) {
  const gw_route *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route *r = &c->routes[i];
    size_t len = r->prefix_len;
    if (!mc_slice_starts_with(path, (mc_slice){r->prefix, len}) ||
        !host_fits(r, host) || !method_fits(r, method))
      continue;
    /* longest prefix; on a tie the route with a host, then the first */
    if (!best || len > best_len ||
        (len == best_len && r->host && !best->host)) {
      best = r;
      best_len = len;
    }
  }
  return best;
}

bool gw_route_path_known(const gw_config *c, mc_slice path, mc_slice host) {
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route *r = &c->routes[i];
    if (mc_slice_starts_with(path, (mc_slice){r->prefix, r->prefix_len}) &&
        host_fits(r, host))
      return true;
  }
  return false;
}
