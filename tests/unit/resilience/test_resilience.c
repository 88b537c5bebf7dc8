#include <criterion/criterion.h>

#include "microc/resilience.h"

Test(breaker, consecutive_failures_open_it) {
  mc_breaker b;
  mc_breaker_init(&b, NULL);
  uint64_t t = 1000;
  for (int i = 0; i < 4; i++) {
    cr_assert(mc_breaker_allow(&b, t));
    mc_breaker_record(&b, false, t);
  }
  cr_assert_eq(mc_breaker_state_at(&b, t), MC_BREAKER_CLOSED);
  mc_breaker_record(&b, false, t);
  cr_assert_eq(mc_breaker_state_at(&b, t), MC_BREAKER_OPEN);
  cr_assert_not(mc_breaker_allow(&b, t + 4999));
  cr_assert_eq(b.opened, 1);
}

Test(breaker, a_success_resets_the_run) {
  mc_breaker b;
  mc_breaker_init(&b, &(mc_breaker_opts){.min_calls = 1000});
  for (int i = 0; i < 20; i++)
    mc_breaker_record(&b, i % 4 == 3, 1000 + (uint64_t)i);
  cr_assert_eq(mc_breaker_state_at(&b, 2000), MC_BREAKER_CLOSED);
}

Test(breaker, failure_ratio_over_the_window_opens_it) {
  mc_breaker b;
  mc_breaker_init(&b, &(mc_breaker_opts){.consecutive_failures = 100});
  uint64_t t = 1000;
  /* alternate: never 5 in a row, but half of the calls fail */
  for (int i = 0; i < 9; i++)
    mc_breaker_record(&b, i % 2 == 0, t);
  cr_assert_eq(mc_breaker_state_at(&b, t), MC_BREAKER_CLOSED, "9 < min");
  mc_breaker_record(&b, false, t);
  cr_assert_eq(mc_breaker_state_at(&b, t), MC_BREAKER_OPEN);
}

Test(breaker, old_failures_leave_the_window) {
  mc_breaker b;
  mc_breaker_init(&b, &(mc_breaker_opts){.consecutive_failures = 100});
  for (int i = 0; i < 9; i++)
    mc_breaker_record(&b, false, 1000);
  /* 11 s later the window has forgotten them */
  for (int i = 0; i < 20; i++)
    mc_breaker_record(&b, true, 12000);
  mc_breaker_record(&b, false, 12000);
  cr_assert_eq(mc_breaker_state_at(&b, 12000), MC_BREAKER_CLOSED);
}

Test(breaker, half_open_probe_closes_or_reopens_longer) {
  mc_breaker b;
  mc_breaker_init(&b, NULL);
  for (int i = 0; i < 5; i++)
    mc_breaker_record(&b, false, 0);
  cr_assert_eq(mc_breaker_state_at(&b, 5000), MC_BREAKER_HALF_OPEN);
  cr_assert(mc_breaker_allow(&b, 5000), "one probe");
  cr_assert_not(mc_breaker_allow(&b, 5000), "only one");
  mc_breaker_record(&b, false, 5001);
  cr_assert_eq(mc_breaker_state_at(&b, 5001), MC_BREAKER_OPEN);
  cr_assert_eq(mc_breaker_state_at(&b, 14000), MC_BREAKER_OPEN,
               "open twice as long");
  cr_assert_eq(mc_breaker_state_at(&b, 15001), MC_BREAKER_HALF_OPEN);
  cr_assert(mc_breaker_allow(&b, 15001));
  mc_breaker_record(&b, true, 15002);
  cr_assert_eq(mc_breaker_state_at(&b, 15002), MC_BREAKER_CLOSED);
  cr_assert_eq(b.open_for, 5000, "back to the short open time");
  cr_assert_eq(b.opened, 2);
}

Test(breaker, open_time_is_capped) {
  mc_breaker b;
  mc_breaker_init(&b, &(mc_breaker_opts){.open_ms = 1000, .max_open_ms = 3000});
  uint64_t t = 0;
  for (int i = 0; i < 5; i++)
    mc_breaker_record(&b, false, t);
  for (int round = 0; round < 5; round++) {
    t = b.open_until;
    cr_assert(mc_breaker_allow(&b, t));
    mc_breaker_record(&b, false, t);
  }
  cr_assert_eq(b.open_for, 3000);
  cr_assert_str_eq(mc_breaker_state_name(MC_BREAKER_HALF_OPEN), "half_open");
}

Test(budget, retries_are_a_fifth_of_calls_plus_a_floor) {
  mc_retry_budget b;
  mc_retry_budget_init(&b, 0.2, 10);
  uint64_t t = 1000;
  /* the floor: 10 retries at once without any call */
  int granted = 0;
  for (int i = 0; i < 100; i++)
    granted += mc_retry_budget_withdraw(&b, t);
  cr_assert_eq(granted, 10);
  /* 1000 calls earn 200 retries, capped at 100 kept */
  for (int i = 0; i < 1000; i++)
    mc_retry_budget_deposit(&b, t);
  granted = 0;
  for (int i = 0; i < 1000; i++)
    granted += mc_retry_budget_withdraw(&b, t);
  cr_assert_eq(granted, 100);
  /* under steady traffic, retries stay near 20% of calls */
  granted = 0;
  for (int i = 0; i < 5000; i++) {
    mc_retry_budget_deposit(&b, t);
    granted += mc_retry_budget_withdraw(&b, t);
  }
  cr_assert_leq(granted, 1000 + 1);
  cr_assert_geq(granted, 999);
  /* time refills the floor */
  cr_assert_not(mc_retry_budget_withdraw(&b, t));
  cr_assert(mc_retry_budget_withdraw(&b, t + 500));
  cr_assert_gt(b.exhausted, 0);
}

Test(backoff, full_jitter_under_the_cap) {
  for (unsigned a = 0; a < 20; a++)
    for (int i = 0; i < 100; i++) {
      uint64_t ms = mc_backoff_ms(a, 25, 1000);
      uint64_t top = a < 6 ? 25u << a : 1000;
      cr_assert_leq(ms, top > 1000 ? 1000 : top);
    }
}
