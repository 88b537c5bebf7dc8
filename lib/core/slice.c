#include <string.h>

#include "microc/core.h"

mc_slice mc_slice_cstr(const char *s) {
  return (mc_slice){s, s ? strlen(s) : 0};
}

bool mc_slice_eq(mc_slice a, mc_slice b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* ASCII lower case of eight bytes at once: a byte gets 0x20 when it lies
 * in 'A'..'Z' (the adds work on seven bits, so no carry crosses bytes;
 * bytes from 0x80 up are left alone). */
static inline uint64_t lower8(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t low7 = x & ~highs;
  uint64_t ge_a = low7 + ones * (0x80 - 'A');
  uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
  uint64_t upper = ge_a & ~gt_z & ~x & highs;
  return x | (upper >> 2);
}

/* Header names are compared all the time, mostly against one spelled in
 * lower case: eight bytes at a time, where bytes that differ may differ
 * only in the 0x20 bit and only where that bit makes an ASCII letter. */
static inline bool eq8_nocase(const unsigned char *p, const unsigned char *q) {
  uint64_t x, y;
  memcpy(&x, p, 8);
  memcpy(&y, q, 8);
  return x == y || lower8(x) == lower8(y);
}

static inline bool eq4_nocase(const unsigned char *p, const unsigned char *q) {
  uint32_t x, y;
  memcpy(&x, p, 4);
  memcpy(&y, q, 4);
  return x == y || lower8(x) == lower8(y);
}

bool mc_slice_eq_nocase(mc_slice a, mc_slice b) {
  if (a.len != b.len)
    return false;
  const unsigned char *p = (const unsigned char *)a.ptr;
  const unsigned char *q = (const unsigned char *)b.ptr;
  size_t n = a.len;
  if (n >= 8) { /* words, the last one overlapping the one before */
    for (size_t i = 0; i + 8 < n; i += 8)
      if (!eq8_nocase(p + i, q + i))
        return false;
    return eq8_nocase(p + n - 8, q + n - 8);
  }
  if (n >= 4)
    return eq4_nocase(p, q) && eq4_nocase(p + n - 4, q + n - 4);
  for (size_t i = 0; i < n; i++)
    if (lower(p[i]) != lower(q[i]))
      return false;
  return true;
}

/* Eight bytes at a time: a word with no byte below 0x20 and none equal to
 * 0x7F needs no closer look (the classic has-less and has-zero tricks);
 * one that has either is looked at byte by byte, for the tabs. */
/* Whether a word of eight bytes holds a control other than a tab: a byte
 * below 0x20 or DEL. (x - 0x20 per byte sets the high bit of the bytes
 * below 0x20 that had it clear; a tab gets past as a byte that is 0x09 is
 * then checked on its own: rare, and only then.) */
static bool word_has_control(uint64_t x) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t below = (x - ones * 0x20) & ~x & highs;
  uint64_t y = x ^ (ones * 0x7F);
  uint64_t del = (y - ones) & ~y & highs;
  return (below | del) != 0;
}

static bool bytes_are_field_value(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7F)
      return false;
  return true;
}

bool mc_slice_is_field_value(mc_slice s) {
  const unsigned char *p = (const unsigned char *)s.ptr;
  size_t n = s.len;
  uint64_t x;
  if (n < 8) {
    /* one word, padded with spaces */
    x = 0x2020202020202020ull;
    if (n)
      memcpy(&x, p, n);
    return !word_has_control(x) || bytes_are_field_value(p, n);
  }
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, p + i, 8);
    if (word_has_control(x))
      return bytes_are_field_value(p + i, n - i);
  }
  if (i == n)
    return true;
  /* the last word again, overlapping the one before */
  memcpy(&x, p + n - 8, 8);
  return !word_has_control(x) || bytes_are_field_value(p + n - 8, 8);
}

bool mc_slice_in_nocase(mc_slice s, const mc_slice *list, size_t n) {
  if (!s.len) {
    for (size_t i = 0; i < n; i++)
      if (!list[i].len)
        return true;
    return false;
  }
  /* the length and the first letter turn most names away without a call */
  unsigned char first = lower((unsigned char)s.ptr[0]);
  for (size_t i = 0; i < n; i++)
    if (s.len == list[i].len && lower((unsigned char)list[i].ptr[0]) == first &&
        mc_slice_eq_nocase(s, list[i]))
      return true;
  return false;
}

bool mc_slice_starts_with(mc_slice s, mc_slice prefix) {
  return s.len >= prefix.len &&
         (prefix.len == 0 || memcmp(s.ptr, prefix.ptr, prefix.len) == 0);
}

int mc_slice_to_i64(mc_slice s, int64_t *out) {
  size_t i = 0;
  bool neg = false;
  if (s.len == 0)
    return MC_EPARSE;
  if (s.ptr[0] == '-' || s.ptr[0] == '+') {
    neg = s.ptr[0] == '-';
    i = 1;
    if (s.len == 1)
      return MC_EPARSE;
  }
  uint64_t v = 0;
  uint64_t cap = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < s.len; i++) {
    unsigned d = (unsigned)(s.ptr[i] - '0');
    if (d > 9)
      return MC_EPARSE;
    if (v > (cap - d) / 10)
      return MC_ETOOBIG;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}
