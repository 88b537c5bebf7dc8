#include <criterion/criterion.h>
#include <signal.h>
#include <uv.h>

#include "core/fiber_int.h"

static uv_loop_t loop;

static void setup(void) {
  uv_loop_init(&loop);
  cr_assert_eq(mc__sched_init(&loop, 0, 4), 0);
}

static void teardown(void) {
  mc__sched_close();
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

TestSuite(fiber, .init = setup, .fini = teardown);

static int trace[16];
static int ntrace;
static mc_fiber *held;

static void ping(void *arg) {
  trace[ntrace++] = (int)(intptr_t)arg;
  held = mc_fiber_current();
  mc__fiber_yield();
  trace[ntrace++] = (int)(intptr_t)arg + 1;
}

Test(fiber, switches_back_and_forth) {
  ntrace = 0;
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, ping, (void *)10), 0);
  cr_assert_null(mc_fiber_current());
  mc__fiber_resume(f);
  cr_assert_eq(ntrace, 1);
  cr_assert_eq(held, f);
  mc_fiber_stats st;
  mc_fiber_stats_get(&st);
  cr_assert_eq(st.running, 1);
  mc__fiber_resume(f);
  cr_assert_eq(ntrace, 2);
  cr_assert_eq(trace[1], 11);
  mc_fiber_stats_get(&st);
  cr_assert_eq(st.running, 0);
  cr_assert_eq(st.pooled, 1);
}

static void noop(void *arg) {
  (*(int *)arg)++;
}

Test(fiber, stacks_are_pooled_and_bounded) {
  int n = 0;
  mc_fiber *fs[8];
  for (int i = 0; i < 8; i++)
    cr_assert_eq(mc__fiber_new(&fs[i], noop, &n), 0);
  for (int i = 0; i < 8; i++)
    mc__fiber_resume(fs[i]);
  cr_assert_eq(n, 8);
  mc_fiber_stats st;
  mc_fiber_stats_get(&st);
  cr_assert_eq(st.pooled, 4, "pool keeps at most max_pooled stacks");
  mc_fiber *again;
  cr_assert_eq(mc__fiber_new(&again, noop, &n), 0);
  cr_assert(again == fs[7] || again == fs[6] || again == fs[5] ||
            again == fs[4] || again == fs[3] || again == fs[2] ||
            again == fs[1] || again == fs[0]);
  mc__fiber_resume(again);
  mc_fiber_stats_get(&st);
  cr_assert_eq(st.created, 9);
}

static double fp_result;
static void fp_work(void *arg) {
  double x = *(double *)arg;
  mc__fiber_yield();
  fp_result = x * 1.5;
}

Test(fiber, float_state_survives_switch) {
  double in = 3.0;
  mc_fiber *f;
  mc__fiber_new(&f, fp_work, &in);
  mc__fiber_resume(f);
  double local = 2.25 * in;
  mc__fiber_resume(f);
  cr_assert_float_eq(fp_result, 4.5, 1e-12);
  cr_assert_float_eq(local, 6.75, 1e-12);
}

static uint64_t slept_ns;
static void sleeper(void *arg) {
  uint64_t t0 = mc_now_ns();
  cr_assert_eq(mc_sleep(300), 0);
  slept_ns = mc_now_ns() - t0;
  (*(int *)arg)++;
}

Test(fiber, sleep_suspends_fiber_not_thread) {
  int done = 0;
  for (int i = 0; i < 5; i++)
    cr_assert_eq(mc_spawn(sleeper, &done), 0);
  uint64_t t0 = mc_now_ns();
  uv_run(&loop, UV_RUN_DEFAULT);
  uint64_t total = mc_now_ns() - t0;
  cr_assert_eq(done, 5);
  cr_assert_geq(slept_ns, 300 * 1000000ull, "a sleep never ends early");
  /* five 300 ms sleeps overlapped; in turn they would take 1.5 s */
  cr_assert_lt(total, 1200 * 1000000ull);
}

static int cancel_rc, cancel_rc2;
static uint64_t cancel_ns;
static void long_sleeper(void *arg) {
  uint64_t t0 = mc_now_ns();
  cancel_rc = mc_sleep(60000);
  cancel_ns = mc_now_ns() - t0;
  cancel_rc2 = mc_sleep(1);
  cr_assert(mc_fiber_canceled());
}

static void cancel_later(uv_timer_t *t) {
  mc__fiber_cancel(t->data);
  uv_close((uv_handle_t *)t, NULL);
}

Test(fiber, cancel_ends_a_sleep_and_every_later_wait) {
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, long_sleeper, NULL), 0);
  mc__fiber_resume(f);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = f;
  uv_timer_start(&t, cancel_later, 20, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(cancel_rc, MC_ECANCELED);
  cr_assert_eq(cancel_rc2, MC_ECANCELED);
  cr_assert_lt(cancel_ns, 30ull * 1000000000ull, "canceled, not timed out");
}

static bool blocking_ran;
static int blocking_rc;
static void mark_ran(void *arg) {
  blocking_ran = true;
}
static void cancel_blocker(void *arg) {
  blocking_rc = mc_run_blocking(mark_ran, NULL);
}

Test(fiber, cancel_of_blocking_work_says_whether_it_ran) {
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, cancel_blocker, NULL), 0);
  mc__fiber_resume(f);
  mc__fiber_cancel(f);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* Either taken off the queue before it started, or run and waited for. */
  if (blocking_rc == MC_ECANCELED)
    cr_assert_not(blocking_ran);
  else
    cr_assert(blocking_rc == 0 && blocking_ran);
}

Test(fiber, sleep_outside_fiber_is_refused) {
  cr_assert_eq(mc_sleep(1), MC_ESTATE);
  cr_assert_eq(mc_run_blocking(noop, NULL), MC_ESTATE);
}

static void heavy(void *arg) {
  uint64_t *v = arg;
  for (uint64_t i = 0; i < 1000000; i++)
    *v += i;
}

static void blocker(void *arg) {
  uint64_t v = 0;
  cr_assert_eq(mc_run_blocking(heavy, &v), 0);
  *(uint64_t *)arg = v;
}

Test(fiber, run_blocking_returns_result) {
  uint64_t out = 0;
  mc_spawn(blocker, &out);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(out, 499999500000ull);
}

/* Under ASan the sanitizer's own overflow report takes the place of the
 * guard page (and would read as a failure to ctest), so the guard is tested
 * in plain builds only. */
#ifndef MICROC_SANITIZED
static int recurse(volatile char *p, int depth) {
  volatile char frame[4096];
  frame[0] = (char)depth;
  frame[4095] = *p;
  return depth > 1000000 ? frame[0] : recurse(frame, depth + 1) + frame[4095];
}

static void overflow(void *arg) {
  (void)arg;
  char c = 1;
  recurse(&c, 0);
}

Test(fiber, overflow_hits_guard_page, .signal = SIGSEGV) {
  mc_fiber *f;
  mc__fiber_new(&f, overflow, NULL);
  mc__fiber_resume(f);
  cr_assert_fail("overflow did not fault");
}
#endif

static void count_and_exit(void *arg) {
  (*(int *)arg)++;
}

Test(fiber, ten_thousand_fibers) {
  int n = 0;
  for (int i = 0; i < 10000; i++)
    cr_assert_eq(mc_spawn(count_and_exit, &n), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(n, 10000);
}

static void exit_note(void *arg) {
  cr_assert_null(mc_fiber_current(), "exit hook runs on the loop stack");
  (*(int *)arg) += 100;
}

Test(fiber, exit_hook_runs_after_finish) {
  int n = 0;
  mc_fiber *f;
  mc__fiber_new(&f, count_and_exit, &n);
  mc__fiber_on_exit(f, exit_note, &n);
  mc__fiber_resume(f);
  cr_assert_eq(n, 101);
}

static mc_waitq wq;
static int wq_results[4];
static int wq_order[4], wq_n;

static void wq_waiter(void *arg) {
  int i = (int)(intptr_t)arg;
  wq_results[i] = mc_waitq_wait(&wq, i == 3 ? 30 : MC_WAIT_FOREVER);
  wq_order[wq_n++] = i;
}

static void wq_wake_rest(uv_timer_t *t) {
  cr_assert_eq(wq_n, 2, "wake_one woke one waiter");
  cr_assert_eq(wq_order[1], 0, "wake_one takes the longest waiter");
  mc_waitq_wake_all(&wq);
  uv_close((uv_handle_t *)t, NULL);
}

static void wq_wake_first(uv_timer_t *t) {
  cr_assert_eq(wq_n, 1);
  cr_assert_eq(wq_order[0], 3, "the 30 ms timeout ends first");
  mc_waitq_wake_one(&wq);
  uv_timer_start(t, wq_wake_rest, 50, 0);
}

Test(fiber, wait_queue_wakes_and_times_out) {
  wq_n = 0;
  for (int i = 0; i < 4; i++)
    cr_assert_eq(mc_spawn(wq_waiter, (void *)(intptr_t)i), 0);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, wq_wake_first, 200, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(wq_n, 4);
  cr_assert_eq(wq_results[3], MC_ETIMEDOUT);
  for (int i = 0; i < 3; i++)
    cr_assert_eq(wq_results[i], 0);
  cr_assert(mc_waitq_empty(&wq));
}

static void wq_forever(void *arg) {
  *(int *)arg = mc_waitq_wait(&wq, MC_WAIT_FOREVER);
}

Test(fiber, cancel_all_ends_every_wait) {
  int a = 1, b = 1;
  mc_spawn(wq_forever, &a);
  mc_spawn(wq_forever, &b);
  uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(mc__sched_running(), 2);
  mc__sched_cancel_all();
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(a, MC_ECANCELED);
  cr_assert_eq(b, MC_ECANCELED);
  cr_assert_eq(mc__sched_running(), 0);
  cr_assert(mc_waitq_empty(&wq));
}

Test(fiber, wait_outside_a_fiber_is_refused) {
  cr_assert_eq(mc_waitq_wait(&wq, 1), MC_ESTATE);
}
