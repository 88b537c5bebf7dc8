/* The HTTP/1.1 response reader: bytes in, one response out, no I/O. The
 * outbound client (client.c) feeds it what the peer sends. It wraps llhttp
 * in response mode with hard caps on the head and the body, skips interim
 * 1xx answers, and knows that answers to HEAD, 204 and 304 have no body. */
#ifndef MICROC_H1_RESPONSE_H
#define MICROC_H1_RESPONSE_H

#include <llhttp.h>

#include "microc/core.h"

typedef enum mc__h1r_event {
  MC_H1R_MORE = 0, /* all bytes consumed; feed more (or finish on EOF) */
  MC_H1R_DONE,     /* the response is complete */
  MC_H1R_ERROR,    /* malformed or over a cap: see r->error, close */
} mc__h1r_event;

typedef struct mc__h1r_span {
  uint32_t name_off, name_len, value_off, value_len;
} mc__h1r_span;

typedef struct mc__h1_response {
  llhttp_t parser;
  bool head_request; /* the request was HEAD: no body follows */
  mc_buf head;       /* header bytes, capped */
  mc__h1r_span *spans;
  uint32_t nheaders, max_headers;
  int last_cb;
  bool headers_done; /* headers of the final (non-1xx) answer are in */
  int status;
  uint8_t http_minor;
  bool keep_alive; /* valid at MC_H1R_DONE */
  mc_buf body;     /* capped by its limit */
  int error;       /* MC_H1R_ERROR: MC_EPROTO or MC_ETOOBIG */
  const char *reason;
  mc__h1r_event event;
  bool started; /* some bytes of the answer have arrived */
} mc__h1_response;

/* max_head: bytes of status line and headers; max_headers: fields;
 * max_body: bytes of body. Returns 0 or MC_ENOMEM. */
int mc__h1r_init(mc__h1_response *r, uint32_t max_head, uint32_t max_headers,
                 size_t max_body);
void mc__h1r_free(mc__h1_response *r);
/* Readies r for the next response on the same connection. */
void mc__h1r_reset(mc__h1_response *r, bool head_request);
/* Parses data; *used tells how many bytes were taken (the rest, after
 * MC_H1R_DONE, is the start of something the peer should not have sent). */
mc__h1r_event mc__h1r_feed(mc__h1_response *r, const char *data, size_t len,
                           size_t *used);
/* The peer closed: completes an answer delimited by the end of the stream,
 * or reports a truncated one. */
mc__h1r_event mc__h1r_finish(mc__h1_response *r);
/* Header i of the final answer (name and value, OWS trimmed). */
void mc__h1r_header(const mc__h1_response *r, uint32_t i, mc_slice *name,
                    mc_slice *value);

#endif
