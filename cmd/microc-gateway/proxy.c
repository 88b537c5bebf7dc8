/* The proxy path: one handler for every request that is not the gateway's
 * own (/health, /metrics). In order: the route, CORS preflight, identity
 * (incoming identity headers are always dropped; a JWT route verifies the
 * token and sets them), the rate limit, then the call to an instance of
 * the route's service found through the registry, with the route's
 * timeout, retries and balancer, and the answer relayed. */
#include <math.h>
#include <stdarg.h>
#include <microc/client.h>
#include <microc/fiber.h>
#include <microc/http.h>
#include <microc/log.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway.h"

#define MAX_HEADERS 128

const double gw_latency_bounds[GW_LATENCY_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

#define ADD(x, n) __atomic_add_fetch(&(x), (n), __ATOMIC_RELAXED)

static const char cfg_key; /* mc_req_local slot of the request's config */

static void release_cfg(void *c) {
  gw_config_release(c);
}

static gw_config *req_config(mc_req *req) {
  gw_config *c = mc_req_local(req, &cfg_key);
  if (c)
    return c;
  c = gw_config_acquire();
  if (mc_arena_cleanup_add(mc_req_arena(req), release_cfg, c) != 0) {
    gw_config_release(c);
    return NULL;
  }
  mc_req_set_local(req, &cfg_key, c);
  return c;
}

/* A request header by its literal name. */
#define header(req, lit) mc_req_header((req), MC_LIT(lit))

/* gRPC: HTTP/2 with an application/grpc body. Its callers read a
 * grpc-status, not an HTTP status, so the gateway's own refusals take
 * that form for them. */
static bool is_grpc(mc_req *req) {
  mc_slice ct = header(req, "content-type");
  return mc_req_http_version(req) == 2 &&
         mc_slice_starts_with(ct, MC_LIT("application/grpc"));
}

/* The gRPC status for an HTTP status the gateway answers with. */
static int grpc_code(int status) {
  switch (status) {
  case 400:
    return 13; /* INTERNAL */
  case 401:
    return 16; /* UNAUTHENTICATED */
  case 403:
    return 7; /* PERMISSION_DENIED */
  case 404:
  case 405:
    return 12; /* UNIMPLEMENTED */
  case 413:
  case 429:
    return 8; /* RESOURCE_EXHAUSTED */
  case 504:
    return 4; /* DEADLINE_EXCEEDED */
  default:
    return 14; /* UNAVAILABLE */
  }
}

/* Answers with a problem (RFC 9457), or for gRPC with a trailers-only
 * answer carrying the matching grpc-status and the detail as
 * grpc-message. */
static int refuse(mc_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int refuse(mc_req *req, int status, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!is_grpc(req))
    return mc_res_problem(req, status, detail);
  char code[8], msg[3 * sizeof detail];
  snprintf(code, sizeof code, "%d", grpc_code(status));
  size_t k = 0;
  for (const char *d = detail; *d; d++) { /* percent-encoded, as gRPC says */
    unsigned char ch = (unsigned char)*d;
    if (ch >= 0x20 && ch < 0x7f && ch != '%')
      msg[k++] = (char)ch;
    else
      k += (size_t)snprintf(msg + k, 4, "%%%02X", ch);
  }
  mc_res_header(req, MC_LIT("grpc-status"), mc_slice_cstr(code));
  mc_res_header(req, MC_LIT("grpc-message"), (mc_slice){msg, k});
  return mc_res_send(req, 200, MC_LIT("application/grpc"), MC_LIT(""));
}

static const char route_key; /* mc_req_local slot of the matched route */

/* Decided from the head, before the body is read. The route found is kept
 * for the handler, which would otherwise look for it again. */
static size_t body_limit(mc_req *req) {
  gw_config *c = req_config(req);
  if (!c)
    return 0;
  const gw_route *r = gw_route_match(c, mc_req_method(req), mc_req_path(req),
                                     header(req, "host"));
  mc_req_set_local(req, &route_key, (void *)r);
  return r ? r->max_body : c->default_max_body;
}

/* ---- CORS ------------------------------------------------------------- */

static bool origin_allowed(const gw_cors *c, mc_slice origin) {
  if (c->any_origin)
    return true;
  for (size_t i = 0; i < c->norigins; i++)
    if (mc_slice_eq(origin, mc_slice_cstr(c->origins[i])))
      return true;
  return false;
}

static void cors_headers(mc_req *req, const gw_cors *c, mc_slice origin) {
  if (c->any_origin && !c->credentials) {
    mc_res_header(req, MC_LIT("Access-Control-Allow-Origin"), MC_LIT("*"));
  } else {
    mc_res_header(req, MC_LIT("Access-Control-Allow-Origin"), origin);
    mc_res_header(req, MC_LIT("Vary"), MC_LIT("Origin"));
  }
  if (c->credentials)
    mc_res_header(req, MC_LIT("Access-Control-Allow-Credentials"),
                  MC_LIT("true"));
}

/* The Origin header, when sane: it goes back in a header, so printable and
 * short only. */
static mc_slice request_origin(mc_req *req) {
  mc_slice o = header(req, "origin");
  if (!o.len || o.len > 256)
    return (mc_slice){0};
  for (size_t i = 0; i < o.len; i++)
    if (o.ptr[i] <= 0x20 || o.ptr[i] >= 0x7f)
      return (mc_slice){0};
  return o;
}

static int preflight(mc_req *req, const gw_route *r, mc_slice origin) {
  ADD(r->stats->preflights, 1);
  if (!r->cors.on || !origin_allowed(&r->cors, origin))
    return mc_res_problem(req, 403, "this origin may not call this route");
  cors_headers(req, &r->cors, origin);
  mc_res_header(req, MC_LIT("Access-Control-Allow-Methods"),
                mc_slice_cstr(r->cors.methods));
  mc_slice asked = header(req, "access-control-request-headers");
  bool asked_ok = asked.len < 1024;
  for (size_t i = 0; asked_ok && i < asked.len; i++)
    asked_ok = asked.ptr[i] >= 0x20 && asked.ptr[i] < 0x7f;
  if (r->cors.headers)
    mc_res_header(req, MC_LIT("Access-Control-Allow-Headers"),
                  mc_slice_cstr(r->cors.headers));
  else if (asked.len && asked_ok)
    mc_res_header(req, MC_LIT("Access-Control-Allow-Headers"), asked);
  char age[24];
  snprintf(age, sizeof age, "%lld", (long long)r->cors.max_age_s);
  mc_res_header(req, MC_LIT("Access-Control-Max-Age"), mc_slice_cstr(age));
  return mc_res_send(req, 204, MC_LIT("text/plain"), MC_LIT(""));
}

/* ---- identity ----------------------------------------------------------- */

static int unauthorized(mc_req *req, const gw_route *r, const char *why) {
  ADD(r->stats->unauthorized, 1);
  char www[256];
  if (why)
    snprintf(www, sizeof www,
             "Bearer realm=\"microc\", error=\"invalid_token\", "
             "error_description=\"%s\"",
             why);
  else
    snprintf(www, sizeof www, "Bearer realm=\"microc\"");
  mc_res_header(req, MC_LIT("WWW-Authenticate"), mc_slice_cstr(www));
  return refuse(req, 401, "%s", why ? why : "this route needs a bearer token");
}

static int authenticate(mc_req *req, const gw_config *c, const gw_route *r,
                        gw_claims *claims) {
  mc_slice auth = header(req, "authorization");
  if (!auth.len)
    return unauthorized(req, r, NULL), 1;
  if (auth.len < 7 ||
      !mc_slice_eq_nocase((mc_slice){auth.ptr, 7}, MC_LIT("Bearer ")))
    return unauthorized(req, r, "the Authorization header is not Bearer"), 1;
  mc_slice token = {auth.ptr + 7, auth.len - 7};
  while (token.len && token.ptr[0] == ' ')
    token.ptr++, token.len--;
  const char *why;
  if (gw_jwt_verify(&c->jwt, token, (int64_t)time(NULL), mc_req_arena(req),
                    claims, &why) != 0)
    return unauthorized(req, r, why ? why : "invalid token"), 1;
  for (size_t i = 0; i < r->nscopes; i++) {
    if (!gw_scopes_have(claims->scopes, r->scopes[i])) {
      ADD(r->stats->forbidden, 1);
      char www[256];
      snprintf(www, sizeof www,
               "Bearer realm=\"microc\", error=\"insufficient_scope\", "
               "scope=\"%.128s\"",
               r->scopes[i]);
      mc_res_header(req, MC_LIT("WWW-Authenticate"), mc_slice_cstr(www));
      refuse(req, 403, "the token lacks the scope %s", r->scopes[i]);
      return 1;
    }
  }
  return 0;
}

/* ---- forwarding ------------------------------------------------------- */

/* What a header is to the proxy: not passed on to the service (hop-by-hop
 * headers, RFC 9110 §7.6.1, those the client sets itself, and those the
 * gateway writes anew), not passed back from it (hop-by-hop, and those the
 * gateway's server writes), or the X-Forwarded-For to append to. A switch
 * on the length: every header of every request and answer comes here. */
enum { DROP_IN = 1, DROP_OUT = 2, XFF = 4 };

static unsigned header_kind(mc_slice n) {
#define IS(lit) mc_slice_eq_nocase(n, MC_LIT(lit))
  const unsigned HOP = DROP_IN | DROP_OUT;
  switch (n.len) {
  case 2:
    return IS("te") ? HOP : 0;
  case 4:
    return IS("host") ? DROP_IN : IS("date") ? DROP_OUT : 0;
  case 6:
    return IS("expect") ? DROP_IN : IS("server") ? DROP_OUT : 0;
  case 7:
    return IS("trailer") || IS("upgrade") ? HOP : 0;
  case 9:
    return IS("forwarded") ? DROP_IN : 0;
  case 10:
    return IS("connection") || IS("keep-alive") ? HOP
           : IS("tracestate")                   ? DROP_IN
                                                : 0;
  case 11:
    return IS("traceparent") ? HOP : 0;
  case 12:
    return IS("x-request-id") ? HOP : IS("content-type") ? DROP_OUT : 0;
  case 14:
    return IS("content-length") ? HOP : IS("http2-settings") ? DROP_IN : 0;
  case 15:
    return IS("x-forwarded-for") ? DROP_IN | XFF : 0;
  case 16:
    return IS("proxy-connection") ? HOP : IS("x-forwarded-host") ? DROP_IN : 0;
  case 17:
    return IS("transfer-encoding")   ? HOP
           : IS("x-forwarded-proto") ? DROP_IN
                                     : 0;
  case 18:
    return IS("proxy-authenticate") ? DROP_IN : 0;
  case 19:
    return IS("proxy-authorization") ? DROP_IN : 0;
  case 20:
    return IS("x-request-timeout-ms") ? DROP_IN : 0;
  default:
    return 0;
  }
#undef IS
}

/* The identity headers the gateway sets: never taken from the client. */
static bool identity_header(mc_slice name, const gw_config *c) {
  return (name.len == c->subject_hdr.len &&
          mc_slice_eq_nocase(name, c->subject_hdr)) ||
         (name.len == c->scopes_hdr.len &&
          mc_slice_eq_nocase(name, c->scopes_hdr));
}

/* Also those the Connection header names. */
static bool named_by_connection(mc_slice conn, mc_slice name) {
  size_t i = 0;
  while (i < conn.len) {
    while (i < conn.len && (conn.ptr[i] == ' ' || conn.ptr[i] == ','))
      i++;
    size_t j = i;
    while (j < conn.len && conn.ptr[j] != ',' && conn.ptr[j] != ' ')
      j++;
    if (j > i && mc_slice_eq_nocase((mc_slice){conn.ptr + i, j - i}, name))
      return true;
    i = j;
  }
  return false;
}

/* The path the service gets: the rewrite in place of the prefix, and the
 * query as sent. */
static const char *upstream_target(mc_req *req, const gw_route *r) {
  mc_slice path = mc_req_path(req), q = mc_req_query_string(req);
  mc_slice rest = path, base = {"", 0};
  if (r->rewrite) {
    size_t plen = r->prefix_len;
    rest = (mc_slice){path.ptr + plen, path.len - plen};
    base = mc_slice_cstr(r->rewrite);
    if (base.len && base.ptr[base.len - 1] == '/' && rest.len &&
        rest.ptr[0] == '/')
      rest.ptr++, rest.len--;
  }
  size_t n = base.len + rest.len + (q.len ? 1 + q.len : 0);
  char *out = mc_arena_alloc(mc_req_arena(req), n + 1);
  if (!out)
    return NULL;
  char *p = out;
  memcpy(p, base.ptr, base.len);
  p += base.len;
  memcpy(p, rest.ptr, rest.len);
  p += rest.len;
  if (q.len) {
    *p++ = '?';
    memcpy(p, q.ptr, q.len);
    p += q.len;
  }
  *p = 0;
  return out;
}

static int failed(mc_req *req, const gw_route *r, int err) {
  if (err == MC_EUNAVAILABLE) {
    ADD(r->stats->unavailable, 1);
    return refuse(req, 503, "no healthy instance of %s is available",
                  r->service);
  }
  if (err == MC_ETIMEDOUT) {
    ADD(r->stats->timeouts, 1);
    return refuse(req, 504, "%s did not answer in time", r->service);
  }
  if (err == MC_ECANCELED)
    return refuse(req, 503, "the gateway is shutting down");
  if (err == MC_ETOOBIG) {
    ADD(r->stats->bad_gateway, 1);
    return refuse(req, 502, "the answer of %s is too large", r->service);
  }
  ADD(r->stats->bad_gateway, 1);
  return refuse(req, 502, "%s failed: %s", r->service, mc_strerror(err));
}

/* ---- bodies ------------------------------------------------------------- */

/* Bodies up to this size are read whole before the call, so that a failed
 * attempt can be made again elsewhere; longer ones stream through. */
#define HELD_BODY (64 * 1024)

/* The request's body for the upstream call as a source: what was read
 * ahead first, then the rest as the client sends it. */
typedef struct body_feed {
  mc_req *req;
  mc_slice ahead[2];
  int next;
} body_feed;

static int feed_read(void *ud, mc_slice *chunk) {
  body_feed *f = ud;
  while (f->next < 2) {
    mc_slice s = f->ahead[f->next++];
    if (s.len) {
      *chunk = s;
      return 0;
    }
  }
  return mc_req_body_read(f->req, chunk);
}

static int body_failed(mc_req *req, int err) {
  if (err == MC_ETOOBIG)
    return refuse(req, 413, "request body too large");
  if (err == MC_ETIMEDOUT)
    return refuse(req, 408, "request body not received in time");
  if (err == MC_ECANCELED)
    return refuse(req, 503, "the gateway is shutting down");
  return refuse(req, 400, "request body: %s", mc_strerror(err));
}

/* Reads up to HELD_BODY of the body. When that is all of it, *whole is
 * set; otherwise f is ready to give what was read and then the rest. */
static int read_ahead(mc_req *req, body_feed *f, mc_slice *whole,
                      bool *streams) {
  char *held = NULL;
  size_t n = 0;
  for (;;) {
    mc_slice piece;
    int err = mc_req_body_read(req, &piece);
    if (err)
      return err;
    if (!piece.len) {
      *whole = (mc_slice){held ? held : "", n};
      *streams = false;
      return 0;
    }
    if (n + piece.len > HELD_BODY) { /* the piece is valid until the next
                                        read: the feed gives it first */
      f->ahead[0] = (mc_slice){held, n};
      f->ahead[1] = piece;
      *streams = true;
      return 0;
    }
    if (!held && !(held = mc_arena_alloc(mc_req_arena(req), HELD_BODY)))
      return MC_ENOMEM;
    memcpy(held + n, piece.ptr, piece.len);
    n += piece.len;
  }
}

/* The length the client declared, or -1. */
static int64_t declared_length(mc_slice v) {
  int64_t n;
  return v.len && mc_slice_to_i64(v, &n) == 0 && n >= 0 ? n : -1;
}

/* Relays the answer's body. One with no body, or a short one of known
 * length, is held whole and leaves in one piece (so one that breaks off
 * is still a 502); a longer one goes piece by piece as it comes, and if it
 * breaks off upstream it breaks off here too (the connection closes, or
 * the stream is reset), so the client can tell. */
static int relay(mc_req *req, const gw_route *r, mc_http_response *res,
                 mc_slice ct, int64_t length, bool whole_ok) {
  mc_slice piece;
  int err = mc_http_read(res, &piece);
  if (err)
    return failed(req, r, err);
  if (!piece.len) { /* no body: a trailers-only gRPC answer, say */
    for (size_t i = 0; i < res->ntrailers; i++)
      mc_res_trailer(req, res->trailers[i].name, res->trailers[i].value);
    return mc_res_send(req, res->status, ct, piece);
  }
  if (whole_ok && length >= 0 && length <= HELD_BODY) {
    char *held = NULL;
    size_t n = 0;
    while (piece.len && n + piece.len <= (uint64_t)length) {
      if (n == 0 && piece.len == (uint64_t)length)
        break; /* came whole with the head: no copy */
      if (!held && !(held = mc_arena_alloc(mc_req_arena(req), HELD_BODY)))
        return MC_ENOMEM;
      memcpy(held + n, piece.ptr, piece.len);
      n += piece.len;
      if (n == (uint64_t)length)
        break;
      if ((err = mc_http_read(res, &piece)))
        return failed(req, r, err);
    }
    if (held)
      piece = (mc_slice){held, n};
    if (piece.len != (uint64_t)length)
      return failed(req, r, MC_EPROTO);
    /* the copy is made before the read that ends the exchange, which may
     * reuse the buffer */
    err = mc_res_send(req, res->status, ct, piece);
    mc_slice end;
    if (!err && (mc_http_read(res, &end) != 0 || end.len))
      MC_LOG(MC_LOG_WARN, "upstream sent more than its Content-Length",
             MC_LOG_CSTR("route", r->name));
    return err;
  }
  err = mc_res_begin(req, res->status, ct, length);
  while (!err && piece.len) {
    if ((err = mc_res_write(req, piece)))
      break;
    if ((err = mc_http_read(res, &piece))) {
      ADD(r->stats->bad_gateway, 1);
      MC_LOG(MC_LOG_WARN, "upstream answer broke off",
             MC_LOG_CSTR("route", r->name),
             MC_LOG_CSTR("error", mc_strerror(err)));
      return 0; /* cut short: the handler's return tells the client */
    }
  }
  if (err)
    return 0; /* the client went away, or stopped reading */
  for (size_t i = 0; i < res->ntrailers; i++) /* grpc-status and the like */
    mc_res_trailer(req, res->trailers[i].name, res->trailers[i].value);
  return mc_res_end(req);
}

static int forward(mc_req *req, const gw_config *c, const gw_route *r,
                   const gw_claims *claims, mc_slice origin) {
  mc_arena *a = mc_req_arena(req);
  size_t given = mc_req_header_count(req);
  if (given > MAX_HEADERS)
    return refuse(req, 431, "too many headers to pass on");
  mc_header *hs = mc_arena_alloc(a, (given + 8) * sizeof *hs);
  if (!hs)
    return MC_ENOMEM;
  size_t n = 0;
  mc_slice conn = header(req, "connection");
  mc_slice xff = {0};
  for (size_t i = 0; i < given; i++) {
    mc_slice name, value;
    mc_req_header_at(req, i, &name, &value);
    unsigned kind = header_kind(name);
    if ((kind & XFF) && !xff.ptr)
      xff = value;
    if ((kind & DROP_IN) || identity_header(name, c) ||
        (conn.len && named_by_connection(conn, name)))
      continue;
    hs[n++] = (mc_header){name, value};
  }
  mc_slice peer = mc_req_peer(req);
  mc_slice fwd = peer;
  if (xff.len) { /* appended to what earlier proxies said */
    char *f = mc_arena_alloc(a, xff.len + 2 + peer.len);
    if (!f)
      return MC_ENOMEM;
    memcpy(f, xff.ptr, xff.len);
    memcpy(f + xff.len, ", ", 2);
    memcpy(f + xff.len + 2, peer.ptr, peer.len);
    fwd = (mc_slice){f, xff.len + 2 + peer.len};
  }
  hs[n++] = (mc_header){MC_LIT("X-Forwarded-For"), fwd};
  hs[n++] = (mc_header){MC_LIT("X-Forwarded-Proto"),
                        mc_req_tls(req) ? MC_LIT("https") : MC_LIT("http")};
  mc_slice host = header(req, "host");
  if (host.len)
    hs[n++] = (mc_header){MC_LIT("X-Forwarded-Host"), host};
  if (claims) {
    hs[n++] = (mc_header){c->subject_hdr, claims->subject};
    hs[n++] = (mc_header){c->scopes_hdr, claims->scopes};
  }
  bool grpc = is_grpc(req);
  if (grpc) /* gRPC's servers want to hear that trailers are welcome */
    hs[n++] = (mc_header){MC_LIT("te"), MC_LIT("trailers")};

  const char *target = upstream_target(req, r);
  if (!target)
    return MC_ENOMEM;
  /* The body: gRPC's streams both ways at once, so it is never waited
   * for; others are held when short, streamed when long. */
  body_feed feed = {.req = req};
  mc_body_source src = {feed_read, &feed,
                        declared_length(header(req, "content-length"))};
  mc_slice whole = {"", 0};
  bool streams = grpc;
  if (!grpc) {
    int err = read_ahead(req, &feed, &whole, &streams);
    if (err)
      return body_failed(req, err);
  }
  char method[16];
  mc_slice m = mc_req_method(req);
  size_t ml = m.len < 15 ? m.len : 15;
  memcpy(method, m.ptr, ml);
  method[ml] = 0;
  mc_http_response res;
  int err = mc_call_service(
      &(mc_call){.service = r->service,
                 .method = method,
                 .path = target,
                 .headers = hs,
                 .nheaders = n,
                 .body = whole,
                 .body_source = streams ? &src : NULL,
                 .stream = true,
                 .timeout_ms = r->timeout_ms,
                 .deadline_ns = mc_now_ns() + r->timeout_ms * 1000000,
                 .max_attempts = r->attempts,
                 .balancer = r->balancer,
                 .user_agent = "", /* the client's, or none */
                 .h2 = grpc},
      a, &res);
  if (err == MC_ETOOBIG) /* the client's body, past its limit */
    return body_failed(req, err);
  if (err)
    return failed(req, r, err);
  mc_slice ct = {0};
  int64_t length = -1;
  for (size_t i = 0; i < res.nheaders; i++) {
    mc_header *h = &res.headers[i];
    if (h->name.len == 12 &&
        mc_slice_eq_nocase(h->name, MC_LIT("content-type")))
      ct = h->value;
    else if (h->name.len == 14 &&
             mc_slice_eq_nocase(h->name, MC_LIT("content-length")))
      length = declared_length(h->value);
    if (header_kind(h->name) & DROP_OUT)
      continue;
    /* the gateway's own CORS answer replaces the service's */
    if (r->cors.on && h->name.len > 12 &&
        mc_slice_eq_nocase((mc_slice){h->name.ptr, 12}, MC_LIT("access-contr")))
      continue;
    /* the answer's headers live in the request's arena already */
    mc_res_header_ref(req, h->name, h->value);
  }
  if (r->cors.on && !origin.len)
    origin = request_origin(req);
  if (r->cors.on && origin.len && origin_allowed(&r->cors, origin)) {
    cors_headers(req, &r->cors, origin);
    if (r->cors.expose)
      mc_res_header(req, MC_LIT("Access-Control-Expose-Headers"),
                    mc_slice_cstr(r->cors.expose));
  }
  if (mc_slice_eq(m, MC_LIT("HEAD")))
    length = -1; /* the length of a body that does not come */
  /* (trailers come after the body over HTTP/2: those always stream) */
  err = relay(req, r, &res, ct.len ? ct : MC_LIT("application/octet-stream"),
              length, !grpc);
  mc_http_close(&res); /* from this fiber: a body source is waited for */
  return err;
}

static int route_request(mc_req *req, gw_config *c, const gw_route **rp) {
  mc_slice method = mc_req_method(req), path = mc_req_path(req);
  mc_slice origin = {0}, acrm = {0};
  bool options = mc_slice_eq(method, MC_LIT("OPTIONS"));
  if (options) {
    origin = request_origin(req);
    acrm = header(req, "access-control-request-method");
  }
  bool is_preflight = options && origin.len && acrm.len;
  const gw_route *r = mc_req_local(req, &route_key);
  if (is_preflight || !r) /* another method's, or not looked for yet */
    r = gw_route_match(c, is_preflight ? acrm : method, path,
                       header(req, "host"));
  *rp = r;
  if (r)
    mc_req_set_label(req, r->name);
  if (!r) {
    if (gw_route_path_known(c, path, header(req, "host")))
      return refuse(req, 405, "%.*s is not allowed here", MC_SLICE_ARG(method));
    return refuse(req, 404, "no route matches this path");
  }
  if (is_preflight)
    return preflight(req, r, origin);
  gw_claims claims;
  bool have_claims = false;
  if (r->auth == GW_AUTH_JWT) {
    if (authenticate(req, c, r, &claims) != 0)
      return 0;
    have_claims = true;
  }
  if (r->rate > 0) {
    mc_slice peer = mc_req_peer(req);
    bool by_sub =
        r->limit_by == GW_BY_SUBJECT && have_claims && claims.subject.len;
    mc_slice who = by_sub ? claims.subject : peer;
    const char *key = mc_arena_sprintf(mc_req_arena(req), "%s\n%c%.*s", r->name,
                                       by_sub ? 's' : 'c', MC_SLICE_ARG(who));
    double retry;
    if (key && !gw_limiter_take(gw_limiter_get(), mc_slice_cstr(key), r->rate,
                                r->burst, mc_now_ns(), &retry)) {
      ADD(r->stats->rate_limited, 1);
      char after[24];
      snprintf(after, sizeof after, "%.0f", ceil(retry < 1 ? 1 : retry));
      mc_res_header(req, MC_LIT("Retry-After"), mc_slice_cstr(after));
      return refuse(req, 429,
                    "rate limit of %g requests a second "
                    "exceeded; retry after %s s",
                    r->rate, after);
    }
  }
  return forward(req, c, r, have_claims ? &claims : NULL, origin);
}

static void observe(const gw_route *r, int status, uint64_t start_ns) {
  gw_stats *s = r->stats;
  int cls = status / 100;
  ADD(s->by_class[cls >= 1 && cls <= 5 ? cls : 0], 1);
  double secs = (double)(mc_now_ns() - start_ns) / 1e9;
  size_t b = 0;
  while (b < GW_LATENCY_BUCKETS && secs > gw_latency_bounds[b])
    b++;
  ADD(s->latency[b], 1);
  ADD(s->latency_sum_us, (uint64_t)(secs * 1e6));
}

static int proxy(mc_req *req) {
  uint64_t start = mc_now_ns();
  gw_config *c = req_config(req);
  if (!c)
    return MC_ENOMEM;
  const gw_route *r = NULL;
  int rc = route_request(req, c, &r);
  if (r && mc_res_answered(req))
    observe(r, mc_res_status(req), start);
  return rc;
}

const mc_route gw_proxy_route = {"*",
                                 "/{path...}",
                                 proxy,
                                 .hidden = true,
                                 .body_limit = body_limit,
                                 .max_body = 1u << 30,
                                 .stream_body = true};
