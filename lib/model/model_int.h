/* Model internals shared by decode.c, encode.c and schema.c. */
#ifndef MICROC_MODEL_INT_H
#define MICROC_MODEL_INT_H

#include <regex.h>

#include "microc/model.h"

/* Deepest nesting of objects and arrays a decoder follows. */
#define MC__MODEL_MAX_DEPTH 64

/* Bytes one value of field f takes in its C representation (an array's
 * item, or a member). */
size_t mc__field_csize(const mc_field *f);

/* The array representation every MC_ARRAY_OF(T) shares. */
typedef struct mc__array {
  void *items;
  size_t len;
} mc__array;

/* The compiled form of f->pattern, compiled once per process and shared by
 * every thread (glibc's regexec is safe on a shared regex_t). NULL when the
 * pattern does not compile; mc_model_check reports that at start-up. */
const regex_t *mc__pattern_get(const char *pattern);

/* Whether the NUL-terminated UTF-8 text s matches re (anywhere, as JSON
 * Schema patterns are unanchored), character by character. */
bool mc__pattern_match(const regex_t *re, const char *s);

/* Rewrites the ECMA-262 shorthands JSON Schema users write (\d, \w, \s and
 * their negations) into POSIX ERE. Returns a malloc'd string or NULL. */
char *mc__pattern_to_ere(const char *pattern);

/* Number of Unicode code points in valid UTF-8 text. */
size_t mc__utf8_len(const char *s, size_t n);

/* Writes the shortest %g text of a finite double that reads back the
 * same ("2", "0.1", "5e-324"). */
void mc__number_text(double v, char buf[40]);

/* Appends a double as the shortest JSON number that reads back the same,
 * whole values with a ".0" as Python writes floats; non-finite values
 * become null. */
int mc__json_number(mc_buf *b, double v);

/* The int64 an integer field's bound or default stands for. Declarations
 * hold them as doubles, where INT64_MAX becomes 2^63: that value is read
 * as INT64_MAX, and values beyond the range are clamped. */
int64_t mc__int_of_double(double x);

#endif
