/* Fuzzes the gateway's two parsers of outside input: JWT verification
 * (cmd/microc-gateway/jwt.c) and the route file (config.c).
 *
 * The first byte picks: even, the rest is a token verified against an
 * HS256 secret and a JWKS with one P-256 key; odd, the rest is a route
 * file. Checked, with abort():
 *  - verification returns 0 or MC_EINVAL with a reason, or MC_ENOMEM;
 *    accepted claims hold only printable subjects and scopes (they become
 *    headers);
 *  - parsing returns 0, MC_EPARSE, MC_EINVAL or MC_ENOMEM, with a message
 *    on failure; a parsed file's routes have a prefix starting with '/',
 *    a service, and scopes only with JWT auth. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x))                                                                  \
      abort();                                                                 \
  } while (0)

#define SECRET "fuzz-secret-0123456789abcdef-0123456789"

static const char jwks_doc[] =
    "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"g\",\"x\":"
    "\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\",\"y\":"
    "\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"}]}";

static bool printable(mc_slice s) {
  for (size_t i = 0; i < s.len; i++)
    if (s.ptr[i] < 0x20 || s.ptr[i] >= 0x7f)
      return false;
  return true;
}

static const char *env(const char *name) {
  return strcmp(name, "MICROC_JWT_SECRET") ? NULL : SECRET;
}

static void fuzz_jwt(mc_slice token) {
  static struct gw_jwks *keys;
  if (!keys) {
    char err[128];
    CHECK(gw_jwks_parse((mc_slice){jwks_doc, sizeof jwks_doc - 1}, &keys, err,
                        sizeof err) == 0);
  }
  gw_jwt_conf conf = {.secret = (const unsigned char *)SECRET,
                      .secret_len = sizeof SECRET - 1,
                      .jwks = keys,
                      .leeway_s = 30,
                      .require_exp = false};
  mc_arena *a;
  CHECK(mc_arena_new(&a, 4096, 1 << 20) == 0);
  gw_claims cl;
  const char *why = NULL;
  int rc = gw_jwt_verify(&conf, token, 1800000000, a, &cl, &why);
  CHECK(rc == 0 || rc == MC_EINVAL || rc == MC_ENOMEM);
  if (rc == MC_EINVAL)
    CHECK(why && *why);
  if (rc == 0)
    CHECK(printable(cl.subject) && printable(cl.scopes));
  mc_arena_free(a);
}

static void fuzz_routes(mc_slice yaml) {
  gw_config *c;
  char err[256];
  int rc = gw_config_parse(yaml, "fuzz.yaml", env, &c, err, sizeof err);
  CHECK(rc == 0 || rc == MC_EPARSE || rc == MC_EINVAL || rc == MC_ENOMEM);
  if (rc) {
    CHECK(err[0] && memchr(err, 0, sizeof err));
    CHECK(c == NULL);
    return;
  }
  for (size_t i = 0; i < c->nroutes; i++) {
    const gw_route *r = &c->routes[i];
    CHECK(r->prefix && r->prefix[0] == '/' && r->service && *r->service);
    CHECK(r->name && r->max_body > 0 && r->timeout_ms > 0);
    CHECK(!r->nscopes || r->auth == GW_AUTH_JWT);
    (void)gw_route_match(c, MC_LIT("GET"), mc_slice_cstr(r->prefix),
                         MC_LIT("example:80"));
  }
  gw_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  mc_slice rest = {(const char *)data + 1, size - 1};
  if (data[0] % 2 == 0)
    fuzz_jwt(rest);
  else
    fuzz_routes(rest);
  return 0;
}
