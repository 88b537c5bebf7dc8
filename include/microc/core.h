/* microc core: error codes, slices, growable buffers, arenas, time.
 *
 * Every public function returns an int: 0 on success or a negative MC_E*
 * code. The library never prints; callers decide what to log. */
#ifndef MICROC_CORE_H
#define MICROC_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_EXTERN __attribute__((visibility("default")))

#define MC_VERSION "0.1.0"

/* Entries in an array (not a pointer). */
#define MC_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ----------------------------------------------------------- */

/* One table gives the codes, their names and their messages. */
#define MC_ERRNO_MAP(X)                                                        \
  X(NOMEM, -1, "out of memory")                                                \
  X(INVAL, -2, "invalid argument")                                             \
  X(TOOBIG, -3, "input exceeds a limit")                                       \
  X(PARSE, -4, "malformed input")                                              \
  X(VALIDATION, -5, "input failed validation")                                 \
  X(NOTFOUND, -6, "not found")                                                 \
  X(TIMEDOUT, -7, "timed out")                                                 \
  X(IO, -8, "input/output error")                                              \
  X(CLOSED, -9, "connection closed")                                           \
  X(CANCELED, -10, "operation canceled")                                       \
  X(STATE, -11, "operation not valid in this state")                           \
  X(EXISTS, -12, "already exists")                                             \
  X(UNSUPPORTED, -13, "not supported")                                         \
  X(AGAIN, -14, "resource temporarily unavailable")                            \
  X(SYS, -15, "system call failed")                                            \
  X(CONNREFUSED, -16, "connection refused")                                    \
  X(CONNRESET, -17, "connection reset by the peer")                            \
  X(PROTO, -18, "the peer broke the protocol")                                 \
  X(UNAVAILABLE, -19, "no instance is available")                              \
  X(NAME, -20, "the name could not be resolved")

enum mc_errno {
#define MC__ERRNO_ENUM(name, code, msg) MC_E##name = (code),
  MC_ERRNO_MAP(MC__ERRNO_ENUM)
#undef MC__ERRNO_ENUM
};

/* "MC_ENOMEM" and friends; "MC_UNKNOWN" for codes outside the table. */
MC_EXTERN const char *mc_err_name(int err);
/* A sentence for people; never NULL. */
MC_EXTERN const char *mc_strerror(int err);

/* ---- slices ----------------------------------------------------------- */

/* A view of bytes owned by someone else. Never assume a NUL after len. */
typedef struct mc_slice {
  const char *ptr;
  size_t len;
} mc_slice;

#define MC_LIT(s) ((mc_slice){"" s, sizeof(s) - 1})
#define MC_SLICE_NULL ((mc_slice){NULL, 0})
/* printf("%.*s", MC_SLICE_ARG(s)) */
#define MC_SLICE_ARG(s) (int)(s).len, (s).ptr

MC_EXTERN mc_slice mc_slice_cstr(const char *s);
MC_EXTERN bool mc_slice_eq(mc_slice a, mc_slice b);
/* ASCII case-insensitive comparison, as header names want. */
MC_EXTERN bool mc_slice_eq_nocase(mc_slice a, mc_slice b);
MC_EXTERN bool mc_slice_starts_with(mc_slice s, mc_slice prefix);
/* Whether s equals one of list[0..n) ignoring ASCII case (a header name
 * against a set of them). */
MC_EXTERN bool mc_slice_in_nocase(mc_slice s, const mc_slice *list, size_t n);
/* Whether s holds no control character: no byte below 0x20 but horizontal
 * tab, and no DEL (0x7F). What an HTTP field value may hold. */
MC_EXTERN bool mc_slice_is_field_value(mc_slice s);
/* Parses a whole slice as a decimal int64. MC_EPARSE if it is not one,
 * MC_ETOOBIG if it does not fit. */
MC_EXTERN int mc_slice_to_i64(mc_slice s, int64_t *out);

/* ---- buffers ---------------------------------------------------------- */

/* A growable byte buffer with a hard cap. Appends past `limit` fail with
 * MC_ETOOBIG and leave the buffer as it was. The content is kept
 * NUL-terminated (the NUL is not counted in len) so it can be handed to C
 * string APIs. A zeroed mc_buf is valid and has no limit. */
typedef struct mc_buf {
  char *ptr;
  size_t len;
  size_t cap;
  size_t limit; /* 0: no limit */
} mc_buf;

MC_EXTERN void mc_buf_init(mc_buf *b, size_t limit);
MC_EXTERN void mc_buf_free(mc_buf *b);
/* Empties the buffer, keeping its memory. */
MC_EXTERN void mc_buf_reset(mc_buf *b);
/* Makes room for n more bytes. MC_ENOMEM, MC_ETOOBIG. */
MC_EXTERN int mc_buf_reserve(mc_buf *b, size_t n);
/* Appends n bytes (the buffer stays NUL-terminated). MC_ENOMEM,
 * MC_ETOOBIG. Inline: answers and requests are built from many small
 * appends, and the common case (room enough, under the cap) is a copy. */
MC_EXTERN int mc__buf_append_slow(mc_buf *b, const void *p, size_t n);
static inline int mc_buf_append(mc_buf *b, const void *p, size_t n) {
  if (!(n < b->cap - b->len && (!b->limit || b->len + n <= b->limit)))
    return mc__buf_append_slow(b, p, n);
  if (n)
    memcpy(b->ptr + b->len, p, n);
  b->len += n;
  b->ptr[b->len] = '\0';
  return 0;
}
static inline int mc_buf_append_slice(mc_buf *b, mc_slice s) {
  return mc_buf_append(b, s.ptr, s.len);
}
static inline int mc_buf_append_cstr(mc_buf *b, const char *s) {
  return mc_buf_append(b, s, strlen(s));
}
MC_EXTERN int mc_buf_append_char(mc_buf *b, char c);
/* n in decimal: what "%llu" writes, without printf's cost. */
MC_EXTERN int mc_buf_append_u64(mc_buf *b, uint64_t n);
MC_EXTERN int mc_buf_appendf(mc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
MC_EXTERN int mc_buf_vappendf(mc_buf *b, const char *fmt, va_list ap);
/* Appends s as a JSON string literal, quotes included. Invalid UTF-8 is
 * replaced by U+FFFD so the output is always valid JSON. */
MC_EXTERN int mc_buf_append_json_str(mc_buf *b, const char *s, size_t n);
/* Drops the first n bytes. */
MC_EXTERN void mc_buf_consume(mc_buf *b, size_t n);
MC_EXTERN mc_slice mc_buf_slice(const mc_buf *b);

/* ---- arenas ----------------------------------------------------------- */

/* A region allocator: many allocations, one release. Each request owns one;
 * everything allocated from it is gone when the request ends. Cleanup
 * hooks run in reverse order of registration on reset and free. */
typedef struct mc_arena mc_arena;

/* first_chunk: bytes of the first block (0: 4 KiB). limit: total bytes the
 * arena may hand out (0: none); past it allocations return NULL. */
MC_EXTERN int mc_arena_new(mc_arena **out, size_t first_chunk, size_t limit);
MC_EXTERN void mc_arena_free(mc_arena *a);
/* Runs cleanups and forgets every allocation, keeping the first block. */
MC_EXTERN void mc_arena_reset(mc_arena *a);
/* 16-byte aligned; NULL when out of memory or over the limit. */
MC_EXTERN void *mc_arena_alloc(mc_arena *a, size_t n);
MC_EXTERN void *mc_arena_calloc(mc_arena *a, size_t n);
/* Copies n bytes and adds a NUL. */
MC_EXTERN char *mc_arena_strndup(mc_arena *a, const char *s, size_t n);
MC_EXTERN char *mc_arena_sprintf(mc_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
MC_EXTERN int mc_arena_cleanup_add(mc_arena *a, void (*fn)(void *), void *arg);
/* Bytes handed out since the last reset. */
MC_EXTERN size_t mc_arena_used(const mc_arena *a);

/* ---- time and randomness ---------------------------------------------- */

/* Monotonic clock in nanoseconds. */
MC_EXTERN uint64_t mc_now_ns(void);
/* Wall clock in milliseconds since the epoch. */
MC_EXTERN uint64_t mc_wall_ms(void);
/* Fast per-thread random numbers (not for secrets), seeded from the OS. */
MC_EXTERN uint64_t mc_rand64(void);
/* Writes 2*n lowercase hex digits of random bytes into out (no NUL). */
MC_EXTERN void mc_rand_hex(char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
