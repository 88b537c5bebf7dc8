/* microc-gateway's parts. The protocol cores (the route file, JWT
 * verification, token buckets) do no I/O and are unit-tested in
 * tests/unit/gateway; proxy.c and main.c put them on the wire. */
#ifndef MICROC_GATEWAY_H
#define MICROC_GATEWAY_H

#include <microc/core.h>
#include <microc/discovery.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- the route file (config.c) ---------------------------------------- */

typedef enum gw_auth {
  GW_AUTH_PUBLIC = 0,
  GW_AUTH_JWT, /* a valid token; with scopes, each of them */
} gw_auth;

typedef enum gw_limit_by {
  GW_BY_CLIENT = 0, /* the client's address */
  GW_BY_SUBJECT,    /* the token's subject; the address without one */
} gw_limit_by;

typedef struct gw_cors {
  bool on;
  bool any_origin; /* "*" among the origins */
  const char **origins;
  size_t norigins;
  const char *methods; /* Access-Control-Allow-Methods */
  const char *headers; /* -Allow-Headers; NULL: those the preflight asks */
  const char *expose;  /* -Expose-Headers; NULL: none */
  bool credentials;
  int64_t max_age_s;
} gw_cors;

typedef struct gw_route {
  const char *name;   /* for metrics and logs: "name" or the prefix */
  const char *prefix; /* matched against the raw path, as a string prefix */
  size_t prefix_len;
  const char *host; /* matched against Host without its port; NULL: any */
  const char **methods;
  size_t nmethods; /* 0: any */
  const char *service;
  const char *rewrite; /* replaces the prefix; NULL: the path as sent */
  uint64_t timeout_ms; /* the whole call, retries included */
  int attempts;        /* 1 + retries; 0: discovery's default */
  mc_balancer balancer;
  gw_auth auth;
  const char **scopes;
  size_t nscopes;
  double rate, burst; /* requests a second and bucket size; rate 0: off */
  gw_limit_by limit_by;
  gw_cors cors;
  uint64_t max_body;      /* bytes */
  struct gw_stats *stats; /* set by main.c; outlives reloads */
} gw_route;

typedef struct gw_jwt_conf {
  const char *secret_env; /* the variable it came from, for messages */
  const unsigned char *secret;
  size_t secret_len; /* 0: no HS256 */
  const char *jwks_file;
  struct gw_jwks *jwks; /* RS256 and ES256 keys; NULL: none */
  const char *issuer;   /* NULL: not checked */
  const char **audiences;
  size_t naudiences; /* 0: not checked */
  int64_t leeway_s;
  bool require_exp;
} gw_jwt_conf;

typedef struct gw_config {
  mc_arena *arena; /* everything below lives here */
  gw_route *routes;
  size_t nroutes;
  gw_jwt_conf jwt;
  const char *subject_header;       /* X-Auth-Subject */
  const char *scopes_header;        /* X-Auth-Scopes */
  mc_slice subject_hdr, scopes_hdr; /* the same, as slices */
  uint64_t default_timeout_ms;
  uint64_t default_max_body;
  int refs; /* atomic; see main.c */
} gw_config;

/* Parses a route file. path names it in messages and anchors a relative
 * jwks_file. The JWT secret is read from the environment variable the file
 * names (MICROC_JWT_SECRET by default) through getenv_fn (getenv when
 * NULL). On failure returns MC_EPARSE (not YAML), MC_EINVAL (YAML that is
 * not a valid route file) or MC_ENOMEM, with a message naming the line in
 * err. *out is freed with gw_config_free. */
int gw_config_parse(mc_slice yaml, const char *path,
                    const char *(*getenv_fn)(const char *name), gw_config **out,
                    char *err, size_t errcap);
void gw_config_free(gw_config *c);
/* Reads a whole file into out (initialized here; the caller frees it),
 * refusing one over cap bytes. MC_EIO (cannot open), MC_ETOOBIG,
 * MC_ENOMEM. */
int gw_read_file(const char *path, size_t cap, mc_buf *out);
/* The route for a request: the longest prefix among those whose method
 * and host fit; NULL when none does. */
const gw_route *gw_route_match(const gw_config *c, mc_slice method,
                               mc_slice path, mc_slice host);
/* Whether some route has this path's prefix but not this method. */
bool gw_route_path_known(const gw_config *c, mc_slice path, mc_slice host);

/* ---- JWT (jwt.c) ------------------------------------------------------ */

typedef struct gw_claims {
  mc_slice subject; /* "sub", or empty */
  mc_slice scopes;  /* space-separated, from "scope", "scp" or "scopes" */
  int64_t exp;      /* 0: none */
} gw_claims;

/* Verifies a compact JWS token against the configured keys: its alg must
 * be one a configured key is for (HS256 with the secret; RS256 and ES256
 * with a JWKS key of that type, by kid), never "none"; then exp, nbf, iss
 * and aud are checked at now_s. Memory for the claims comes from a.
 * Returns 0, or MC_EINVAL with *why telling the client what was wrong
 * (a static string). */
int gw_jwt_verify(const gw_jwt_conf *conf, mc_slice token, int64_t now_s,
                  mc_arena *a, gw_claims *out, const char **why);
/* Whether the space-separated scopes hold scope. */
bool gw_scopes_have(mc_slice scopes, const char *scope);
/* base64url without padding (RFC 7515 §2). Returns the decoded length, or
 * -1 for a character outside the alphabet or an impossible length. out
 * must hold len * 3 / 4 + 3 bytes. */
long gw_b64url_decode(mc_slice in, unsigned char *out);

/* Loads RS256 and ES256 (P-256) keys from a JWKS document. MC_EPARSE,
 * MC_EINVAL (no usable key, with err), MC_ENOMEM. */
int gw_jwks_parse(mc_slice json, struct gw_jwks **out, char *err,
                  size_t errcap);
void gw_jwks_free(struct gw_jwks *k);

/* ---- token buckets (limit.c) ------------------------------------------ */

typedef struct gw_limiter gw_limiter;
int gw_limiter_new(gw_limiter **out, size_t max_keys);
void gw_limiter_free(gw_limiter *l);
/* Takes a token from key's bucket (rate a second, at most burst), made
 * full on first use. True when there was one; else *retry_s is how long
 * until there is. Thread-safe. */
bool gw_limiter_take(gw_limiter *l, mc_slice key, double rate, double burst,
                     uint64_t now_ns, double *retry_s);
size_t gw_limiter_keys(gw_limiter *l);

/* ---- the running gateway (main.c, proxy.c) ---------------------------- */

/* Counters of one route, by its name; they outlive reloads. */
#define GW_LATENCY_BUCKETS 12
typedef struct gw_stats {
  const char *name;
  uint64_t by_class[6];                     /* answers by status / 100 */
  uint64_t latency[GW_LATENCY_BUCKETS + 1]; /* the last: +Inf */
  uint64_t latency_sum_us;
  uint64_t unauthorized, forbidden, rate_limited; /* 401, 403, 429 */
  uint64_t bad_gateway, unavailable, timeouts;    /* 502, 503, 504 */
  uint64_t preflights;
} gw_stats;
extern const double gw_latency_bounds[GW_LATENCY_BUCKETS];

/* The routes in force, counted: a request holds the config it started
 * with until its answer is sent, while a reload swaps in the next. */
gw_config *gw_config_acquire(void);
void gw_config_release(gw_config *c);
gw_limiter *gw_limiter_get(void);

/* The app's one route: every path, every method. */
extern const struct mc_route gw_proxy_route;

#endif
