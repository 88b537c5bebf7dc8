/* Circuit breakers, retry budgets and backoff. See microc/resilience.h. */
#include <string.h>

#include "microc/resilience.h"

#define SLICES 10

/* ---- circuit breakers ---------------------------------------------------- */

void mc_breaker_init(mc_breaker *b, const mc_breaker_opts *opts) {
  memset(b, 0, sizeof *b);
  if (opts)
    b->o = *opts;
  if (!b->o.consecutive_failures)
    b->o.consecutive_failures = 5;
  if (b->o.failure_ratio <= 0 || b->o.failure_ratio > 1)
    b->o.failure_ratio = 0.5;
  if (!b->o.min_calls)
    b->o.min_calls = 10;
  if (!b->o.window_ms)
    b->o.window_ms = 10000;
  if (!b->o.open_ms)
    b->o.open_ms = 5000;
  if (!b->o.max_open_ms)
    b->o.max_open_ms = 60000;
  if (b->o.max_open_ms < b->o.open_ms)
    b->o.max_open_ms = b->o.open_ms;
  if (!b->o.half_open_probes)
    b->o.half_open_probes = 1;
  b->open_for = b->o.open_ms;
}

const char *mc_breaker_state_name(mc_breaker_state s) {
  switch (s) {
  case MC_BREAKER_CLOSED:
    return "closed";
  case MC_BREAKER_OPEN:
    return "open";
  case MC_BREAKER_HALF_OPEN:
    return "half_open";
  }
  return "closed";
}

/* Moves the window on to now, clearing the slices that fell out of it. */
static void advance(mc_breaker *b, uint64_t now) {
  uint64_t width = b->o.window_ms / SLICES ? b->o.window_ms / SLICES : 1;
  if (now < b->slice_start + width)
    return;
  uint64_t steps = (now - b->slice_start) / width;
  if (steps >= SLICES) {
    memset(b->ok, 0, sizeof b->ok);
    memset(b->failed, 0, sizeof b->failed);
    b->slice = 0;
    b->slice_start = now;
    return;
  }
  for (uint64_t i = 0; i < steps; i++) {
    b->slice = (b->slice + 1) % SLICES;
    b->ok[b->slice] = b->failed[b->slice] = 0;
  }
  b->slice_start += steps * width;
}

mc_breaker_state mc_breaker_state_at(mc_breaker *b, uint64_t now) {
  if (b->state == MC_BREAKER_OPEN && now >= b->open_until) {
    b->state = MC_BREAKER_HALF_OPEN;
    b->probes = 0;
  }
  return b->state;
}

static void trip(mc_breaker *b, uint64_t now) {
  b->state = MC_BREAKER_OPEN;
  b->open_until = now + b->open_for;
  b->opened++;
  b->consecutive = 0;
  b->probes = 0;
  memset(b->ok, 0, sizeof b->ok);
  memset(b->failed, 0, sizeof b->failed);
}

bool mc_breaker_allow(mc_breaker *b, uint64_t now) {
  switch (mc_breaker_state_at(b, now)) {
  case MC_BREAKER_CLOSED:
    return true;
  case MC_BREAKER_OPEN:
    return false;
  case MC_BREAKER_HALF_OPEN:
    if (b->probes >= b->o.half_open_probes)
      return false;
    b->probes++;
    return true;
  }
  return true;
}

void mc_breaker_record(mc_breaker *b, bool ok, uint64_t now) {
  mc_breaker_state st = mc_breaker_state_at(b, now);
  if (st == MC_BREAKER_HALF_OPEN) {
    if (b->probes)
      b->probes--;
    if (ok) {
      /* recovered: closed, and the next trip starts short again */
      b->state = MC_BREAKER_CLOSED;
      b->open_for = b->o.open_ms;
      b->consecutive = 0;
      b->slice_start = now;
    } else {
      b->open_for = b->open_for * 2 > b->o.max_open_ms ? b->o.max_open_ms
                                                       : b->open_for * 2;
      trip(b, now);
    }
    return;
  }
  if (st == MC_BREAKER_OPEN)
    return; /* a call that started before the trip */
  advance(b, now);
  if (ok) {
    b->ok[b->slice]++;
    b->consecutive = 0;
    return;
  }
  b->failed[b->slice]++;
  b->consecutive++;
  uint32_t calls = 0, failed = 0;
  for (int i = 0; i < SLICES; i++) {
    calls += b->ok[i] + b->failed[i];
    failed += b->failed[i];
  }
  if (b->consecutive >= b->o.consecutive_failures ||
      (calls >= b->o.min_calls &&
       (double)failed >= b->o.failure_ratio * (double)calls))
    trip(b, now);
}

/* ---- retry budgets
 * ------------------------------------------------------------ */

#define EARNED_MAX 100.0

void mc_retry_budget_init(mc_retry_budget *b, double ratio,
                          double min_per_sec) {
  memset(b, 0, sizeof *b);
  b->ratio = ratio >= 0 ? ratio : 0.2;
  b->min_per_sec = min_per_sec >= 0 ? min_per_sec : 10;
  b->floor = b->min_per_sec;
}

static void refill(mc_retry_budget *b, uint64_t now) {
  if (!b->last_ms || now < b->last_ms) {
    b->last_ms = now;
    return;
  }
  b->floor += (double)(now - b->last_ms) / 1000.0 * b->min_per_sec;
  if (b->floor > b->min_per_sec)
    b->floor = b->min_per_sec;
  b->last_ms = now;
}

void mc_retry_budget_deposit(mc_retry_budget *b, uint64_t now) {
  refill(b, now);
  b->earned += b->ratio;
  if (b->earned > EARNED_MAX)
    b->earned = EARNED_MAX;
}

bool mc_retry_budget_withdraw(mc_retry_budget *b, uint64_t now) {
  refill(b, now);
  if (b->earned >= 1) {
    b->earned -= 1;
    return true;
  }
  if (b->floor >= 1) {
    b->floor -= 1;
    return true;
  }
  b->exhausted++;
  return false;
}

/* ---- backoff
 * ------------------------------------------------------------------- */

uint64_t mc_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t cap_ms) {
  uint64_t top = base_ms;
  for (unsigned i = 0; i < attempt && top < cap_ms; i++)
    top *= 2;
  if (top > cap_ms)
    top = cap_ms;
  return top ? mc_rand64() % (top + 1) : 0;
}
