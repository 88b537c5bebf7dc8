/* W3C trace context (traceparent) parsing and formatting; no I/O. */
#ifndef MICROC_TRACE_H
#define MICROC_TRACE_H

#include "microc/core.h"

typedef struct mc__trace {
  char trace_id[33];  /* 32 lowercase hex digits and a NUL */
  char parent_id[17]; /* the caller's span, "" when we started the trace */
  char span_id[17];   /* ours */
  uint8_t flags;
} mc__trace;

/* Parses a traceparent header (version 00, or a later version's first four
 * fields). Returns 0, or MC_EPARSE when it is malformed or all-zero. */
int mc__trace_parse(mc_slice header, mc__trace *out);
/* Continues the trace in `header` if it is valid, else starts a new one;
 * always makes a fresh span id. */
void mc__trace_begin(mc_slice header, mc__trace *out);
/* Writes "00-<trace>-<span>-<flags>" (55 bytes and a NUL). */
void mc__trace_format(const mc__trace *t, char out[56]);

#endif
