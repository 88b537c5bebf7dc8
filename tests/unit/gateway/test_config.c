#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

static const char *secret_env(const char *name) {
  if (!strcmp(name, "MICROC_JWT_SECRET") || !strcmp(name, "MY_SECRET"))
    return "0123456789abcdef0123456789abcdef";
  if (!strcmp(name, "SHORT_SECRET"))
    return "short";
  return NULL;
}

static gw_config *c;
static char err[512];

static void teardown(void) {
  gw_config_free(c);
  c = NULL;
}
TestSuite(config, .fini = teardown);

static int parse(const char *yaml) {
  gw_config_free(c);
  c = NULL;
  return gw_config_parse(mc_slice_cstr(yaml), "routes.yaml", secret_env, &c,
                         err, sizeof err);
}

Test(config, a_full_route) {
  cr_assert_eq(parse("routes:\n"
                     "  - name: echo\n"
                     "    prefix: /api/echo\n"
                     "    host: api.example\n"
                     "    methods: [POST, PUT]\n"
                     "    service: hello\n"
                     "    rewrite: /echo\n"
                     "    timeout: 2s\n"
                     "    retries: 3\n"
                     "    balancer: p2c\n"
                     "    auth: jwt\n"
                     "    scopes: [echo:write]\n"
                     "    rate_limit: {rps: 5, burst: 10, by: subject}\n"
                     "    cors: {origins: [https://a.example], credentials: "
                     "true, max_age: 1m}\n"
                     "    max_body: 64k\n"),
               0, "%s", err);
  cr_assert_eq(c->nroutes, 1);
  const gw_route *r = &c->routes[0];
  cr_assert_str_eq(r->name, "echo");
  cr_assert_str_eq(r->prefix, "/api/echo");
  cr_assert_str_eq(r->host, "api.example");
  cr_assert_eq(r->nmethods, 2);
  cr_assert_str_eq(r->methods[1], "PUT");
  cr_assert_str_eq(r->rewrite, "/echo");
  cr_assert_eq(r->timeout_ms, 2000);
  cr_assert_eq(r->attempts, 4);
  cr_assert_eq(r->balancer, MC_BALANCE_P2C);
  cr_assert_eq(r->auth, GW_AUTH_JWT);
  cr_assert_str_eq(r->scopes[0], "echo:write");
  cr_assert_float_eq(r->rate, 5, 1e-9);
  cr_assert_float_eq(r->burst, 10, 1e-9);
  cr_assert_eq(r->limit_by, GW_BY_SUBJECT);
  cr_assert(r->cors.on && r->cors.credentials && !r->cors.any_origin);
  cr_assert_eq(r->cors.max_age_s, 60);
  cr_assert_eq(r->max_body, 64 * 1024);
  cr_assert_eq(c->jwt.secret_len, 32);
  cr_assert(c->jwt.require_exp);
}

Test(config, defaults_and_strip_prefix) {
  cr_assert_eq(parse("timeout: 3s\nmax_body: 2m\nroutes:\n"
                     "  - {prefix: /a/, service: s, auth: public, "
                     "strip_prefix: true}\n"),
               0, "%s", err);
  const gw_route *r = &c->routes[0];
  cr_assert_str_eq(r->name, "/a/");
  cr_assert_str_eq(r->rewrite, "/");
  cr_assert_eq(r->timeout_ms, 3000);
  cr_assert_eq(r->max_body, 2u << 20);
  cr_assert_eq(r->nmethods, 0);
  cr_assert_eq(r->rate, 0);
}

static void refused(const char *yaml, int rc, const char *needle) {
  cr_assert_eq(parse(yaml), rc, "%s -> %s", yaml, err);
  cr_assert_null(c);
  cr_assert(strstr(err, needle), "'%s' not in '%s'", needle, err);
}

Test(config, mistakes_are_refused_with_their_line) {
  refused("routes: [", MC_EPARSE, "routes.yaml:");
  refused("- a\n- b\n", MC_EINVAL, "mapping");
  refused("routes:\n  - prefix: /x\n    service: a\n    auht: public\n",
          MC_EINVAL, "routes.yaml:4: unknown key 'auht'");
  refused("routes:\n  - {prefix: /x, service: a}\n", MC_EINVAL, "needs auth");
  refused("routes:\n  - {prefix: x, service: a, auth: public}\n", MC_EINVAL,
          "must start with /");
  refused("routes:\n  - {prefix: /x, auth: public}\n", MC_EINVAL,
          "needs a service");
  refused("routes:\n  - {prefix: /x, service: a, auth: maybe}\n", MC_EINVAL,
          "public or jwt");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, timeout: "
          "soon}\n",
          MC_EINVAL, "duration");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, retries: 99}\n",
          MC_EINVAL, "retries");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, scopes: [a]}\n",
          MC_EINVAL, "scopes need auth: jwt");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, methods: "
          "[FETCH]}\n",
          MC_EINVAL, "unknown method");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, rate_limit: "
          "{burst: 2}}\n",
          MC_EINVAL, "rps is required");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, cors: "
          "{origins: ['*'], credentials: true}}\n",
          MC_EINVAL, "credentials");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, max_body: "
          "huge}\n",
          MC_EINVAL, "max_body");
  refused("routes:\n  - {prefix: /x, service: a, auth: public, balancer: "
          "random}\n",
          MC_EINVAL, "balancer");
  /* a cap of 0 would have meant the server's (1 GiB at the gateway): a
   * fuzz find */
  refused("routes:\n  - {prefix: /x, service: a, auth: public, max_body: "
          "0}\n",
          MC_EINVAL, "from 1 byte");
  refused("max_body: 0m\nroutes:\n  - {prefix: /x, service: a, auth: public}\n",
          MC_EINVAL, "from 1 byte");
  refused("flavour: x\nroutes: []\n", MC_EINVAL, "unknown key 'flavour'");
}

Test(config, jwt_routes_need_a_key) {
  refused("jwt: {secret_env: NOT_SET}\nroutes:\n  - {prefix: /x, service: a, "
          "auth: jwt}\n",
          MC_EINVAL, "need a key: set NOT_SET");
  refused("jwt: {secret_env: SHORT_SECRET}\nroutes:\n  - {prefix: /x, "
          "service: a, auth: jwt}\n",
          MC_EINVAL, "at least 32");
  refused("jwt: {jwks_file: /nonexistent/jwks.json}\nroutes:\n  - {prefix: "
          "/x, service: a, auth: jwt}\n",
          MC_EINVAL, "cannot open");
  cr_assert_eq(parse("jwt: {secret_env: MY_SECRET, issuer: me, audience: "
                     "[a, b]}\nroutes:\n  - {prefix: /x, service: a, auth: "
                     "jwt}\n"),
               0, "%s", err);
  cr_assert_str_eq(c->jwt.issuer, "me");
  cr_assert_eq(c->jwt.naudiences, 2);
}

Test(config, longest_prefix_with_method_and_host) {
  cr_assert_eq(parse("routes:\n"
                     "  - {prefix: /, service: root, auth: public}\n"
                     "  - {prefix: /api/, service: api, auth: public}\n"
                     "  - {prefix: /api/orders, service: orders, auth: "
                     "public, methods: [POST]}\n"
                     "  - {prefix: /api/, service: v2, auth: public, host: "
                     "v2.example}\n"),
               0, "%s", err);
  mc_slice h = MC_LIT("x.example:8080");
  cr_assert_str_eq(
      gw_route_match(c, MC_LIT("GET"), MC_LIT("/api/orders/1"), h)->service,
      "api");
  cr_assert_str_eq(
      gw_route_match(c, MC_LIT("POST"), MC_LIT("/api/orders/1"), h)->service,
      "orders");
  cr_assert_str_eq(
      gw_route_match(c, MC_LIT("GET"), MC_LIT("/other"), h)->service, "root");
  cr_assert_str_eq(gw_route_match(c, MC_LIT("GET"), MC_LIT("/api/x"),
                                  MC_LIT("V2.example:80"))
                       ->service,
                   "v2");
  cr_assert_str_eq(
      gw_route_match(c, MC_LIT("GET"), MC_LIT("/api/x"), MC_LIT("v2.example"))
          ->service,
      "v2");
}

Test(config, no_route_and_known_path) {
  cr_assert_eq(parse("routes:\n  - {prefix: /api/, service: a, auth: public, "
                     "methods: [GET]}\n"),
               0, "%s", err);
  cr_assert_null(gw_route_match(c, MC_LIT("GET"), MC_LIT("/ap"), MC_LIT("")));
  cr_assert_null(
      gw_route_match(c, MC_LIT("POST"), MC_LIT("/api/x"), MC_LIT("")));
  cr_assert(gw_route_path_known(c, MC_LIT("/api/x"), MC_LIT("")));
  cr_assert_not(gw_route_path_known(c, MC_LIT("/x"), MC_LIT("")));
}
