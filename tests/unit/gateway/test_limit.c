#include <criterion/criterion.h>
#include <stdio.h>

#include "gateway.h"

#define SEC 1000000000ull

Test(limit, bucket_refills_at_its_rate) {
  gw_limiter *l;
  cr_assert_eq(gw_limiter_new(&l, 0), 0);
  double retry;
  uint64_t t = 1000 * SEC;
  for (int i = 0; i < 3; i++)
    cr_assert(gw_limiter_take(l, MC_LIT("a"), 2, 3, t, &retry));
  cr_assert_not(gw_limiter_take(l, MC_LIT("a"), 2, 3, t, &retry));
  cr_assert_float_eq(retry, 0.5, 1e-9);
  /* other keys have their own bucket */
  cr_assert(gw_limiter_take(l, MC_LIT("b"), 2, 3, t, &retry));
  cr_assert(gw_limiter_take(l, MC_LIT("a"), 2, 3, t + SEC / 2, &retry));
  cr_assert_not(gw_limiter_take(l, MC_LIT("a"), 2, 3, t + SEC / 2, &retry));
  /* never more than burst, however long it waited */
  t += 3600 * SEC;
  for (int i = 0; i < 3; i++)
    cr_assert(gw_limiter_take(l, MC_LIT("a"), 2, 3, t, &retry));
  cr_assert_not(gw_limiter_take(l, MC_LIT("a"), 2, 3, t, &retry));
  gw_limiter_free(l);
}

Test(limit, full_table_drops_full_buckets_then_lets_through) {
  gw_limiter *l;
  cr_assert_eq(gw_limiter_new(&l, 300), 0);
  double retry;
  char key[16];
  uint64_t t = 10 * SEC;
  for (int i = 0; i < 300; i++) {
    snprintf(key, sizeof key, "k%d", i);
    cr_assert(gw_limiter_take(l, mc_slice_cstr(key), 1, 1, t, &retry));
  }
  cr_assert_eq(gw_limiter_keys(l), 300);
  /* every bucket is empty: no room, and the newcomer is let through */
  cr_assert(gw_limiter_take(l, MC_LIT("new"), 1, 1, t, &retry));
  cr_assert_eq(gw_limiter_keys(l), 300);
  /* a second later they are full again and make way */
  cr_assert(gw_limiter_take(l, MC_LIT("new"), 1, 1, t + 2 * SEC, &retry));
  cr_assert_eq(gw_limiter_keys(l), 1);
  cr_assert_not(gw_limiter_take(l, MC_LIT("new"), 1, 1, t + 2 * SEC, &retry));
  gw_limiter_free(l);
}
