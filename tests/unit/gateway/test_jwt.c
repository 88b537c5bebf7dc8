#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"

#define SECRET "0123456789abcdef0123456789abcdef"
#define NOW 1800000000

static mc_arena *a;
static gw_jwt_conf conf;

static void setup(void) {
  mc_arena_new(&a, 4096, 0);
  memset(&conf, 0, sizeof conf);
  conf.secret = (const unsigned char *)SECRET;
  conf.secret_len = strlen(SECRET);
  conf.require_exp = true;
}
static void teardown(void) {
  mc_arena_free(a);
}
TestSuite(jwt, .init = setup, .fini = teardown);

static void b64url(const unsigned char *in, size_t n, char *out) {
  static const char al[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t k = 0;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (i + 1 < n)
      v |= (uint32_t)in[i + 1] << 8;
    if (i + 2 < n)
      v |= in[i + 2];
    out[k++] = al[(v >> 18) & 63];
    out[k++] = al[(v >> 12) & 63];
    if (i + 1 < n)
      out[k++] = al[(v >> 6) & 63];
    if (i + 2 < n)
      out[k++] = al[v & 63];
  }
  out[k] = 0;
}

/* header.payload.HMAC-SHA256(key) */
static char *make(const char *header, const char *payload, const char *key) {
  static char tok[4096];
  char h[1024], p[2048], s[128];
  b64url((const unsigned char *)header, strlen(header), h);
  b64url((const unsigned char *)payload, strlen(payload), p);
  snprintf(tok, sizeof tok, "%s.%s", h, p);
  unsigned char mac[32];
  unsigned int len;
  HMAC(EVP_sha256(), key, (int)strlen(key), (unsigned char *)tok, strlen(tok),
       mac, &len);
  b64url(mac, 32, s);
  strcat(tok, ".");
  strcat(tok, s);
  return tok;
}

static int verify(const char *tok, gw_claims *cl, const char **why) {
  return gw_jwt_verify(&conf, mc_slice_cstr(tok), NOW, a, cl, why);
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

Test(jwt, valid_hs256_gives_subject_and_scopes) {
  gw_claims cl;
  const char *why;
  cr_assert_eq(verify(make(HS,
                           "{\"sub\":\"alice\",\"exp\":1800000100,"
                           "\"scope\":\"a b\",\"scp\":[\"c\"]}",
                           SECRET),
                      &cl, &why),
               0, "%s", why);
  cr_assert(mc_slice_eq(cl.subject, MC_LIT("alice")));
  cr_assert(mc_slice_eq(cl.scopes, MC_LIT("a b c")));
  cr_assert_eq(cl.exp, 1800000100);
  cr_assert(gw_scopes_have(cl.scopes, "b"));
  cr_assert(gw_scopes_have(cl.scopes, "c"));
  cr_assert_not(gw_scopes_have(cl.scopes, "a b"));
  cr_assert_not(gw_scopes_have(cl.scopes, ""));
}

static void bad(const char *tok, const char *want) {
  gw_claims cl;
  const char *why = NULL;
  cr_assert_eq(verify(tok, &cl, &why), MC_EINVAL, "%s accepted", tok);
  cr_assert(why && strstr(why, want), "want '%s', got '%s'", want,
            why ? why : "(null)");
}

Test(jwt, time_claims) {
  bad(make(HS, "{\"exp\":1799999000}", SECRET), "expired");
  bad(make(HS, "{\"exp\":1800000000}", SECRET), "expired");
  bad(make(HS, "{\"sub\":\"a\"}", SECRET), "no expiry");
  bad(make(HS, "{\"exp\":\"tomorrow\"}", SECRET), "malformed exp");
  bad(make(HS, "{\"exp\":1e300}", SECRET), "malformed exp");
  bad(make(HS, "{\"exp\":1900000000,\"nbf\":1800000100}", SECRET), "nbf");
  conf.leeway_s = 200;
  gw_claims cl;
  const char *why;
  cr_assert_eq(
      verify(make(HS, "{\"exp\":1799999900,\"nbf\":1800000100}", SECRET), &cl,
             &why),
      0, "%s", why);
  conf.require_exp = false;
  cr_assert_eq(verify(make(HS, "{}", SECRET), &cl, &why), 0, "%s", why);
}

Test(jwt, signatures_and_algs) {
  bad(make(HS, "{\"exp\":1900000000}", "another-secret-of-32-bytes-or-so"),
      "bad signature");
  bad(make("{\"alg\":\"none\"}", "{\"exp\":1900000000}", SECRET), "unsigned");
  bad(make("{\"alg\":\"NONE\"}", "{\"exp\":1900000000}", SECRET), "unsigned");
  bad(make("{\"typ\":\"JWT\"}", "{\"exp\":1900000000}", SECRET), "unsigned");
  bad(make("{\"alg\":\"HS512\"}", "{\"exp\":1900000000}", SECRET),
      "unsupported alg");
  /* RS256 and ES256 without a JWKS have no key */
  bad(make("{\"alg\":\"RS256\"}", "{\"exp\":1900000000}", SECRET),
      "bad signature");
  bad(make("{\"alg\":\"ES256\"}", "{\"exp\":1900000000}", SECRET),
      "bad signature");
  bad(make("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{\"exp\":1900000000}",
           SECRET),
      "critical");
  /* HS256 without a secret configured never verifies */
  conf.secret_len = 0;
  bad(make(HS, "{\"exp\":1900000000}", ""), "bad signature");
}

Test(jwt, malformed_tokens) {
  bad("", "malformed");
  bad("abc", "malformed");
  bad("a.b", "malformed");
  bad("a.b.c.d", "malformed");
  bad("!!!.e30.c2ln", "malformed");
  bad("e30.e30.c2ln", "unsigned");
  char *t = make(HS, "{\"exp\":1900000000}", SECRET);
  t[strlen(t) - 1] = '=';
  bad(t, "malformed signature");
  bad(make("[1]", "{}", SECRET), "malformed");
  bad(make(HS, "[1]", SECRET), "malformed");
  bad(make(HS, "{\"exp\":1900000000,\"exp\":1}", SECRET), "malformed");
  char big[9000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  bad(big, "malformed");
}

Test(jwt, issuer_audience_subject) {
  conf.issuer = "users";
  static const char *aud[] = {"shop", "api"};
  conf.audiences = aud;
  conf.naudiences = 2;
  gw_claims cl;
  const char *why;
  cr_assert_eq(verify(make(HS,
                           "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":"
                           "[\"x\",\"api\"]}",
                           SECRET),
                      &cl, &why),
               0, "%s", why);
  cr_assert_eq(verify(make(HS,
                           "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":"
                           "\"shop\"}",
                           SECRET),
                      &cl, &why),
               0, "%s", why);
  bad(make(HS, "{\"exp\":1900000000,\"aud\":\"shop\"}", SECRET), "issuer");
  bad(make(HS, "{\"exp\":1900000000,\"iss\":\"u\",\"aud\":\"shop\"}", SECRET),
      "issuer");
  bad(make(HS, "{\"exp\":1900000000,\"iss\":\"users\"}", SECRET), "audience");
  bad(make(HS, "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":[\"x\"]}",
           SECRET),
      "audience");
  bad(make(HS,
           "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":\"api\",\"sub\":"
           "\"a\\nb\"}",
           SECRET),
      "malformed sub");
  bad(make(HS,
           "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":\"api\",\"sub\":"
           "7}",
           SECRET),
      "malformed sub");
  bad(make(HS,
           "{\"exp\":1900000000,\"iss\":\"users\",\"aud\":\"api\",\"scope\":"
           "\"a\\r\\nX-Evil: 1\"}",
           SECRET),
      "malformed scopes");
}

Test(jwt, base64url) {
  unsigned char out[16];
  cr_assert_eq(gw_b64url_decode(MC_LIT("aGk"), out), 2);
  cr_assert_eq(memcmp(out, "hi", 2), 0);
  cr_assert_eq(gw_b64url_decode(MC_LIT(""), out), 0);
  cr_assert_eq(gw_b64url_decode(MC_LIT("a"), out), -1);
  cr_assert_eq(gw_b64url_decode(MC_LIT("aGk="), out), -1); /* no padding */
  cr_assert_eq(gw_b64url_decode(MC_LIT("aGl"), out), -1);  /* stray bits */
  cr_assert_eq(gw_b64url_decode(MC_LIT("-_-_"), out), 3);
  cr_assert_eq(gw_b64url_decode(MC_LIT("+/+/"), out), -1);
}

Test(jwt, jwks_documents) {
  struct gw_jwks *k;
  char err[256];
  cr_assert_eq(gw_jwks_parse(MC_LIT("{}"), &k, err, sizeof err), MC_EPARSE);
  cr_assert_eq(gw_jwks_parse(MC_LIT("{\"keys\":[]}"), &k, err, sizeof err),
               MC_EINVAL);
  cr_assert_eq(
      gw_jwks_parse(MC_LIT("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\","
                           "\"e\":\"AQAB\"}]}"),
                    &k, err, sizeof err),
      MC_EINVAL, "a 17-bit RSA key was taken");
  cr_assert_eq(gw_jwks_parse(MC_LIT("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-"
                                    "384\",\"x\":\"AA\",\"y\":\"AA\"}]}"),
                             &k, err, sizeof err),
               MC_EINVAL);
  /* a P-256 key: the generator point */
  cr_assert_eq(
      gw_jwks_parse(
          MC_LIT("{\"keys\":[{\"kty\":\"oct\",\"use\":\"enc\"},{\"kty\":\"EC\","
                 "\"crv\":\"P-256\",\"kid\":\"g\",\"x\":"
                 "\"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY\",\"y\":"
                 "\"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU\"}]}"),
          &k, err, sizeof err),
      0, "%s", err);
  gw_jwks_free(k);
}
