#include <criterion/criterion.h>
#include <string.h>

#include "microc/core.h"

/* Every byte at every offset of strings that straddle the 8-byte words. */
Test(slice, field_value_check_matches_the_byte_rule) {
  char s[24];
  for (int c = 0; c < 256; c++) {
    bool want = !((c < 0x20 && c != '\t') || c == 0x7F);
    for (size_t len = 1; len <= sizeof s; len++)
      for (size_t at = 0; at < len; at++) {
        memset(s, 'a', sizeof s);
        s[at] = (char)c;
        cr_assert_eq(mc_slice_is_field_value((mc_slice){s, len}), want,
                     "byte %d at %zu of %zu", c, at, len);
      }
  }
  cr_assert(mc_slice_is_field_value((mc_slice){NULL, 0}));
  cr_assert(mc_slice_is_field_value(MC_LIT("\xff\x80 tab\there ~")));
}

Test(slice, buf_append_u64) {
  mc_buf b;
  mc_buf_init(&b, 0);
  const uint64_t v[] = {0, 7, 10, 1234567890, UINT64_MAX};
  const char *want[] = {"0", "7", "10", "1234567890", "18446744073709551615"};
  for (size_t i = 0; i < 5; i++) {
    mc_buf_reset(&b);
    cr_assert_eq(mc_buf_append_u64(&b, v[i]), 0);
    cr_assert_str_eq(b.ptr, want[i]);
  }
  mc_buf_free(&b);
}

Test(slice, rand_hex_gives_lowercase_hex_and_varies) {
  char a[65] = {0}, b[65] = {0};
  mc_rand_hex(a, 32);
  mc_rand_hex(b, 32);
  cr_assert_eq(strlen(a), 64);
  for (int i = 0; i < 64; i++)
    cr_assert(strchr("0123456789abcdef", a[i]), "char %d: %c", i, a[i]);
  cr_assert_str_neq(a, b);
  char c[3] = {0};
  mc_rand_hex(c, 1); /* a single byte: exactly two digits */
  cr_assert_eq(strlen(c), 2);
}

static bool ref_eq_nocase(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z')
      x += 32;
    if (y >= 'A' && y <= 'Z')
      y += 32;
    if (x != y)
      return false;
  }
  return true;
}

/* Every pair of bytes, at a position inside and past the first word. */
Test(slice, nocase_matches_the_byte_rule) {
  char a[20], b[20];
  for (int x = 0; x < 256; x++)
    for (int y = 0; y < 256; y++)
      for (size_t at = 0; at < 20; at += 5) {
        memcpy(a, "Content-Type-Lengthx", 20);
        memcpy(b, "content-type-LENGTHx", 20);
        a[at] = (char)x;
        b[at] = (char)y;
        cr_assert_eq(mc_slice_eq_nocase((mc_slice){a, 20}, (mc_slice){b, 20}),
                     ref_eq_nocase(a, b, 20), "%d %d at %zu", x, y, at);
      }
  cr_assert(!mc_slice_eq_nocase(MC_LIT("ab"), MC_LIT("abc")));
  cr_assert(mc_slice_eq_nocase(MC_LIT(""), MC_LIT("")));
}

/* Every length up to three words, with the differing byte at each place:
 * the short forms (bytes, two overlapping halves) and the overlapping last
 * word must agree with the byte rule too. */
Test(slice, nocase_every_length_and_place) {
  static const int probes[] = {'A', 'a', 'Z', 'z',  '@',  '`',  '[',
                               '{', '-', 0,   0x80, 0xC1, 0xE1, 'q'};
  char a[24], b[24];
  for (size_t n = 0; n <= 24; n++)
    for (size_t at = 0; at < n; at++)
      for (size_t i = 0; i < sizeof probes / sizeof *probes; i++)
        for (size_t j = 0; j < sizeof probes / sizeof *probes; j++) {
          for (size_t k = 0; k < n; k++) {
            a[k] = (char)("Transfer-Encoding-X-Abcd"[k]);
            b[k] = (char)("transfer-encoding-x-ABCD"[k]);
          }
          a[at] = (char)probes[i];
          b[at] = (char)probes[j];
          cr_assert_eq(mc_slice_eq_nocase((mc_slice){a, n}, (mc_slice){b, n}),
                       ref_eq_nocase(a, b, n), "n %zu at %zu: %d %d", n, at,
                       probes[i], probes[j]);
        }
}

Test(slice, in_nocase) {
  static const mc_slice names[] = {MC_LIT("te"), MC_LIT("connection")};
  cr_assert(mc_slice_in_nocase(MC_LIT("Connection"), names, 2));
  cr_assert(mc_slice_in_nocase(MC_LIT("TE"), names, 2));
  cr_assert_not(mc_slice_in_nocase(MC_LIT("tee"), names, 2));
  cr_assert_not(mc_slice_in_nocase(MC_LIT("te"), names, 0));
}
