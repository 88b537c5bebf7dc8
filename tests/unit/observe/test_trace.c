#include <criterion/criterion.h>
#include <string.h>

#include "observe/trace.h"

static const char good[] =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

static int parse(const char *s, size_t n, mc__trace *t) {
  return mc__trace_parse((mc_slice){s, n}, t);
}

Test(trace, parses_a_valid_header) {
  mc__trace t;
  cr_assert_eq(parse(good, 55, &t), 0);
  cr_assert_str_eq(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  cr_assert_str_eq(t.parent_id, "00f067aa0ba902b7");
  cr_assert_eq(t.flags, 1);
}

/* Every byte value at every hex position of the trace and parent ids: only
 * lowercase hex passes. (The check runs eight bytes at a time; this is the
 * byte-by-byte truth it must agree with.) */
Test(trace, every_byte_at_every_id_position) {
  char s[56];
  mc__trace t;
  for (int pos = 3; pos < 52; pos++) {
    if (pos == 35)
      continue; /* the dash between the two ids */
    for (int b = 0; b < 256; b++) {
      memcpy(s, good, 56);
      s[pos] = (char)b;
      bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
      cr_assert_eq(parse(s, 55, &t) == 0, hex, "byte 0x%02x at %d", b, pos);
    }
  }
}

Test(trace, refuses_zeros_bad_versions_and_shapes) {
  mc__trace t;
  const char *bad[] = {
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "0G-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
      "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    cr_assert_eq(parse(bad[i], strlen(bad[i]), &t), MC_EPARSE, "%s", bad[i]);
  /* a later version may carry more fields after a dash */
  const char later[] =
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more";
  cr_assert_eq(parse(later, sizeof later - 1, &t), 0);
}
