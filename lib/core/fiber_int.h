/* Fiber scheduler internals, shared by the HTTP server and the tests. */
#ifndef MICROC_FIBER_INT_H
#define MICROC_FIBER_INT_H

#include <uv.h>

#include "microc/fiber.h"

/* Sets up this thread's scheduler on loop. stack_size 0 picks the default
 * (256 KiB, 1 MiB under sanitizers). max_pooled: stacks kept for reuse.
 * Returns 0, MC_EEXISTS if already set up, MC_ENOMEM. */
int mc__sched_init(uv_loop_t *loop, size_t stack_size, unsigned max_pooled);
/* Releases pooled stacks. Every fiber must have finished. */
void mc__sched_close(void);
uv_loop_t *mc__sched_loop(void);

/* Creates a suspended fiber that will run fn(arg). */
int mc__fiber_new(mc_fiber **out, void (*fn)(void *), void *arg);
/* Runs f until it suspends or finishes. Must be called from the loop
 * (outside any fiber); from inside a fiber use mc__fiber_ready. A finished
 * fiber's stack goes back to the pool and f must not be used again. */
void mc__fiber_resume(mc_fiber *f);
/* Queues f to be resumed from the loop soon (safe from a fiber). */
void mc__fiber_ready(mc_fiber *f);
/* Suspends the calling fiber; someone must hold f and resume it later. */
void mc__fiber_yield(void);

/* Runs fn(arg) on the loop's stack once f has finished and its stack is
 * back in the pool: where the owner of a fiber sends its results on. */
void mc__fiber_on_exit(mc_fiber *f, void (*fn)(void *), void *arg);

/* Waiting primitives bracket their yield with these, giving a function
 * that ends the wait early (it must arrange for the fiber to be resumed,
 * once, as the normal wake-up would). */
void mc__fiber_wait_begin(void (*cancel_fn)(void *), void *arg);
void mc__fiber_wait_end(void);
/* Marks f canceled and ends its current wait, if any: the waiting call
 * returns MC_ECANCELED, and so does every later one. Safe from the loop
 * and from another fiber of the same thread. */
void mc__fiber_cancel(mc_fiber *f);

/* A fiber started to help the one that made it (a body source's pump, say)
 * that must have ended before what it works on is freed. */
typedef struct mc__helper {
  mc_fiber *fiber;  /* NULL once it has ended */
  mc_fiber *joiner; /* waits in mc__helper_join for it to end */
  bool orphaned;    /* nobody will join it: it frees its work itself */
} mc__helper;

/* Starts fn(arg) on a helper fiber; it runs once the caller yields. 0 or
 * MC_ENOMEM. */
int mc__helper_start(mc__helper *h, void (*fn)(void *), void *arg);
/* Cancels the helper (its wait ends with MC_ECANCELED) and, from another
 * fiber, waits until it has ended: returns false, the work is the
 * caller's again. From a loop callback (an arena freed outside a fiber),
 * or the helper itself, it cannot wait: the helper is marked orphaned and
 * true returned, and the work is the helper's to free when it ends. A
 * canceled caller still waits (the helper was canceled too, and ends
 * soon). */
bool mc__helper_join(mc__helper *h);
/* The helper's last call: true when it was orphaned, and must free its
 * work now. */
bool mc__helper_end(mc__helper *h);

/* Cancels every fiber alive on this thread's scheduler (a stopping
 * worker's background fibers); they unwind as their waits return
 * MC_ECANCELED. mc__sched_running tells when they are all gone. Cancel
 * functions (see mc__fiber_wait_begin) must not resume the fiber
 * synchronously. */
void mc__sched_cancel_all(void);
uint32_t mc__sched_running(void);

/* Runs fn(arg) when this thread's scheduler closes, newest first, while
 * the loop can still run close callbacks (a connection pool closes its
 * idle connections there). MC_ESTATE without a scheduler, MC_ETOOBIG. */
int mc__sched_on_close(void (*fn)(void *), void *arg);

/* Sets f's deadline outright (a request's fiber, before it starts). */
void mc__fiber_set_deadline(mc_fiber *f, uint64_t at_ns);

/* Per-fiber user data, e.g. the request a handler serves. */
void mc__fiber_set_data(mc_fiber *f, void *data);
void *mc__fiber_data(mc_fiber *f);

#endif
