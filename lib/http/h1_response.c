/* HTTP/1.1 response reader on llhttp. See h1_response.h. */
#include <stdlib.h>
#include <string.h>

#include "http/h1_response.h"

enum { CB_NONE, CB_FIELD, CB_VALUE };

static mc__h1_response *R(llhttp_t *p) {
  return p->data;
}

static int fail(mc__h1_response *r, int error, const char *reason) {
  r->error = error;
  r->reason = reason;
  return HPE_USER;
}

static int on_message_begin(llhttp_t *p) {
  mc__h1_response *r = R(p);
  /* A new message: after a 1xx interim answer, start over. */
  mc_buf_reset(&r->head);
  r->nheaders = 0;
  r->last_cb = CB_NONE;
  r->headers_done = false;
  r->started = true;
  return 0;
}

static int append_head(mc__h1_response *r, const char *at, size_t len) {
  if (mc_buf_append(&r->head, at, len) != 0)
    return fail(r, MC_ETOOBIG, "response head too large");
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  mc__h1_response *r = R(p);
  if (r->last_cb != CB_FIELD) {
    if (r->nheaders >= r->max_headers)
      return fail(r, MC_ETOOBIG, "too many header fields in the response");
    mc__h1r_span *s = &r->spans[r->nheaders++];
    memset(s, 0, sizeof *s);
    s->name_off = (uint32_t)r->head.len;
    r->last_cb = CB_FIELD;
  }
  r->spans[r->nheaders - 1].name_len += (uint32_t)len;
  return append_head(r, at, len);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  mc__h1_response *r = R(p);
  mc__h1r_span *s = &r->spans[r->nheaders - 1];
  if (r->last_cb != CB_VALUE) {
    s->value_off = (uint32_t)r->head.len;
    r->last_cb = CB_VALUE;
  }
  if (!mc_slice_is_field_value((mc_slice){at, len}))
    return fail(r, MC_EPROTO, "control character in a response header");
  s->value_len += (uint32_t)len;
  return append_head(r, at, len);
}

static int on_headers_complete(llhttp_t *p) {
  mc__h1_response *r = R(p);
  r->status = p->status_code;
  r->http_minor = p->http_minor;
  if (p->status_code == 101)
    return fail(r, MC_EPROTO, "the peer switched protocols");
  if (p->status_code >= 200)
    r->headers_done = true;
  /* 1 tells llhttp there is no body whatever the headers say: answers to
   * HEAD, and 1xx, 204 and 304 answers (RFC 9112 6.3). */
  if ((r->head_request && p->status_code >= 200) || p->status_code < 200 ||
      p->status_code == 204 || p->status_code == 304)
    return 1;
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  mc__h1_response *r = R(p);
  if (mc_buf_append(&r->body, at, len) != 0)
    return fail(r, MC_ETOOBIG, "response body too large");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  mc__h1_response *r = R(p);
  if (p->status_code < 200)
    return 0; /* interim answer: the real one follows */
  r->keep_alive = llhttp_should_keep_alive(p) != 0;
  r->event = MC_H1R_DONE;
  return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

int mc__h1r_init(mc__h1_response *r, uint32_t max_head, uint32_t max_headers,
                 size_t max_body) {
  memset(r, 0, sizeof *r);
  r->spans = malloc(sizeof(mc__h1r_span) * (max_headers ? max_headers : 1));
  if (!r->spans)
    return MC_ENOMEM;
  r->max_headers = max_headers;
  mc_buf_init(&r->head, max_head);
  mc_buf_init(&r->body, max_body);
  mc__h1r_reset(r, false);
  return 0;
}

void mc__h1r_free(mc__h1_response *r) {
  free(r->spans);
  r->spans = NULL;
  mc_buf_free(&r->head);
  mc_buf_free(&r->body);
}

void mc__h1r_reset(mc__h1_response *r, bool head_request) {
  llhttp_init(&r->parser, HTTP_RESPONSE, &settings);
  r->parser.data = r;
  r->head_request = head_request;
  mc_buf_reset(&r->head);
  mc_buf_reset(&r->body);
  r->nheaders = 0;
  r->last_cb = CB_NONE;
  r->headers_done = false;
  r->status = 0;
  r->keep_alive = false;
  r->error = 0;
  r->reason = NULL;
  r->event = MC_H1R_MORE;
  r->started = false;
}

static mc__h1r_event parse_error(mc__h1_response *r, llhttp_errno_t e) {
  if (!r->error) {
    r->error = MC_EPROTO;
    r->reason = llhttp_get_error_reason(&r->parser);
    if (!r->reason || !*r->reason)
      r->reason = llhttp_errno_name(e);
  }
  return MC_H1R_ERROR;
}

mc__h1r_event mc__h1r_feed(mc__h1_response *r, const char *data, size_t len,
                           size_t *used) {
  r->event = MC_H1R_MORE;
  llhttp_errno_t e = llhttp_execute(&r->parser, data ? data : "", len);
  if (e == HPE_OK) {
    *used = len;
    return MC_H1R_MORE;
  }
  if (e == HPE_PAUSED) {
    const char *pos = llhttp_get_error_pos(&r->parser);
    *used = pos ? (size_t)(pos - data) : len;
    return r->event;
  }
  *used = len;
  return parse_error(r, e);
}

mc__h1r_event mc__h1r_finish(mc__h1_response *r) {
  if (r->event == MC_H1R_DONE)
    return MC_H1R_DONE;
  r->event = MC_H1R_MORE;
  llhttp_errno_t e = llhttp_finish(&r->parser);
  if (e == HPE_PAUSED || (e == HPE_OK && r->event == MC_H1R_DONE)) {
    r->keep_alive = false; /* delimited by the close */
    return MC_H1R_DONE;
  }
  if (e != HPE_OK && e != HPE_INVALID_EOF_STATE)
    return parse_error(r, e);
  r->error = MC_ECLOSED;
  r->reason = r->started ? "the peer closed before the answer was complete"
                         : "the peer closed without answering";
  return MC_H1R_ERROR;
}

static mc_slice trim(mc_slice v) {
  while (v.len && (v.ptr[0] == ' ' || v.ptr[0] == '\t'))
    v.ptr++, v.len--;
  while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
    v.len--;
  return v;
}

void mc__h1r_header(const mc__h1_response *r, uint32_t i, mc_slice *name,
                    mc_slice *value) {
  const mc__h1r_span *s = &r->spans[i];
  *name = (mc_slice){r->head.ptr + s->name_off, s->name_len};
  *value = trim(
      (mc_slice){s->value_len ? r->head.ptr + s->value_off : "", s->value_len});
}
