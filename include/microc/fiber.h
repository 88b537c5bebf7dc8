/* microc fibers: handlers are written as straight-line code and run on
 * fibers. Anything that waits (a sleep, an outbound call, a query, work sent
 * to the thread pool) suspends the fiber, never the thread: the worker's
 * event loop goes on serving other requests meanwhile.
 *
 * Fibers belong to the thread (worker) that created them and never migrate.
 * Stacks come from a per-thread pool; each has a guard page below it, so an
 * overflow faults at once instead of corrupting memory. */
#ifndef MICROC_FIBER_H
#define MICROC_FIBER_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_fiber mc_fiber;

/* The fiber running on this thread, or NULL on a loop callback. */
MC_EXTERN mc_fiber *mc_fiber_current(void);

/* Suspends the calling fiber for at least ms milliseconds; mc_sleep(0)
 * lets the loop turn once. Returns 0, MC_ECANCELED when the fiber was
 * canceled (the server is shutting down past its deadline), or MC_ESTATE
 * when called outside a fiber. */
MC_EXTERN int mc_sleep(uint64_t ms);

/* Runs fn(arg) on libuv's thread pool and suspends the calling fiber until
 * it has returned. fn must not touch the loop or the fiber's other state.
 * Returns 0; MC_ECANCELED if the fiber was canceled before fn started (fn
 * then never runs; once started it is always waited for); MC_ESTATE outside
 * a fiber; MC_ESYS if the work could not be queued. */
MC_EXTERN int mc_run_blocking(void (*fn)(void *arg), void *arg);

/* Starts fn(arg) on a new fiber of this thread's scheduler. It begins
 * running once the caller suspends or returns to the loop. Returns 0,
 * MC_ESTATE if this thread has no scheduler, MC_ENOMEM. */
MC_EXTERN int mc_spawn(void (*fn)(void *arg), void *arg);

/* Whether the calling fiber has been canceled: every wait it starts now
 * returns MC_ECANCELED at once. Handlers that loop without waiting may
 * check this to give up early. */
MC_EXTERN bool mc_fiber_canceled(void);

/* The calling fiber's deadline, an mc_now_ns() instant, or 0 for none. A
 * handler's fiber has its request's deadline; outbound calls made on the
 * fiber end by it, and tell the callee how much time is left. */
MC_EXTERN uint64_t mc_deadline(void);
/* Narrows the calling fiber's deadline to at_ns; a later instant than the
 * current deadline is ignored, so callees never get more time than their
 * caller. */
MC_EXTERN void mc_deadline_set(uint64_t at_ns);

/* A queue of fibers waiting for something to happen on their thread (a
 * change a blocking query waits for, say). Zero-initialize it; it must stay
 * put while fibers wait on it, and only fibers of one thread may use it. */
typedef struct mc_waitq {
  void *head_, *tail_;
} mc_waitq;

#define MC_WAIT_FOREVER UINT64_MAX

/* Suspends the calling fiber until a wake call reaches it or timeout_ms
 * passes (MC_WAIT_FOREVER: no timeout). Returns 0 when woken, MC_ETIMEDOUT,
 * MC_ECANCELED, or MC_ESTATE outside a fiber. */
MC_EXTERN int mc_waitq_wait(mc_waitq *q, uint64_t timeout_ms);
/* Wakes the longest waiter, or every waiter. Callable from fibers and loop
 * callbacks of the queue's thread; the woken run once the caller yields. */
MC_EXTERN void mc_waitq_wake_one(mc_waitq *q);
MC_EXTERN void mc_waitq_wake_all(mc_waitq *q);
MC_EXTERN bool mc_waitq_empty(const mc_waitq *q);

/* Counters for /metrics, for the calling thread's scheduler. */
typedef struct mc_fiber_stats {
  uint64_t created;  /* fibers started since the scheduler began */
  uint32_t running;  /* alive now: running or suspended */
  uint32_t pooled;   /* stacks waiting in the pool for reuse */
  size_t stack_size; /* usable bytes per stack */
} mc_fiber_stats;

MC_EXTERN void mc_fiber_stats_get(mc_fiber_stats *out);

#ifdef __cplusplus
}
#endif
#endif
