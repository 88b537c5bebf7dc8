/* The HTTP/1.1 request reader: bytes in, request events out, no I/O.
 *
 * It wraps llhttp (strict mode) and adds what a server needs on top: hard
 * caps on the request head and header count, a body buffer with a per-route
 * cap, and a status code for every way a request can be malformed, so the
 * connection layer only has to write the answer. */
#ifndef MICROC_H1_READER_H
#define MICROC_H1_READER_H

#include <llhttp.h>

#include "microc/core.h"

typedef struct mc__h1_limits {
  uint32_t max_head;    /* bytes of request line plus headers (431 past it) */
  uint32_t max_headers; /* header fields (431 past it) */
} mc__h1_limits;

typedef enum mc__h1_event {
  MC_H1_MORE = 0, /* all bytes consumed; feed more */
  MC_H1_HEAD,     /* request head complete: inspect, set body_limit, feed on */
  MC_H1_DONE,     /* request complete, body in r->body */
  MC_H1_ERROR,    /* malformed: answer r->status and close the connection */
} mc__h1_event;

typedef struct mc__h1_header {
  mc_slice name;
  mc_slice value;
} mc__h1_header;

typedef struct mc__h1_span {
  uint32_t name_off, name_len, value_off, value_len;
} mc__h1_span;

typedef struct mc__h1_reader {
  llhttp_t parser;
  mc__h1_limits limits;
  mc_buf head; /* target and header bytes, capped at limits.max_head */
  uint32_t target_off, target_len;
  mc__h1_span *spans;     /* limits.max_headers entries */
  mc__h1_header *headers; /* slices into head, valid from MC_H1_HEAD on */
  uint32_t nheaders;
  int hstate;             /* which span the callbacks are in */
  int scan;               /* scan_head's state across reads */
  uint32_t trailer_bytes; /* of a chunked body's trailers, counted only */

  /* valid from MC_H1_HEAD until mc__h1_reader_next */
  mc_slice method;
  mc_slice target;
  uint8_t http_major, http_minor;
  int64_t content_length; /* -1 when absent */
  bool chunked;
  bool expect_continue;
  bool head_done; /* headers, method and target are valid */

  mc_buf body;       /* whole request body, at most body_limit bytes */
  size_t body_limit; /* set by the owner at MC_H1_HEAD; 0 refuses any body */
  /* streaming: body holds what the owner has not taken yet, and the
   * limit applies to body_total */
  bool stream;
  uint64_t body_total;

  int status;         /* MC_H1_ERROR: the status to answer with */
  const char *reason; /* MC_H1_ERROR: why, for the problem detail */
  bool in_message;    /* some bytes of a request have been seen */
  mc__h1_event event; /* what the last callback reported */
} mc__h1_reader;

/* Sets up r; returns 0 or MC_ENOMEM. */
int mc__h1_reader_init(mc__h1_reader *r, const mc__h1_limits *limits);
void mc__h1_reader_free(mc__h1_reader *r);
/* Parses data until an event. *used tells how many bytes were consumed;
 * the rest must be fed again (after handling the event). */
mc__h1_event mc__h1_reader_feed(mc__h1_reader *r, const char *data, size_t len,
                                size_t *used);
/* After MC_H1_DONE: forget the request and get ready for the next one on
 * the same connection. */
void mc__h1_reader_next(mc__h1_reader *r);
/* Whether the connection may stay open after this request (HTTP/1.0 without
 * keep-alive, or Connection: close, say no). */
bool mc__h1_reader_keep_alive(const mc__h1_reader *r);
/* The value of the first header called name, or {NULL,0}. */
mc_slice mc__h1_reader_header(const mc__h1_reader *r, mc_slice name);

#endif
