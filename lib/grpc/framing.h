/* gRPC over HTTP/2, the parts that are bytes in and bytes out, no I/O
 * (grpc/grpc doc/PROTOCOL-HTTP2.md): the length-prefixed message framing
 * of DATA payloads, the percent-encoding of grpc-message, and the text of
 * grpc-status and grpc-timeout. The socket glue (call.c) and the fuzz
 * target use these. */
#ifndef MICROC_GRPC_FRAMING_H
#define MICROC_GRPC_FRAMING_H

#include "microc/core.h"

#define MC_GRPC_PREFIX_LEN 5

/* Writes the 5-byte prefix of a message of len bytes: the compressed flag
 * (0 or 1) and the length, big-endian. */
void mc__grpc_prefix(uint8_t out[MC_GRPC_PREFIX_LEN], bool compressed,
                     uint32_t len);

/* ---- reading messages ---------------------------------------------------- */

typedef enum mc__grpc_frame_event {
  MC_GRPC_FRAME_MORE = 0, /* all bytes taken; feed more */
  MC_GRPC_FRAME_MESSAGE,  /* a message is complete: r->msg, r->compressed */
  MC_GRPC_FRAME_ERROR,    /* see r->error; sticky */
} mc__grpc_frame_event;

/* Reads length-prefixed messages from a stream that arrives in pieces of
 * any size. A zeroed reader is not ready: use init. */
typedef struct mc__grpc_reader {
  uint8_t prefix[MC_GRPC_PREFIX_LEN];
  uint8_t nprefix; /* prefix bytes gathered */
  bool in_body;    /* the prefix is complete, the body is being read */
  bool compressed; /* flag of the message being read or just read */
  uint32_t want;   /* body length of that message */
  mc_buf msg;      /* its body; valid from MESSAGE until the next feed */
  size_t max_msg;  /* messages longer than this are refused */
  uint64_t nmsgs;  /* messages completed */
  int error;       /* MC_ETOOBIG (over max_msg), MC_EPROTO (flag not 0/1) */
} mc__grpc_reader;

/* max_msg: the largest message body accepted (0 allows only empty ones). */
void mc__grpc_reader_init(mc__grpc_reader *r, size_t max_msg);
void mc__grpc_reader_free(mc__grpc_reader *r);
/* Takes bytes until a message is complete, an error is found or the input
 * ends; *used tells how many were taken (all of them on MORE). After
 * MESSAGE, feed the rest again. MC_ENOMEM shows as ERROR with that code. */
mc__grpc_frame_event mc__grpc_reader_feed(mc__grpc_reader *r, const void *data,
                                          size_t len, size_t *used);
/* Whether the stream may end here: no message is half read and no error
 * was seen. */
bool mc__grpc_reader_at_boundary(const mc__grpc_reader *r);

/* ---- header values ------------------------------------------------------- */

/* Percent-decodes a grpc-message value into out (cap bytes, NUL included)
 * and returns the length written. As the protocol asks, a broken escape
 * ('%' not followed by two hex digits) is kept as it is, never an error.
 * When out is too small, the text is cut before a UTF-8 sequence that
 * would not fit whole. cap 0 writes nothing. */
size_t mc__grpc_message_decode(mc_slice in, char *out, size_t cap);
/* The same copy and cut, without decoding (for texts of our own). */
size_t mc__grpc_text_copy(mc_slice in, char *out, size_t cap);

/* Percent-encodes text for grpc-message: bytes outside 0x20-0x7E, and
 * '%', become %XX. MC_ENOMEM, MC_ETOOBIG (over b's limit). */
int mc__grpc_message_encode(mc_buf *b, mc_slice text);

/* Parses a grpc-status value: 1 to 10 ASCII digits, at most INT32_MAX.
 * MC_EPARSE otherwise. */
int mc__grpc_status_parse(mc_slice v, int *out);

/* Writes a grpc-timeout value for ns nanoseconds (at least 1 ns): at most
 * 8 digits and a unit (n u m S M H), the finest unit that fits, rounded
 * up. Returns the length (no NUL is written past it, out holds 10). */
size_t mc__grpc_timeout_format(uint64_t ns, char out[10]);

#endif
