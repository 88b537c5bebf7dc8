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

bool mc_slice_eq_nocase(mc_slice a, mc_slice b) {
  if (a.len != b.len)
    return false;
  for (size_t i = 0; i < a.len; i++)
    if (lower((unsigned char)a.ptr[i]) != lower((unsigned char)b.ptr[i]))
      return false;
  return true;
}

/* Eight bytes at a time: a word with no byte below 0x20 and none equal to
 * 0x7F needs no closer look (the classic has-less and has-zero tricks);
 * one that has either is looked at byte by byte, for the tabs. */
bool mc_slice_is_field_value(mc_slice s) {
  const unsigned char *p = (const unsigned char *)s.ptr;
  size_t i = 0;
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  for (; i + 8 <= s.len; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    uint64_t below = (x - ones * 0x20) & ~x & highs;
    uint64_t y = x ^ (ones * 0x7F);
    uint64_t del = (y - ones) & ~y & highs;
    if (below | del)
      break;
  }
  for (; i < s.len; i++) {
    unsigned char c = p[i];
    if ((c < 0x20 && c != '\t') || c == 0x7F)
      return false;
  }
  return true;
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
