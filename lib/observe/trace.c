#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "observe/trace.h"

/* Whether p[0..n) (n a multiple of 8) is lowercase hex and not all zeros,
 * eight bytes a step: every request with a traceparent asks this of 48.
 * For bytes below 0x80, adding 0x80 - lo sets a byte's high bit exactly
 * when the byte is at least lo, without a carry into the next byte. */
static bool lower_hex(const char *p, size_t n) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t ok = highs, any = 0;
  for (size_t i = 0; i < n; i += 8) {
    uint64_t x;
    memcpy(&x, p + i, 8);
    uint64_t ge0 = x + ones * (0x80 - '0'), gt9 = x + ones * (0x80 - '9' - 1);
    uint64_t gea = x + ones * (0x80 - 'a'), gtf = x + ones * (0x80 - 'f' - 1);
    ok &= ((ge0 & ~gt9) | (gea & ~gtf)) & ~x;
    any |= x ^ (ones * '0');
  }
  return ok == highs && any;
}

static bool lower_hex_byte(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hexval(char c) {
  return c <= '9' ? c - '0' : c - 'a' + 10;
}

int mc__trace_parse(mc_slice h, mc__trace *out) {
  /* version(2) - trace(32) - parent(16) - flags(2) */
  if (h.len < 55 || (h.len > 55 && h.ptr[55] != '-'))
    return MC_EPARSE;
  const char *p = h.ptr;
  if (p[2] != '-' || p[35] != '-' || p[52] != '-')
    return MC_EPARSE;
  if (!lower_hex_byte(p[0]) || !lower_hex_byte(p[1]))
    return MC_EPARSE;
  if (p[0] == 'f' && p[1] == 'f') /* version ff is invalid */
    return MC_EPARSE;
  if (p[0] == '0' && p[1] == '0' && h.len != 55)
    return MC_EPARSE;
  if (!lower_hex(p + 3, 32) || !lower_hex(p + 36, 16))
    return MC_EPARSE;
  char f0 = p[53], f1 = p[54];
  if (!lower_hex_byte(f0) || !lower_hex_byte(f1))
    return MC_EPARSE;
  memcpy(out->trace_id, p + 3, 32);
  out->trace_id[32] = 0;
  memcpy(out->parent_id, p + 36, 16);
  out->parent_id[16] = 0;
  out->flags = (uint8_t)(hexval(f0) * 16 + hexval(f1));
  return 0;
}

void mc__trace_begin(mc_slice header, mc__trace *out) {
  if (!header.len || mc__trace_parse(header, out) != 0) {
    mc_rand_hex(out->trace_id, 16);
    out->trace_id[32] = 0;
    out->parent_id[0] = 0;
    out->flags = 1; /* sampled: we log every request */
  }
  mc_rand_hex(out->span_id, 8);
  out->span_id[16] = 0;
}

void mc__trace_format(const mc__trace *t, char out[56]) {
  static const char hex[] = "0123456789abcdef";
  memcpy(out, "00-", 3);
  memcpy(out + 3, t->trace_id, 32);
  out[35] = '-';
  memcpy(out + 36, t->span_id, 16);
  out[52] = '-';
  out[53] = hex[(t->flags >> 4) & 15];
  out[54] = hex[t->flags & 15];
  out[55] = 0;
}
