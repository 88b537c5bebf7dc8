/* HTTP/1.1 request reader on llhttp. See h1_reader.h. */
#include <stdlib.h>
#include <string.h>

#include "http/h1_reader.h"

/* Where the header callbacks are: llhttp's *_complete callbacks mark the
 * ends of names and values, so a value never joins the wrong name. */
enum { H_NONE, H_URL, H_FIELD, H_FIELD_DONE, H_VALUE };

/* scan_head's states. */
enum { S_START, S_LINE, S_CR, S_LINE_START, S_BLANK, S_BODY };

static mc__h1_reader *R(llhttp_t *p) {
  return p->data;
}

static int fail(mc__h1_reader *r, int status, const char *reason) {
  r->status = status;
  r->reason = reason;
  return HPE_USER;
}

static int on_message_begin(llhttp_t *p) {
  R(p)->in_message = true;
  return 0;
}

static int append_head(mc__h1_reader *r, const char *at, size_t len) {
  if (mc_buf_append(&r->head, at, len) != 0)
    return fail(r, 431, "request head too large");
  return 0;
}

/* Trailer fields after a chunked body are counted against the head's cap
 * and dropped: storing them would move the head buffer under the slices
 * handed out at MC_H1_HEAD. */
static int count_trailer(mc__h1_reader *r, size_t len) {
  if (len > r->limits.max_head - r->trailer_bytes)
    return fail(r, 431, "request trailers too large");
  r->trailer_bytes += (uint32_t)len;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  mc__h1_reader *r = R(p);
  if (r->hstate != H_URL) {
    r->target_off = (uint32_t)r->head.len;
    r->hstate = H_URL;
  }
  r->target_len += (uint32_t)len;
  return append_head(r, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  mc__h1_reader *r = R(p);
  if (r->head_done)
    return count_trailer(r, len);
  if (r->hstate != H_FIELD) {
    if (r->nheaders >= r->limits.max_headers)
      return fail(r, 431, "too many header fields");
    mc__h1_span *s = &r->spans[r->nheaders++];
    s->name_off = (uint32_t)r->head.len;
    s->name_len = 0;
    s->value_off = 0;
    s->value_len = 0;
    r->hstate = H_FIELD;
  }
  /* llhttp hands over "Host " for "Host : x"; RFC 9112 says reject. */
  if (memchr(at, ' ', len) || memchr(at, '\t', len))
    return fail(r, 400, "whitespace in a header field name");
  r->spans[r->nheaders - 1].name_len += (uint32_t)len;
  return append_head(r, at, len);
}

static int on_header_field_complete(llhttp_t *p) {
  mc__h1_reader *r = R(p);
  if (r->head_done)
    return 0;
  if (r->hstate != H_FIELD)
    return fail(r, 400, "empty header field name");
  r->hstate = H_FIELD_DONE;
  return 0;
}

/* Bytes llhttp lets through in strict mode that we still refuse in a field
 * value: controls other than horizontal tab (NUL, CR, LF, DEL...). */
static bool value_bytes_ok(const char *at, size_t len) {
  return mc_slice_is_field_value((mc_slice){at, len});
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  mc__h1_reader *r = R(p);
  if (r->head_done)
    return count_trailer(r, len);
  if (!value_bytes_ok(at, len))
    return fail(r, 400, "control character in a header value");
  mc__h1_span *s = &r->spans[r->nheaders - 1];
  if (r->hstate == H_FIELD_DONE) {
    s->value_off = (uint32_t)r->head.len;
    r->hstate = H_VALUE;
  } else if (r->hstate != H_VALUE) {
    return fail(r, 400, "header value without a name");
  }
  s->value_len += (uint32_t)len;
  return append_head(r, at, len);
}

static int on_header_value_complete(llhttp_t *p) {
  mc__h1_reader *r = R(p);
  if (!r->head_done)
    r->hstate = H_NONE;
  return 0;
}

static mc_slice trim_ows(mc_slice v) {
  while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t')) {
    v.ptr++;
    v.len--;
  }
  while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
    v.len--;
  return v;
}

static int on_headers_complete(llhttp_t *p) {
  mc__h1_reader *r = R(p);
  const char *base = r->head.ptr;
  /* One pass: the slices, and the fields that frame the message (matched
   * by length first, so most names cost one compare). */
  unsigned hosts = 0, te = 0;
  mc_slice expect = MC_SLICE_NULL;
  for (uint32_t i = 0; i < r->nheaders; i++) {
    mc__h1_span *s = &r->spans[i];
    mc_slice n = {base + s->name_off, s->name_len};
    r->headers[i].name = n;
    r->headers[i].value = trim_ows(
        (mc_slice){s->value_len ? base + s->value_off : "", s->value_len});
    switch (n.len) {
    case 4:
      hosts += mc_slice_eq_nocase(n, MC_LIT("host"));
      break;
    case 6:
      if (!expect.ptr && mc_slice_eq_nocase(n, MC_LIT("expect")))
        expect = r->headers[i].value;
      break;
    case 17:
      te += mc_slice_eq_nocase(n, MC_LIT("transfer-encoding"));
      break;
    }
  }
  r->target = (mc_slice){base ? base + r->target_off : "", r->target_len};
  r->head_done = true; /* headers may be read from here on, even on error */
  r->method = mc_slice_cstr(llhttp_method_name(p->method));
  r->http_major = p->http_major;
  r->http_minor = p->http_minor;
  if (p->http_major != 1)
    return fail(r, 505, "only HTTP/1.0 and HTTP/1.1 are spoken here");
  /* We never switch protocols: CONNECT is not ours to serve, and an
   * Upgrade header is ignored (RFC 9110 7.8) so the connection stays
   * HTTP/1.1 for the next request. */
  if (p->method == HTTP_CONNECT)
    return fail(r, 400, "CONNECT is not supported");
  p->upgrade = 0;
  r->chunked = (p->flags & F_CHUNKED) != 0;
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > INT64_MAX)
    return fail(r, 413, "request body too large");
  r->content_length =
      (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
  /* Any Transfer-Encoding, even an empty one, must end in chunked and
   * never come with a Content-Length: the two framings disagree. */
  if (te) {
    if (!r->chunked)
      return fail(r, 400, "Transfer-Encoding without chunked");
    if (r->content_length >= 0)
      return fail(r, 400, "Content-Length together with Transfer-Encoding");
  }
  if (r->chunked && r->http_minor == 0)
    return fail(r, 400, "chunked transfer coding is not HTTP/1.0");
  if (expect.ptr) {
    if (!mc_slice_eq_nocase(expect, MC_LIT("100-continue")))
      return fail(r, 417, "only Expect: 100-continue is supported");
    r->expect_continue = r->http_minor >= 1;
  }
  if (r->target.len == 0)
    return fail(r, 400, "empty request target");
  /* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one in 1.0. */
  if (hosts > 1)
    return fail(r, 400, "more than one Host header");
  if (hosts == 0 && r->http_minor >= 1)
    return fail(r, 400, "HTTP/1.1 requests need a Host header");
  r->event = MC_H1_HEAD;
  return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  mc__h1_reader *r = R(p);
  if (r->stream) {
    if (len > r->body_limit - r->body_total || r->body_total > r->body_limit)
      return fail(r, 413, "request body too large");
    r->body_total += len;
    return mc_buf_append(&r->body, at, len) == 0
               ? 0
               : fail(r, 413, "request body too large");
  }
  if (len > r->body_limit - r->body.len || r->body.len > r->body_limit)
    return fail(r, 413, "request body too large");
  if (mc_buf_append(&r->body, at, len) != 0)
    return fail(r, 413, "request body too large");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  R(p)->event = MC_H1_DONE;
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int mc__h1_reader_init(mc__h1_reader *r, const mc__h1_limits *limits) {
  memset(r, 0, sizeof *r);
  r->limits = *limits;
  r->spans = malloc(sizeof(mc__h1_span) * limits->max_headers);
  r->headers = malloc(sizeof(mc__h1_header) * limits->max_headers);
  if (!r->spans || !r->headers) {
    mc__h1_reader_free(r);
    return MC_ENOMEM;
  }
  llhttp_init(&r->parser, HTTP_REQUEST, &settings);
  r->parser.data = r;
  mc_buf_init(&r->head, limits->max_head);
  mc_buf_init(&r->body, 0);
  r->content_length = -1;
  return 0;
}

void mc__h1_reader_free(mc__h1_reader *r) {
  free(r->spans);
  free(r->headers);
  mc_buf_free(&r->head);
  mc_buf_free(&r->body);
  r->spans = NULL;
  r->headers = NULL;
}

/* llhttp's error codes, mapped to the status a client should see. */
static mc__h1_event parse_error(mc__h1_reader *r, llhttp_errno_t e) {
  if (r->status)
    return MC_H1_ERROR; /* set by one of our callbacks */
  r->status = 400;
  switch (e) {
  case HPE_INVALID_METHOD:
    r->reason = "invalid request method";
    break;
  case HPE_INVALID_VERSION:
    r->status = 505;
    r->reason = "unsupported HTTP version";
    break;

  case HPE_INVALID_CHUNK_SIZE:
    r->reason = "invalid chunk size";
    break;
  case HPE_INVALID_CONTENT_LENGTH:
    r->reason = "invalid or conflicting Content-Length";
    break;
  case HPE_INVALID_TRANSFER_ENCODING:
    r->reason = "invalid Transfer-Encoding";
    break;
  case HPE_INVALID_HEADER_TOKEN:
    r->reason = "invalid character in a header field";
    break;
  default:
    r->reason = llhttp_get_error_reason(&r->parser);
    if (!r->reason || !*r->reason)
      r->reason = llhttp_errno_name(e);
    break;
  }
  return MC_H1_ERROR;
}

/* Looks at the raw bytes of the head before llhttp does, for what llhttp
 * would fold away or let through however the bytes are split across
 * reads: a line that starts with whitespace (obs-fold, or whitespace before
 * the first field) or with a colon (an empty field name). It stops at the
 * blank line that ends the head. */
static int scan_head(mc__h1_reader *r, const char *data, size_t len) {
  for (size_t i = 0; i < len && r->scan != S_BODY; i++) {
    char c = data[i];
    switch (r->scan) {
    case S_START: /* empty lines before a request line are allowed */
      if (c != '\r' && c != '\n')
        r->scan = S_LINE;
      break;
    case S_LINE: {
      /* The rest of a line matters only for its end: let memchr find it.
       * A CR may only come right before it: llhttp may take a bare one
       * (RFC 9112 §2.2) for the end of a line or of the head where this
       * scan, and a reader cut at other places, would not. */
      const char *nl = memchr(data + i, '\n', len - i);
      size_t end = nl ? (size_t)(nl - data) : len;
      const char *cr = memchr(data + i, '\r', end - i);
      if (cr && (size_t)(cr - data) != end - 1)
        return fail(r, 400, "bare CR in the request head");
      if (!nl) {
        if (cr)
          r->scan = S_CR; /* its LF comes in the next read */
        return 0;
      }
      i = end;
      r->scan = S_LINE_START;
      break;
    }
    case S_CR:
      if (c != '\n')
        return fail(r, 400, "bare CR in the request head");
      r->scan = S_LINE_START;
      break;
    case S_LINE_START:
      if (c == ' ' || c == '\t')
        return fail(r, 400, "obsolete line folding in the request head");
      if (c == ':')
        return fail(r, 400, "empty header field name");
      r->scan = c == '\r' ? S_BLANK : c == '\n' ? S_BODY : S_LINE;
      break;
    case S_BLANK:
      if (c != '\n') /* a bare CR, as in S_LINE */
        return fail(r, 400, "bare CR in the request head");
      r->scan = S_BODY;
      break;
    }
  }
  return 0;
}

mc__h1_event mc__h1_reader_feed(mc__h1_reader *r, const char *data, size_t len,
                                size_t *used) {
  if (!data)
    data = "";
  r->event = MC_H1_MORE;
  r->status = 0;
  if (r->scan != S_BODY && scan_head(r, data, len) != 0) {
    *used = len;
    return MC_H1_ERROR;
  }
  llhttp_errno_t e = llhttp_execute(&r->parser, data, len);
  if (e == HPE_OK) {
    *used = len;
    return MC_H1_MORE;
  }
  if (e == HPE_PAUSED) {
    const char *pos = llhttp_get_error_pos(&r->parser);
    *used = pos ? (size_t)(pos - data) : len;
    llhttp_resume(&r->parser);
    return r->event;
  }
  *used = len;
  return parse_error(r, e);
}

void mc__h1_reader_next(mc__h1_reader *r) {
  mc_buf_reset(&r->head);
  mc_buf_reset(&r->body);
  if (r->body.cap > 64 * 1024)
    mc_buf_free(&r->body); /* do not keep a large body's memory around */
  r->target_off = r->target_len = 0;
  r->nheaders = 0;
  r->hstate = H_NONE;
  r->scan = S_START;
  r->trailer_bytes = 0;
  r->content_length = -1;
  r->chunked = false;
  r->expect_continue = false;
  r->body_limit = 0;
  r->stream = false;
  r->body_total = 0;
  r->in_message = false;
  r->head_done = false;
  r->method = MC_SLICE_NULL;
  r->target = MC_SLICE_NULL;
}

bool mc__h1_reader_keep_alive(const mc__h1_reader *r) {
  return llhttp_should_keep_alive(&r->parser) != 0;
}

mc_slice mc__h1_reader_header(const mc__h1_reader *r, mc_slice name) {
  if (!r->head_done)
    return MC_SLICE_NULL;
  for (uint32_t i = 0; i < r->nheaders; i++)
    if (r->headers[i].name.len == name.len &&
        mc_slice_eq_nocase(r->headers[i].name, name))
      return r->headers[i].value;
  return MC_SLICE_NULL;
}
