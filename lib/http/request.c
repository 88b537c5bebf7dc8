/* What happens to a request between its head and its answer: routing,
 * validation, middleware, the handler, and turning the answer into bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/server_int.h"
#include "microc/log.h"

/* ---- status codes ----------------------------------------------------- */

#define MC__STATUS_MAP(X)                                                      \
  X(100, "Continue")                                                           \
  X(101, "Switching Protocols")                                                \
  X(200, "OK")                                                                 \
  X(201, "Created")                                                            \
  X(202, "Accepted")                                                           \
  X(204, "No Content")                                                         \
  X(206, "Partial Content")                                                    \
  X(301, "Moved Permanently")                                                  \
  X(302, "Found")                                                              \
  X(303, "See Other")                                                          \
  X(304, "Not Modified")                                                       \
  X(307, "Temporary Redirect")                                                 \
  X(308, "Permanent Redirect")                                                 \
  X(400, "Bad Request")                                                        \
  X(401, "Unauthorized")                                                       \
  X(402, "Payment Required")                                                   \
  X(403, "Forbidden")                                                          \
  X(404, "Not Found")                                                          \
  X(405, "Method Not Allowed")                                                 \
  X(406, "Not Acceptable")                                                     \
  X(408, "Request Timeout")                                                    \
  X(409, "Conflict")                                                           \
  X(410, "Gone")                                                               \
  X(411, "Length Required")                                                    \
  X(412, "Precondition Failed")                                                \
  X(413, "Content Too Large")                                                  \
  X(414, "URI Too Long")                                                       \
  X(415, "Unsupported Media Type")                                             \
  X(417, "Expectation Failed")                                                 \
  X(422, "Unprocessable Content")                                              \
  X(425, "Too Early")                                                          \
  X(428, "Precondition Required")                                              \
  X(429, "Too Many Requests")                                                  \
  X(431, "Request Header Fields Too Large")                                    \
  X(500, "Internal Server Error")                                              \
  X(501, "Not Implemented")                                                    \
  X(502, "Bad Gateway")                                                        \
  X(503, "Service Unavailable")                                                \
  X(504, "Gateway Timeout")                                                    \
  X(505, "HTTP Version Not Supported")

const char *mc_http_reason(int status) {
  switch (status) {
#define MC__REASON(code, text)                                                 \
  case code:                                                                   \
    return text;
    MC__STATUS_MAP(MC__REASON)
#undef MC__REASON
  }
  return "Unknown";
}

/* ---- lifecycle -------------------------------------------------------- */

void mc__req_init(mc__conn *c) {
  mc_req *req = &c->req;
  memset(req, 0, sizeof *req);
  req->conn = c;
  req->worker = c->w;
  req->app = c->w->srv->app;
  req->arena = c->arena;
  req->rd = &c->rd;
  req->body = &c->res_body;
  req->taken = &c->body_taken;
}

void mc__req_reset(mc__conn *c) {
  mc_arena_reset(c->arena);
  mc_buf_reset(&c->out);
  mc_buf_reset(&c->res_body);
  if (c->res_body.cap > 256 * 1024)
    mc_buf_free(&c->res_body); /* do not keep a large answer's memory */
  mc_buf_reset(&c->body_taken);
  if (c->body_taken.cap > 256 * 1024)
    mc_buf_free(&c->body_taken);
  mc__req_init(c);
}

static void split_target(mc_req *req) {
  mc_slice t = req->rd->target;
  /* absolute-form (a proxy's request line): skip scheme and authority */
  if (t.len > 7 && (mc_slice_starts_with(t, MC_LIT("http://")) ||
                    mc_slice_starts_with(t, MC_LIT("https://")))) {
    const char *p = memchr(t.ptr + 8, '/', t.len - 8);
    t = p ? (mc_slice){p, t.len - (size_t)(p - t.ptr)} : MC_LIT("/");
  }
  const char *q = memchr(t.ptr, '?', t.len);
  if (q) {
    req->path = (mc_slice){t.ptr, (size_t)(q - t.ptr)};
    req->query = (mc_slice){q + 1, t.len - req->path.len - 1};
  } else {
    req->path = t;
    req->query = MC_SLICE_NULL;
  }
  const char *h = memchr(req->path.ptr, '#', req->path.len);
  if (h)
    req->path.len = (size_t)(h - req->path.ptr);
}

size_t mc__req_on_head(mc_req *req) {
  mc__h1_reader *rd = req->rd;
  const mc__config *cfg = &req->app->cfg;
  split_target(req);
  req->method_index = mc__method_index(rd->method);
  req->is_head = req->method_index == MC__M_HEAD;
  mc__router_match(&req->app->router, rd->method, req->path, &req->match);
  size_t limit = cfg->max_body;
  const mc_route *route = req->match.entry ? req->match.entry->route : NULL;
  if (route && route->max_body)
    limit = route->max_body;
  if (route && route->body_limit) {
    size_t l = route->body_limit(req);
    if (l)
      limit = l;
  }
  return limit;
}

int mc__conn_on_head(mc__conn *c) {
  mc_req *req = &c->req;
  mc__h1_reader *rd = &c->rd;
  size_t limit = mc__req_on_head(req);
  if (rd->content_length > 0 && (uint64_t)rd->content_length > limit) {
    /* Refuse before reading a byte of it. */
    mc__conn_fail(c, 413, "request body too large");
    return -1;
  }
  rd->body_limit = limit;
  if (rd->body.limit == 0 || rd->body.limit > limit)
    rd->body.limit = limit;
  if (rd->expect_continue && (rd->chunked || rd->content_length > 0)) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (mc__conn_send_raw(c, cont, sizeof cont - 1) != 0) {
      mc__conn_fail(c, 500, "could not send 100 Continue");
      return -1;
    }
  }
  return 0;
}

/* A request id from the client is kept when it is short and printable. */
static void set_request_id(mc_req *req) {
  mc_slice h = mc__h1_reader_header(req->rd, MC_LIT("x-request-id"));
  bool ok = h.len > 0 && h.len < sizeof req->request_id;
  /* visible ASCII but the quote and backslash (it goes into JSON logs as
   * is), without a branch a byte */
  unsigned bad = 0;
  for (size_t i = 0; ok && i < h.len; i++) {
    unsigned char c = (unsigned char)h.ptr[i];
    bad |= (c <= 0x20) | (c >= 0x7f) | (c == '"') | (c == '\\');
  }
  ok = ok && !bad;
  if (ok) {
    memcpy(req->request_id, h.ptr, h.len);
    req->request_id_len = h.len;
  } else {
    mc_rand_hex(req->request_id, 16);
    req->request_id_len = 32;
  }
  req->request_id[req->request_id_len] = 0;
}

void mc__req_begin(mc__conn *c) {
  mc__req_begin_req(&c->req);
}

void mc__req_begin_req(mc_req *req) {
  set_request_id(req);
  mc__trace_begin(mc__h1_reader_header(req->rd, MC_LIT("traceparent")),
                  &req->trace);
}

/* ---- serializing ------------------------------------------------------ */

bool mc__status_has_body(int status) {
  return !(status < 200 || status == 204 || status == 304);
}

/* The status line and headers of an HTTP/1.x answer, into c->out. length:
 * the body's (Content-Length), or -1 for chunked, or -2 for none. */
static void h1_head(mc__conn *c, bool keep, int64_t length) {
  mc_req *req = &c->req;
  mc__worker *w = c->w;
  int status = req->status;
  mc_buf *o = &c->out;
  mc_buf_reset(o);
  char traceparent[56];
  mc__trace_format(&req->trace, traceparent);
  /* the hottest lines of the server: plain appends, no printf */
  mc_buf_append(o, "HTTP/1.1 ", 9);
  mc_buf_append_u64(o, (uint64_t)status);
  mc_buf_append_char(o, ' ');
  mc_buf_append_cstr(o, mc_http_reason(status));
  mc_buf_append_cstr(o, "\r\nServer: microc\r\nDate: ");
  mc_buf_append(o, w->date, w->date_len);
  if (mc__status_has_body(status)) {
    mc_buf_append_cstr(o, "\r\nContent-Type: ");
    mc_buf_append_slice(o, req->content_type);
    if (length >= 0) {
      mc_buf_append_cstr(o, "\r\nContent-Length: ");
      mc_buf_append_u64(o, (uint64_t)length);
    } else if (length == -1) {
      mc_buf_append_cstr(o, "\r\nTransfer-Encoding: chunked");
    }
  }
  mc_buf_append_cstr(o, "\r\nX-Request-Id: ");
  mc_buf_append(o, req->request_id, req->request_id_len);
  mc_buf_append_cstr(o, "\r\ntraceparent: ");
  mc_buf_append(o, traceparent, 55);
  mc_buf_append(o, "\r\n", 2);
  for (mc__res_header *h = req->headers; h; h = h->next) {
    mc_buf_append_slice(o, h->name);
    mc_buf_append(o, ": ", 2);
    mc_buf_append_slice(o, h->value);
    mc_buf_append(o, "\r\n", 2);
  }
  if (!keep)
    mc_buf_append_cstr(o, "Connection: close\r\n");
  else if (c->rd.http_minor == 0)
    mc_buf_append_cstr(o, "Connection: keep-alive\r\n");
  mc_buf_append_cstr(o, "\r\n");
}

/* Whether the connection may serve another request after this one. */
static bool h1_keep(mc__conn *c) {
  mc_req *req = &c->req;
  return !c->close_after && !c->w->draining &&
         mc__h1_reader_keep_alive(&c->rd) &&
         !(req->stream_in && !req->body_done); /* the rest of it unread */
}

void mc__conn_respond(mc__conn *c) {
  mc_req *req = &c->req;
  uint64_t dur = mc_now_ns() - req->start_ns;
  if (req->streamed) {
    if (!req->ended)
      c->close_after = true; /* cut short: the close tells the client */
    mc__req_observe(req, dur);
    mc__conn_stream_done(c);
    return;
  }
  if (!req->answered)
    mc_res_problem(req, 500, "the handler returned without answering");
  bool keep = h1_keep(c);
  c->close_after = !keep;
  h1_head(c, keep, (int64_t)c->res_body.len);
  mc__req_observe(req, dur);
  mc__conn_write(c, req->is_head || !mc__status_has_body(req->status));
}

void mc__req_observe(mc_req *req, uint64_t dur) {
  mc_app *app = req->app;
  int status = req->status;
  mc__metrics_observe(req, dur);
  if (app->cfg.access_log && mc_log_enabled(MC_LOG_INFO)) {
    const mc__route_entry *e = req->match.entry;
    mc_log_field f[] = {
        MC_LOG_STR("method", req->rd->method),
        MC_LOG_CSTR("route", req->label ? req->label
                             : e        ? e->route->path
                                        : ""),
        MC_LOG_STR("path", req->path),
        MC_LOG_INT("status", status),
        MC_LOG_NUM("duration_ms", (double)dur / 1e6),
        MC_LOG_STR("request_id",
                   ((mc_slice){req->request_id, req->request_id_len})),
    };
    mc_log_write(MC_LOG_INFO, (mc_slice){req->trace.trace_id, 32}, "request", f,
                 MC_COUNT(f));
  }
}

void mc__conn_fail(mc__conn *c, int status, const char *detail) {
  mc_req *req = &c->req;
  if (c->state == C_CLOSED)
    return;
  if (!req->start_ns)
    req->start_ns = mc_now_ns();
  if (!req->path.ptr)
    req->path = MC_LIT("");
  mc__req_begin(c);
  c->close_after = true;
  req->answered = false;
  mc_buf_reset(&c->res_body);
  req->headers = NULL;
  mc_res_problem(req, status, detail);
  c->state = C_BUSY;
  uv_timer_stop(&c->timer);
  mc__conn_respond(c);
}

/* ---- the pipeline, on the request's fiber ------------------------------ */

static int allow_header(mc_req *req) {
  char buf[80];
  size_t n = 0;
  for (int i = 0; i < MC__M_OTHER; i++)
    if (req->match.allow_mask & (1u << i))
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "",
                            mc__method_names[i]);
  return mc_res_header(req, MC_LIT("Allow"), (mc_slice){buf, n});
}

static int parse_query(mc_req *req) {
  if (req->query_parsed)
    return 0;
  req->query_parsed = true;
  size_t n = 0;
  for (size_t i = 0; i < req->query.len; i++)
    n += req->query.ptr[i] == '&';
  n++;
  req->qkeys = mc_arena_alloc(req->arena, n * sizeof(mc_slice));
  req->qvals = mc_arena_alloc(req->arena, n * sizeof(mc_slice));
  if (!req->qkeys || !req->qvals)
    return MC_ENOMEM;
  const char *p = req->query.ptr, *end = p + req->query.len;
  while (p && p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *e = amp ? amp : end;
    if (e > p) {
      const char *eq = memchr(p, '=', (size_t)(e - p));
      mc_slice k = {p, (size_t)((eq ? eq : e) - p)};
      mc_slice v = eq ? (mc_slice){eq + 1, (size_t)(e - eq - 1)} : MC_LIT("");
      if (mc__percent_decode(req->arena, k, true, &req->qkeys[req->nq]) == 0 &&
          mc__percent_decode(req->arena, v, true, &req->qvals[req->nq]) == 0)
        req->nq++;
    }
    p = amp ? amp + 1 : NULL;
  }
  return 0;
}

static int decode_params(mc_req *req) {
  if (req->params_decoded)
    return 0;
  req->params_decoded = true;
  for (uint32_t i = 0; i < req->match.nparams; i++)
    if (mc__percent_decode(req->arena, req->match.raw_values[i], false,
                           &req->param_values[i]) != 0)
      return MC_EPARSE;
  return 0;
}

static bool is_json_type(mc_slice ct) {
  const char *semi = memchr(ct.ptr, ';', ct.len);
  if (semi)
    ct.len = (size_t)(semi - ct.ptr);
  while (ct.len && ct.ptr[ct.len - 1] == ' ')
    ct.len--;
  if (mc_slice_eq_nocase(ct, MC_LIT("application/json")))
    return true;
  return ct.len > 5 && mc_slice_eq_nocase((mc_slice){ct.ptr + ct.len - 5, 5},
                                          MC_LIT("+json"));
}

/* Decodes path, query and body as the route declares; answers 400/415/422
 * and returns nonzero when they do not fit. */
static int validate(mc_req *req) {
  const mc_route *r = req->match.entry->route;
  mc_model_errors errs;
  mc_model_errors_init(&errs, req->arena);
  if (decode_params(req) != 0)
    return mc_res_problem(req, 400, "malformed percent-encoding in the path"),
           1;
  if (r->params) {
    req->params_obj = mc_arena_calloc(req->arena, r->params->size);
    if (!req->params_obj)
      return mc_res_problem(req, 500, "out of memory"), 1;
    mc_model_decode_pairs(r->params, req->match.names, req->param_values,
                          req->match.nparams, req->arena, "path",
                          req->params_obj, &errs);
  }
  if (r->query) {
    if (parse_query(req) != 0)
      return mc_res_problem(req, 500, "out of memory"), 1;
    req->query_obj = mc_arena_calloc(req->arena, r->query->size);
    if (!req->query_obj)
      return mc_res_problem(req, 500, "out of memory"), 1;
    mc_model_decode_pairs(r->query, req->qkeys, req->qvals, req->nq, req->arena,
                          "query", req->query_obj, &errs);
  }
  if (r->body) {
    mc_slice ct = mc__h1_reader_header(req->rd, MC_LIT("content-type"));
    mc_slice body = mc_buf_slice(&req->rd->body);
    if (ct.len && !is_json_type(ct))
      return mc_res_problem(req, 415, "the body must be application/json"), 1;
    if (body.len == 0) {
      mc_model_errors_add(&errs, "[\"body\"]", "Field required", "missing");
    } else {
      int err = mc_model_decode_json(r->body, body, req->arena, "body",
                                     &req->body_obj, &errs);
      if (err == MC_EPARSE || err == MC_ETOOBIG)
        return mc__res_problem_errors(req, 400, "the body is not valid JSON",
                                      &errs),
               1;
    }
  }
  if (errs.len)
    return mc__res_problem_errors(req, 422,
                                  "the request does not fit the "
                                  "declared model",
                                  &errs),
           1;
  return 0;
}

void mc__req_run(mc_req *req) {
  mc_app *app = req->app;
  size_t ran = 0;
  for (; ran < app->nmw; ran++) {
    const mc_middleware *mw = app->mw[ran];
    if (mw->before && mw->before(req, mw->ud) != 0) {
      ran++;
      goto after;
    }
  }
  if (!req->match.entry) {
    if (req->match.path_matched && req->method_index == MC__M_OPTIONS) {
      allow_header(req);
      mc_res_send(req, 204, MC_LIT("text/plain"), MC_LIT(""));
    } else if (req->match.path_matched) {
      allow_header(req);
      mc_res_problemf(req, 405, "%.*s is not allowed here; see Allow",
                      MC_SLICE_ARG(req->rd->method));
    } else {
      mc_res_problem(req, 404, "no route matches this path");
    }
  } else if (validate(req) == 0) {
    int rc = req->match.entry->route->handler(req);
    if (!req->answered) {
      if (rc == MC_ECANCELED)
        mc_res_problem(req, 503, "the server is shutting down");
      else if (rc < 0)
        mc_res_problemf(req, 500, "the handler failed: %s", mc_strerror(rc));
      else
        mc_res_problem(req, 500, "the handler returned without answering");
    }
  }
after:
  while (ran > 0) {
    const mc_middleware *mw = app->mw[--ran];
    if (mw->after)
      mw->after(req, mw->ud);
  }
}

mc_req *mc__req_current(void) {
  mc_fiber *f = mc_fiber_current();
  return f ? mc__fiber_data(f) : NULL;
}

/* A handler's outbound calls have --request-timeout in all, or less when
 * the caller says it will wait less (X-Request-Timeout-Ms). */
uint64_t mc__req_deadline(mc_req *req) {
  uint64_t ms = req->app->cfg.request_timeout_ms;
  int64_t given;
  mc_slice h = mc__h1_reader_header(req->rd, MC_LIT("x-request-timeout-ms"));
  if (h.len && mc_slice_to_i64(h, &given) == 0 && given >= 0 &&
      (!ms || (uint64_t)given < ms))
    ms = (uint64_t)given;
  return ms ? req->start_ns + ms * 1000000u : 0;
}

/* ---- accessors ---------------------------------------------------------- */

mc_slice mc_req_method(const mc_req *req) {
  return req->rd->method;
}
mc_slice mc_req_path(const mc_req *req) {
  return req->path;
}
mc_slice mc_req_query_string(const mc_req *req) {
  return req->query;
}
mc_slice mc_req_header(const mc_req *req, mc_slice name) {
  return mc__h1_reader_header(req->rd, name);
}
size_t mc_req_header_count(const mc_req *req) {
  return req->rd->nheaders;
}

void mc_req_header_at(const mc_req *req, size_t i, mc_slice *name,
                      mc_slice *value) {
  *name = req->rd->headers[i].name;
  *value = req->rd->headers[i].value;
}

mc_slice mc_req_peer(mc_req *req) {
  mc__conn *c = req->conn;
  if (!c->peer_len) { /* once a connection: a syscall saved a request */
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char text[INET6_ADDRSTRLEN] = "";
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
      if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, text, sizeof text);
      else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, text, sizeof text);
    }
    size_t n = strlen(text);
    if (n >= sizeof c->peer)
      n = 0;
    memcpy(c->peer, text, n);
    c->peer_len = (uint8_t)n;
  }
  return (mc_slice){c->peer, c->peer_len};
}

bool mc_req_tls(const mc_req *req) {
  return req->conn->tls != NULL;
}

void mc_req_set_label(mc_req *req, const char *label) {
  req->label = label;
}

mc_slice mc_req_body_raw(const mc_req *req) {
  return mc_buf_slice(&req->rd->body);
}
const void *mc_req_params(const mc_req *req) {
  return req->params_obj;
}
const void *mc_req_query(const mc_req *req) {
  return req->query_obj;
}
const void *mc_req_body(const mc_req *req) {
  return req->body_obj;
}
mc_arena *mc_req_arena(mc_req *req) {
  return req->arena;
}
const mc_route *mc_req_route(const mc_req *req) {
  return req->match.entry ? req->match.entry->route : NULL;
}
mc_slice mc_req_id(const mc_req *req) {
  return (mc_slice){req->request_id, req->request_id_len};
}
mc_slice mc_req_trace_id(const mc_req *req) {
  return (mc_slice){req->trace.trace_id, 32};
}

mc_slice mc_req_param(const mc_req *req, const char *name) {
  mc_req *r = (mc_req *)req;
  if (decode_params(r) != 0)
    return MC_SLICE_NULL;
  mc_slice n = mc_slice_cstr(name);
  for (uint32_t i = 0; i < req->match.nparams; i++)
    if (mc_slice_eq(req->match.names[i], n))
      return req->param_values[i];
  return MC_SLICE_NULL;
}

mc_slice mc_req_query_param(mc_req *req, const char *name) {
  if (parse_query(req) != 0)
    return MC_SLICE_NULL;
  mc_slice n = mc_slice_cstr(name);
  for (size_t i = 0; i < req->nq; i++)
    if (mc_slice_eq(req->qkeys[i], n))
      return req->qvals[i];
  return MC_SLICE_NULL;
}

size_t mc_req_query_all(mc_req *req, const char *name, mc_slice *out,
                        size_t max) {
  if (parse_query(req) != 0)
    return 0;
  mc_slice n = mc_slice_cstr(name);
  size_t count = 0;
  for (size_t i = 0; i < req->nq; i++)
    if (mc_slice_eq(req->qkeys[i], n)) {
      if (count < max)
        out[count] = req->qvals[i];
      count++;
    }
  return count;
}

void mc_req_set_local(mc_req *req, const void *key, void *value) {
  for (size_t i = 0; i < req->nlocals; i++)
    if (req->locals[i].key == key) {
      req->locals[i].value = value;
      return;
    }
  if (req->nlocals < MC__MAX_MIDDLEWARE)
    req->locals[req->nlocals++] = (mc__local){key, value};
}

void *mc_req_local(const mc_req *req, const void *key) {
  for (size_t i = 0; i < req->nlocals; i++)
    if (req->locals[i].key == key)
      return req->locals[i].value;
  return NULL;
}

/* ---- answers ------------------------------------------------------------ */

static int begin_answer(mc_req *req, int status, mc_slice content_type) {
  if (req->answered)
    return MC_ESTATE;
  if (status < 100 || status > 599)
    return MC_EINVAL;
  mc_buf_reset(req->body);
  req->status = status;
  req->content_type = content_type;
  return 0;
}

int mc_res_send(mc_req *req, int status, mc_slice content_type, mc_slice body) {
  int err = begin_answer(req, status, content_type);
  if (err)
    return err;
  if ((err = mc_buf_append_slice(req->body, body)))
    return err;
  req->answered = true;
  return 0;
}

int mc_res_json(mc_req *req, int status, mc_slice json) {
  return mc_res_send(req, status, MC_LIT("application/json"), json);
}

int mc_res_model(mc_req *req, int status, const mc_model *m, const void *obj) {
  int err = begin_answer(req, status, MC_LIT("application/json"));
  if (err)
    return err;
  if ((err = mc_model_encode_json(m, obj, req->body))) {
    mc_buf_reset(req->body);
    return err;
  }
  req->answered = true;
  return 0;
}

int mc__res_problem_errors(mc_req *req, int status, const char *detail,
                           const mc_model_errors *errs) {
  int err = begin_answer(req, status, MC_LIT("application/problem+json"));
  if (err)
    return err;
  mc_buf *b = req->body;
  const char *title = mc_http_reason(status);
  mc_buf_appendf(b, "{\"type\":\"about:blank\",\"title\":\"%s\",\"status\":%d",
                 title, status);
  if (detail) {
    mc_buf_append_cstr(b, ",\"detail\":");
    mc_buf_append_json_str(b, detail, strlen(detail));
  }
  mc_buf_append_cstr(b, ",\"instance\":");
  mc_buf_append_json_str(b, req->path.ptr ? req->path.ptr : "", req->path.len);
  mc_buf_append_cstr(b, ",\"request_id\":");
  mc_buf_append_json_str(b, req->request_id, req->request_id_len);
  if (errs && errs->len) {
    mc_buf_append_cstr(b, ",\"errors\":");
    mc_model_errors_json(errs, b);
  }
  err = mc_buf_append_char(b, '}');
  if (err) {
    mc_buf_reset(b);
    return err;
  }
  req->answered = true;
  return 0;
}

int mc_res_problem(mc_req *req, int status, const char *detail) {
  return mc__res_problem_errors(req, status, detail, NULL);
}

int mc_res_problemf(mc_req *req, int status, const char *fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  return mc_res_problem(req, status, detail);
}

static int add_field(mc_req *req, mc__res_header **list, mc_slice name,
                     mc_slice value, bool copy) {
  /* CR and LF would split the header: refuse them rather than inject. */
  if (memchr(name.ptr, '\r', name.len) || memchr(name.ptr, '\n', name.len) ||
      memchr(value.ptr, '\r', value.len) ||
      memchr(value.ptr, '\n', value.len) || name.len == 0)
    return MC_EINVAL;
  mc__res_header *h = mc_arena_alloc(req->arena, sizeof *h);
  if (!h)
    return MC_ENOMEM;
  h->name = name;
  h->value = value;
  if (copy) {
    char *n = mc_arena_strndup(req->arena, name.ptr, name.len);
    char *v = mc_arena_strndup(req->arena, value.ptr, value.len);
    if (!n || !v)
      return MC_ENOMEM;
    h->name = (mc_slice){n, name.len};
    h->value = (mc_slice){v, value.len};
  }
  h->next = NULL;
  mc__res_header **tail = list;
  while (*tail)
    tail = &(*tail)->next;
  *tail = h;
  return 0;
}

int mc_res_header(mc_req *req, mc_slice name, mc_slice value) {
  return add_field(req, &req->headers, name, value, true);
}

int mc_res_header_ref(mc_req *req, mc_slice name, mc_slice value) {
  return add_field(req, &req->headers, name, value, false);
}

int mc_res_trailer(mc_req *req, mc_slice name, mc_slice value) {
  return add_field(req, &req->trailers, name, value, true);
}

/* ---- bodies and answers in pieces ---------------------------------------- */

static bool on_h2(const mc_req *req) {
  return req->rd->http_major == 2;
}

int mc_req_body_read(mc_req *req, mc_slice *chunk) {
  *chunk = (mc_slice){"", 0};
  if (!req->stream_in) { /* read whole before the handler ran */
    if (!req->body_given) {
      req->body_given = true;
      *chunk = (mc_slice){req->rd->body.ptr ? req->rd->body.ptr : "",
                          req->rd->body.len};
    }
    return 0;
  }
  mc_buf_reset(req->taken);
  mc__h1_reader *rd = req->rd;
  while (!rd->body.len) {
    if (req->body_err)
      return req->body_err;
    if (req->body_done)
      return 0;
    int err = mc_waitq_wait(&req->body_wait, MC_WAIT_FOREVER);
    if (err)
      return err;
  }
  /* hand the filled buffer over and fill the other one meanwhile */
  mc_buf t = *req->taken;
  *req->taken = rd->body;
  rd->body = t;
  *chunk = (mc_slice){req->taken->ptr, req->taken->len};
  if (on_h2(req))
    mc__h2_body_taken(req, chunk->len);
  else
    mc__conn_body_taken(req->conn);
  return 0;
}

int mc_res_begin(mc_req *req, int status, mc_slice content_type,
                 int64_t length) {
  if (req->answered)
    return MC_ESTATE;
  if (status < 200 || status > 599 || length < -1)
    return MC_EINVAL;
  req->status = status;
  req->content_type = content_type;
  req->answered = req->streamed = true;
  req->res_length = length;
  if (on_h2(req))
    return mc__h2_res_begin(req);
  mc__conn *c = req->conn;
  int64_t framing = length; /* see h1_head */
  if (!mc__status_has_body(status) || req->is_head) {
    framing = -2;
  } else if (length < 0 && c->rd.http_minor == 0) {
    framing = -2; /* HTTP/1.0: the close ends the body */
    c->close_after = true;
  } else if (length < 0) {
    req->chunked = true;
  }
  bool keep = h1_keep(c);
  c->close_after = !keep;
  h1_head(c, keep, framing);
  return mc__conn_stream_send(c, c->out.ptr, c->out.len);
}

int mc_res_write(mc_req *req, mc_slice data) {
  if (!req->streamed || req->ended)
    return MC_ESTATE;
  if (req->res_length >= 0 &&
      data.len > (uint64_t)req->res_length - req->res_sent)
    return MC_EINVAL;
  req->res_sent += data.len;
  if (!data.len || req->is_head || !mc__status_has_body(req->status))
    return 0;
  if (on_h2(req))
    return mc__h2_res_write(req, data);
  mc__conn *c = req->conn;
  int err;
  if (req->chunked) {
    char size[24];
    int n = snprintf(size, sizeof size, "%zx\r\n", data.len);
    if ((err = mc__conn_stream_send(c, size, (size_t)n)) ||
        (err = mc__conn_stream_send(c, data.ptr, data.len)) ||
        (err = mc__conn_stream_send(c, "\r\n", 2)))
      return err;
  } else if ((err = mc__conn_stream_send(c, data.ptr, data.len))) {
    return err;
  }
  return mc__conn_stream_room(c, 256 * 1024);
}

int mc_res_end(mc_req *req) {
  if (!req->streamed || req->ended)
    return MC_ESTATE;
  if (req->res_length >= 0 && req->res_sent < (uint64_t)req->res_length)
    return MC_EINVAL; /* short: the handler's return cuts it off */
  req->ended = true;
  if (on_h2(req))
    return mc__h2_res_end(req);
  if (req->chunked)
    return mc__conn_stream_send(req->conn, "0\r\n\r\n", 5);
  return 0;
}

int mc_req_http_version(const mc_req *req) {
  return req->rd->http_major == 2 ? 2 : 1;
}

bool mc_res_answered(const mc_req *req) {
  return req->answered;
}
int mc_res_status(const mc_req *req) {
  return req->status;
}
