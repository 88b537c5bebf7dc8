/* JWT verification (RFC 7519, compact JWS of RFC 7515) on OpenSSL.
 *
 * Written here rather than taken from libjwt: Debian 12's libjwt 1.10 reads
 * no JWKS, and which key an alg may use is the whole of the security of
 * it, so that choice stays in these few lines: HS256 verifies only with
 * the configured secret, RS256 only with an RSA key of the JWKS, ES256 only
 * with a P-256 key of it. "none", and every other alg, is refused. */
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

#define MAX_TOKEN 8192

enum { KTY_RSA = 1, KTY_EC };

typedef struct jwk {
  char kid[128];
  int kty;
  EVP_PKEY *pkey;
} jwk;

struct gw_jwks {
  jwk *keys;
  size_t n;
};

/* ---- base64url ------------------------------------------------------- */

static int b64v(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '-')
    return 62;
  if (c == '_')
    return 63;
  return -1;
}

long gw_b64url_decode(mc_slice in, unsigned char *out) {
  if (in.len % 4 == 1)
    return -1;
  size_t k = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < in.len; i++) {
    int v = b64v((unsigned char)in.ptr[i]);
    if (v < 0)
      return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[k++] = (unsigned char)(acc >> bits);
    }
  }
  /* leftover bits must be zero: one text per value (RFC 4648 §3.5) */
  if (bits && (acc & ((1u << bits) - 1)))
    return -1;
  return (long)k;
}

static json_t *b64_json(mc_slice part, mc_arena *a) {
  unsigned char *buf = mc_arena_alloc(a, part.len * 3 / 4 + 3);
  if (!buf)
    return NULL;
  long n = gw_b64url_decode(part, buf);
  if (n < 0)
    return NULL;
  json_t *j =
      json_loadb((const char *)buf, (size_t)n,
                 JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, NULL);
  if (j && !json_is_object(j)) {
    json_decref(j);
    return NULL;
  }
  return j;
}

/* ---- keys ------------------------------------------------------------- */

static BIGNUM *b64_bn(const char *s) {
  size_t len = strlen(s);
  unsigned char *buf = malloc(len * 3 / 4 + 3);
  if (!buf)
    return NULL;
  long n = gw_b64url_decode((mc_slice){s, len}, buf);
  BIGNUM *bn = n > 0 ? BN_bin2bn(buf, (int)n, NULL) : NULL;
  free(buf);
  return bn;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld) {
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
  if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
      EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
    pkey = NULL;
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  return pkey;
}

static EVP_PKEY *rsa_key(json_t *k) {
  const char *n = json_string_value(json_object_get(k, "n"));
  const char *e = json_string_value(json_object_get(k, "e"));
  if (!n || !e)
    return NULL;
  BIGNUM *bn = b64_bn(n), *be = b64_bn(e);
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  /* below 2048 bits is refused (RFC 7518 §3.3) */
  if (bn && be && bld && BN_num_bits(bn) >= 2048 &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
      OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
    pkey = from_params("RSA", bld);
  OSSL_PARAM_BLD_free(bld);
  BN_free(bn);
  BN_free(be);
  return pkey;
}

static EVP_PKEY *ec_key(json_t *k) {
  const char *crv = json_string_value(json_object_get(k, "crv"));
  const char *x = json_string_value(json_object_get(k, "x"));
  const char *y = json_string_value(json_object_get(k, "y"));
  if (!crv || strcmp(crv, "P-256") || !x || !y || strlen(x) != 43 ||
      strlen(y) != 43)
    return NULL;
  unsigned char point[1 + 32 + 32 + 3];
  point[0] = 4; /* uncompressed */
  if (gw_b64url_decode(mc_slice_cstr(x), point + 1) != 32 ||
      gw_b64url_decode(mc_slice_cstr(y), point + 33) != 32)
    return NULL;
  EVP_PKEY *pkey = NULL;
  OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
  if (bld &&
      OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                      "prime256v1", 0) &&
      OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 65))
    pkey = from_params("EC", bld);
  OSSL_PARAM_BLD_free(bld);
  return pkey;
}

void gw_jwks_free(struct gw_jwks *k) {
  if (!k)
    return;
  for (size_t i = 0; i < k->n; i++)
    EVP_PKEY_free(k->keys[i].pkey);
  free(k->keys);
  free(k);
}

int gw_jwks_parse(mc_slice text, struct gw_jwks **out, char *err,
                  size_t errcap) {
  *out = NULL;
  json_t *root = json_loadb(text.ptr, text.len, 0, NULL);
  json_t *keys = json_object_get(root, "keys");
  if (!json_is_array(keys)) {
    json_decref(root);
    snprintf(err, errcap, "not a JWKS document ({\"keys\": [...]})");
    return MC_EPARSE;
  }
  struct gw_jwks *k = calloc(1, sizeof *k);
  if (k)
    k->keys = calloc(json_array_size(keys) + 1, sizeof *k->keys);
  if (!k || !k->keys) {
    free(k);
    json_decref(root);
    return MC_ENOMEM;
  }
  size_t i;
  json_t *jk;
  json_array_foreach(keys, i, jk) {
    const char *kty = json_string_value(json_object_get(jk, "kty"));
    const char *use = json_string_value(json_object_get(jk, "use"));
    const char *kid = json_string_value(json_object_get(jk, "kid"));
    if (use && strcmp(use, "sig"))
      continue; /* an encryption key is not for signatures */
    jwk *dst = &k->keys[k->n];
    if (kty && !strcmp(kty, "RSA"))
      dst->kty = KTY_RSA, dst->pkey = rsa_key(jk);
    else if (kty && !strcmp(kty, "EC"))
      dst->kty = KTY_EC, dst->pkey = ec_key(jk);
    if (!dst->pkey) {
      snprintf(err, errcap,
               "key %zu (kid %s) is not an RSA key of 2048 bits or more nor a "
               "P-256 EC key",
               i, kid ? kid : "none");
      json_decref(root);
      gw_jwks_free(k);
      return MC_EINVAL;
    }
    snprintf(dst->kid, sizeof dst->kid, "%s", kid ? kid : "");
    k->n++;
  }
  json_decref(root);
  if (!k->n) {
    gw_jwks_free(k);
    snprintf(err, errcap, "no signing key in it");
    return MC_EINVAL;
  }
  *out = k;
  return 0;
}

/* ---- signatures ------------------------------------------------------- */

static bool verify_hs256(const gw_jwt_conf *c, mc_slice signed_part,
                         const unsigned char *sig, long siglen) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  if (siglen != 32 ||
      !HMAC(EVP_sha256(), c->secret, (int)c->secret_len,
            (const unsigned char *)signed_part.ptr, signed_part.len, mac,
            &maclen) ||
      maclen != 32)
    return false;
  return CRYPTO_memcmp(mac, sig, 32) == 0;
}

static bool verify_pkey(EVP_PKEY *pkey, mc_slice signed_part,
                        const unsigned char *sig, size_t siglen) {
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok =
      md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
      EVP_DigestVerify(md, sig, siglen, (const unsigned char *)signed_part.ptr,
                       signed_part.len) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

/* JWS carries ES256 signatures as r || s (RFC 7518 §3.4); OpenSSL wants
 * DER. */
static bool verify_es256(EVP_PKEY *pkey, mc_slice signed_part,
                         const unsigned char *sig, long siglen) {
  if (siglen != 64)
    return false;
  ECDSA_SIG *es = ECDSA_SIG_new();
  BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
  if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return false;
  }
  unsigned char *der = NULL;
  int derlen = i2d_ECDSA_SIG(es, &der);
  bool ok = derlen > 0 && verify_pkey(pkey, signed_part, der, (size_t)derlen);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  return ok;
}

static bool verify_jwks(const gw_jwt_conf *c, int kty, const char *kid,
                        mc_slice signed_part, const unsigned char *sig,
                        long siglen) {
  if (!c->jwks)
    return false;
  for (size_t i = 0; i < c->jwks->n; i++) {
    const jwk *k = &c->jwks->keys[i];
    if (k->kty != kty || (kid && k->kid[0] && strcmp(kid, k->kid)))
      continue;
    bool ok = kty == KTY_EC
                  ? verify_es256(k->pkey, signed_part, sig, siglen)
                  : verify_pkey(k->pkey, signed_part, sig, (size_t)siglen);
    if (ok)
      return true;
  }
  return false;
}

/* ---- claims ----------------------------------------------------------- */

bool gw_scopes_have(mc_slice scopes, const char *scope) {
  size_t n = strlen(scope);
  size_t i = 0;
  while (i < scopes.len) {
    size_t j = i;
    while (j < scopes.len && scopes.ptr[j] != ' ')
      j++;
    if (j - i == n && !memcmp(scopes.ptr + i, scope, n))
      return true;
    i = j + 1;
  }
  return false;
}

/* Scopes as one space-separated string: "scope" (RFC 8693, a string),
 * "scp" (a string or a list) or "scopes" (a list). Only characters that
 * may go in a header and in a scope token are kept (RFC 6749 §3.3). */
static int read_scopes(json_t *claims, mc_arena *a, mc_slice *out) {
  mc_buf b;
  mc_buf_init(&b, 4096);
  const char *names[] = {"scope", "scp", "scopes"};
  for (size_t k = 0; k < MC_COUNT(names); k++) {
    json_t *v = json_object_get(claims, names[k]);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; i < n; i++) {
      json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
      const char *s = json_string_value(item);
      if (!s)
        continue;
      for (; *s; s++) {
        bool ok =
            *s == ' ' || (*s > 0x20 && *s < 0x7f && *s != '"' && *s != '\\');
        if (!ok) {
          mc_buf_free(&b);
          return MC_EINVAL;
        }
      }
      if (b.len)
        mc_buf_append_char(&b, ' ');
      if (mc_buf_append_cstr(&b, json_string_value(item)) != 0) {
        mc_buf_free(&b);
        return MC_EINVAL;
      }
    }
  }
  char *d = mc_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
  mc_buf_free(&b);
  if (!d)
    return MC_ENOMEM;
  *out = mc_slice_cstr(d);
  return 0;
}

static bool aud_ok(const gw_jwt_conf *c, json_t *aud) {
  if (!c->naudiences)
    return true;
  size_t n = json_is_array(aud) ? json_array_size(aud) : 1;
  for (size_t i = 0; i < n; i++) {
    const char *s =
        json_string_value(json_is_array(aud) ? json_array_get(aud, i) : aud);
    for (size_t k = 0; s && k < c->naudiences; k++)
      if (!strcmp(s, c->audiences[k]))
        return true;
  }
  return false;
}

/* A NumericDate: a number of seconds; fractions are allowed. */
static bool numeric_date(json_t *v, int64_t *out) {
  if (!json_is_number(v))
    return false;
  double d = json_number_value(v);
  if (!(d >= 0 && d < 1e15))
    return false;
  *out = (int64_t)d;
  return true;
}

int gw_jwt_verify(const gw_jwt_conf *c, mc_slice token, int64_t now_s,
                  mc_arena *a, gw_claims *out, const char **why) {
  memset(out, 0, sizeof *out);
  *why = "malformed token";
  if (token.len == 0 || token.len > MAX_TOKEN)
    return MC_EINVAL;
  const char *d1 = memchr(token.ptr, '.', token.len);
  const char *d2 =
      d1 ? memchr(d1 + 1, '.', (size_t)(token.ptr + token.len - d1 - 1)) : NULL;
  if (!d1 || !d2 ||
      memchr(d2 + 1, '.', (size_t)(token.ptr + token.len - d2 - 1)))
    return MC_EINVAL;
  mc_slice hpart = {token.ptr, (size_t)(d1 - token.ptr)};
  mc_slice ppart = {d1 + 1, (size_t)(d2 - d1 - 1)};
  mc_slice spart = {d2 + 1, (size_t)(token.ptr + token.len - d2 - 1)};
  mc_slice signed_part = {token.ptr, (size_t)(d2 - token.ptr)};

  json_t *header = b64_json(hpart, a);
  if (!header)
    return MC_EINVAL;
  const char *alg = json_string_value(json_object_get(header, "alg"));
  const char *kid = json_string_value(json_object_get(header, "kid"));
  int rc = MC_EINVAL;
  json_t *claims = NULL;
  unsigned char *sig = mc_arena_alloc(a, spart.len * 3 / 4 + 3);
  long siglen = sig ? gw_b64url_decode(spart, sig) : -1;
  if (json_object_get(header, "crit")) {
    *why = "unsupported critical header";
    goto done;
  }
  if (!alg || !strcmp(alg, "none") || !strcmp(alg, "None") ||
      !strcmp(alg, "NONE")) {
    *why = "unsigned tokens are refused";
    goto done;
  }
  if (siglen <= 0) {
    *why = "malformed signature";
    goto done;
  }
  bool ok;
  if (!strcmp(alg, "HS256"))
    ok = c->secret_len && verify_hs256(c, signed_part, sig, siglen);
  else if (!strcmp(alg, "RS256"))
    ok = verify_jwks(c, KTY_RSA, kid, signed_part, sig, siglen);
  else if (!strcmp(alg, "ES256"))
    ok = verify_jwks(c, KTY_EC, kid, signed_part, sig, siglen);
  else {
    *why = "unsupported alg";
    goto done;
  }
  if (!ok) {
    *why = "bad signature";
    goto done;
  }
  if (!(claims = b64_json(ppart, a)))
    goto done;
  int64_t exp = 0, nbf = 0;
  json_t *v = json_object_get(claims, "exp");
  if (v && !numeric_date(v, &exp)) {
    *why = "malformed exp";
    goto done;
  }
  if (!v && c->require_exp) {
    *why = "the token has no expiry (exp)";
    goto done;
  }
  if (v && now_s >= exp + c->leeway_s) {
    *why = "the token has expired";
    goto done;
  }
  v = json_object_get(claims, "nbf");
  if (v && (!numeric_date(v, &nbf) || now_s + c->leeway_s < nbf)) {
    *why = "the token is not valid yet (nbf)";
    goto done;
  }
  if (c->issuer) {
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    if (!iss || strcmp(iss, c->issuer)) {
      *why = "wrong issuer";
      goto done;
    }
  }
  if (!aud_ok(c, json_object_get(claims, "aud"))) {
    *why = "wrong audience";
    goto done;
  }
  v = json_object_get(claims, "sub");
  if (v) {
    const char *sub = json_string_value(v);
    size_t len = sub ? json_string_length(v) : 0;
    bool printable = sub && len <= 256;
    for (size_t i = 0; printable && i < len; i++)
      printable = sub[i] >= 0x20 && sub[i] < 0x7f;
    if (!printable) {
      *why = "malformed sub";
      goto done;
    }
    char *s = mc_arena_strndup(a, sub, len);
    if (!s) {
      rc = MC_ENOMEM;
      goto done;
    }
    out->subject = (mc_slice){s, len};
  }
  if ((rc = read_scopes(claims, a, &out->scopes)) != 0) {
    *why = "malformed scopes";
    goto done;
  }
  out->exp = exp;
  *why = NULL;
  rc = 0;
done:
  json_decref(header);
  json_decref(claims);
  return rc;
}
