/* microc resilience: the decisions behind calls that survive failures.
 * Circuit breakers, retry budgets and backoff are plain state machines that
 * take the time as an argument: no I/O, no clock of their own, one owner
 * (they are not thread-safe). The discovery client (microc/discovery.h)
 * keeps one breaker per instance and one budget per service on each
 * thread. */
#ifndef MICROC_RESILIENCE_H
#define MICROC_RESILIENCE_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- circuit breakers ---------------------------------------------------- */

typedef enum mc_breaker_state {
  MC_BREAKER_CLOSED = 0, /* calls go through */
  MC_BREAKER_OPEN,       /* calls are refused until the open time is over */
  MC_BREAKER_HALF_OPEN,  /* a few probe calls decide: closed or open again */
} mc_breaker_state;

typedef struct mc_breaker_opts {
  uint32_t consecutive_failures; /* this many in a row opens (5) */
  double failure_ratio;      /* or this share of the window's calls... (0.5) */
  uint32_t min_calls;        /* ...once the window holds this many (10) */
  uint64_t window_ms;        /* the window (10 s, in 10 slices) */
  uint64_t open_ms;          /* first time open (5 s); doubles each reopening */
  uint64_t max_open_ms;      /* up to this (60 s) */
  uint32_t half_open_probes; /* calls let through while half-open (1) */
} mc_breaker_opts;

typedef struct mc_breaker {
  mc_breaker_opts o;
  mc_breaker_state state;
  uint32_t consecutive;
  uint32_t ok[10], failed[10]; /* per window slice */
  uint64_t slice_start;        /* start of slice `slice` */
  unsigned slice;
  uint64_t open_until;
  uint64_t open_for; /* the current open time */
  uint32_t probes;   /* half-open probes in flight */
  uint64_t opened;   /* times it has opened */
} mc_breaker;

/* opts NULL or zero fields: the defaults above. */
MC_EXTERN void mc_breaker_init(mc_breaker *b, const mc_breaker_opts *opts);
/* Whether a call may go now. While half-open, a true answer is a probe
 * that must be followed by mc_breaker_record. */
MC_EXTERN bool mc_breaker_allow(mc_breaker *b, uint64_t now_ms);
/* The outcome of an allowed call. */
MC_EXTERN void mc_breaker_record(mc_breaker *b, bool ok, uint64_t now_ms);
/* The state as of now (open turns half-open once its time is over). */
MC_EXTERN mc_breaker_state mc_breaker_state_at(mc_breaker *b, uint64_t now_ms);
MC_EXTERN const char *mc_breaker_state_name(mc_breaker_state s);

/* ---- retry budgets
 * ----------------------------------------------------------- */

/* Retries may add at most `ratio` to the load (each call earns ratio of a
 * retry), plus a small floor so that a service with little traffic can
 * still retry: the budget refills to `min_per_sec` retries each second. */
typedef struct mc_retry_budget {
  double ratio;       /* 0.2 */
  double min_per_sec; /* 10 */
  double earned;      /* from calls, up to 100 */
  double floor;       /* from time, up to min_per_sec */
  uint64_t last_ms;
  uint64_t exhausted; /* retries refused */
} mc_retry_budget;

MC_EXTERN void mc_retry_budget_init(mc_retry_budget *b, double ratio,
                                    double min_per_sec);
/* A first attempt went out. */
MC_EXTERN void mc_retry_budget_deposit(mc_retry_budget *b, uint64_t now_ms);
/* May a retry go out? Takes one retry from the budget when it may. */
MC_EXTERN bool mc_retry_budget_withdraw(mc_retry_budget *b, uint64_t now_ms);

/* ---- backoff
 * ------------------------------------------------------------------- */

/* Exponential backoff with full jitter: a random wait in
 * [0, min(cap_ms, base_ms * 2^attempt)]; attempt counts from 0. */
MC_EXTERN uint64_t mc_backoff_ms(unsigned attempt, uint64_t base_ms,
                                 uint64_t cap_ms);

#ifdef __cplusplus
}
#endif
#endif
