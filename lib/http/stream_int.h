/* A streamed answer (mc_http_response.stream), shared by the HTTP/1.1
 * client and the raw HTTP/2 exchange: each transport puts this header
 * first in its own state, which lives in the answer's arena, and fills in
 * the two functions that mc_http_read and mc_http_close dispatch to. */
#ifndef MICROC_STREAM_INT_H
#define MICROC_STREAM_INT_H

#include "microc/client.h"

#define MC__STREAM_UNREAD_MAX (64u << 10)

struct mc__http_stream {
  /* The next piece into *chunk; the transport may update res (trailers). */
  int (*read)(mc__http_stream *s, mc_http_response *res, mc_slice *chunk);
  /* Ends the exchange; called once. */
  void (*close)(mc__http_stream *s);
  bool closed;
};

/* Registers s's close with arena a (see mc_http_close). 0 or MC_ENOMEM. */
int mc__http_stream_adopt(mc__http_stream *s, mc_arena *a);

#endif
