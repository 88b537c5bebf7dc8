/* Fibers: a per-thread scheduler, pooled stacks with guard pages, and a
 * context switch that saves only the callee-saved registers (ucontext's
 * swapcontext makes a sigprocmask system call on every switch). */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fiber_int.h"

#if defined(__SANITIZE_ADDRESS__)
#define MC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_ASAN 1
#endif
#endif

#ifdef MC_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define STACK_DEFAULT (1024 * 1024)
#else
#define STACK_DEFAULT (256 * 1024)
#endif

/* ---- context switch --------------------------------------------------- */

#if defined(__x86_64__)
typedef struct {
  void *sp;
} ctx_t;

void mc__ctx_switch(ctx_t *from, ctx_t *to);
void mc__ctx_boot(void);

/* Saves rbp, rbx, r12-r15, MXCSR and the x87 control word on the current
 * stack, stores the stack pointer in from->sp and restores all of it from
 * to->sp. A new fiber's stack is laid out so that the final ret lands in
 * mc__ctx_boot with the fiber in r12 and its entry function in r13. */
__asm__(".text\n"
        ".globl mc__ctx_switch\n"
        ".hidden mc__ctx_switch\n"
        ".type mc__ctx_switch,@function\n"
        "mc__ctx_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  subq $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  fnstcw 4(%rsp)\n"
        "  movq %rsp, (%rdi)\n"
        "  movq (%rsi), %rsp\n"
        "  ldmxcsr (%rsp)\n"
        "  fldcw 4(%rsp)\n"
        "  addq $8, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size mc__ctx_switch,.-mc__ctx_switch\n"
        ".globl mc__ctx_boot\n"
        ".hidden mc__ctx_boot\n"
        ".type mc__ctx_boot,@function\n"
        "mc__ctx_boot:\n"
        "  movq %r12, %rdi\n"
        "  callq *%r13\n"
        "  ud2\n"
        ".size mc__ctx_boot,.-mc__ctx_boot\n");

static void ctx_make(ctx_t *c, char *stack_top, void (*entry)(void *),
                     void *arg) {
  uint64_t *sp = (uint64_t *)((uintptr_t)stack_top & ~(uintptr_t)15);
  *--sp = (uint64_t)(uintptr_t)mc__ctx_boot; /* return address */
  *--sp = 0;                                 /* rbp */
  *--sp = 0;                                 /* rbx */
  *--sp = (uint64_t)(uintptr_t)arg;          /* r12 */
  *--sp = (uint64_t)(uintptr_t)entry;        /* r13 */
  *--sp = 0;                                 /* r14 */
  *--sp = 0;                                 /* r15 */
  *--sp = 0x037F00001F80ull; /* MXCSR default, x87 control word default */
  c->sp = sp;
}
#define CTX_SWITCH(from, to) mc__ctx_switch(from, to)
#else
#include <ucontext.h>
typedef ucontext_t ctx_t;
static void (*boot_entry)(void *);
static void *boot_arg;
static void ctx_boot(void) {
  boot_entry(boot_arg);
}
static void ctx_make(ctx_t *c, char *stack_top, void (*entry)(void *),
                     void *arg, char *stack_bottom) {
  getcontext(c);
  c->uc_stack.ss_sp = stack_bottom;
  c->uc_stack.ss_size = (size_t)(stack_top - stack_bottom);
  c->uc_link = NULL;
  boot_entry = entry;
  boot_arg = arg;
  makecontext(c, ctx_boot, 0);
}
#define CTX_SWITCH(from, to) swapcontext(from, to)
#endif

/* ---- scheduler -------------------------------------------------------- */

struct mc_fiber {
  ctx_t ctx;
  void (*fn)(void *);
  void *arg;
  void *data;
  char *map; /* mmap'd region: guard page, then the stack */
  size_t map_len;
  char *bottom; /* lowest usable stack byte */
  size_t size;  /* usable bytes */
  bool done;
  bool canceled;
  uint64_t deadline; /* mc_now_ns() instant; 0: none */
  /* While the fiber waits: how to end the wait early (mc__fiber_cancel). */
  void (*cancel_fn)(void *);
  void *cancel_arg;
  void (*on_exit)(void *);
  void *on_exit_arg;
  mc_fiber *next;                  /* pool or ready queue link */
  mc_fiber *live_prev, *live_next; /* every fiber alive on the scheduler */
#ifdef MC_ASAN
  void *fake_stack;
#endif
};

typedef struct sched {
  uv_loop_t *loop;
  ctx_t main_ctx;
  mc_fiber *current;
  mc_fiber *pool;
  unsigned npooled, max_pooled;
  size_t stack_size;
  size_t page;
  uint64_t created;
  uint32_t running;
  mc_fiber *ready_head, *ready_tail;
  mc_fiber *live;
  struct {
    void (*fn)(void *);
    void *arg;
  } close_hooks[8];
  unsigned nclose_hooks;
  uv_idle_t ready_idle;
#ifdef MC_ASAN
  void *main_fake_stack;
  const void *main_bottom;
  size_t main_size;
#endif
} sched;

static __thread sched *S;

/* Guard-page faults are reported before the process dies, so that an
 * overflow reads as one. The handler runs on its own signal stack. */
static __thread char *guard_lo, *guard_hi;

#ifndef MC_ASAN /* ASan reports stack overflows itself */
static void on_segv(int sig, siginfo_t *si, void *uctx) {
  (void)uctx;
  char *addr = si->si_addr;
  if (guard_lo && addr >= guard_lo && addr < guard_hi) {
    static const char msg[] =
        "microc: fiber stack overflow (fault in the guard page); raise the "
        "fiber stack size\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
  }
  signal(sig, SIG_DFL); /* the faulting instruction runs again and kills us */
}
#endif

static void install_overflow_report(void) {
#ifndef MC_ASAN /* ASan reports stack overflows itself */
  static __thread char altstack[16384];
  stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
  sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  struct sigaction old;
  if (sigaction(SIGSEGV, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    sigaction(SIGSEGV, &sa, NULL);
#endif
}

static void on_ready_idle(uv_idle_t *h);

int mc__sched_init(uv_loop_t *loop, size_t stack_size, unsigned max_pooled) {
  if (S)
    return MC_EEXISTS;
  sched *s = calloc(1, sizeof *s);
  if (!s)
    return MC_ENOMEM;
  s->loop = loop;
  s->page = (size_t)sysconf(_SC_PAGESIZE);
  if (!stack_size)
    stack_size = STACK_DEFAULT;
  s->stack_size = (stack_size + s->page - 1) & ~(s->page - 1);
  s->max_pooled = max_pooled ? max_pooled : 256;
  uv_idle_init(loop, &s->ready_idle);
  S = s;
  install_overflow_report();
  return 0;
}

static void fiber_unmap(mc_fiber *f) {
  munmap(f->map, f->map_len);
}

static void sched_free(uv_handle_t *h) {
  free(h->data);
}

void mc__sched_close(void) {
  sched *s = S;
  if (!s)
    return;
  while (s->nclose_hooks > 0) {
    s->nclose_hooks--;
    s->close_hooks[s->nclose_hooks].fn(s->close_hooks[s->nclose_hooks].arg);
  }
  while (s->pool) {
    mc_fiber *f = s->pool;
    s->pool = f->next;
    fiber_unmap(f);
  }
  S = NULL;
  s->ready_idle.data = s;
  uv_close((uv_handle_t *)&s->ready_idle, sched_free);
}

uv_loop_t *mc__sched_loop(void) {
  return S ? S->loop : NULL;
}

mc_fiber *mc_fiber_current(void) {
  return S ? S->current : NULL;
}

static void fiber_main(void *arg);

int mc__fiber_new(mc_fiber **out, void (*fn)(void *), void *arg) {
  sched *s = S;
  if (!s)
    return MC_ESTATE;
  mc_fiber *f = s->pool;
  if (f) {
    s->pool = f->next;
    s->npooled--;
#ifdef MC_ASAN
    ASAN_UNPOISON_MEMORY_REGION(f->bottom, f->size);
#endif
  } else {
    /* The fiber's own header lives at the top of its stack mapping. */
    size_t len = s->stack_size + s->page;
    char *map =
        mmap(NULL, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (map == MAP_FAILED)
      return MC_ENOMEM;
    if (mprotect(map, s->page, PROT_NONE) != 0) {
      munmap(map, len);
      return MC_ENOMEM;
    }
    char *top = map + len;
    f = (mc_fiber *)(top - ((sizeof(mc_fiber) + 63) & ~(size_t)63));
    f->map = map;
    f->map_len = len;
    f->bottom = map + s->page;
    f->size = (size_t)((char *)f - f->bottom);
  }
  f->fn = fn;
  f->arg = arg;
  f->data = NULL;
  f->on_exit = NULL;
  f->done = false;
  f->canceled = false;
  f->deadline = 0;
  f->cancel_fn = NULL;
  f->next = NULL;
#if defined(__x86_64__)
  ctx_make(&f->ctx, (char *)f, fiber_main, f);
#else
  ctx_make(&f->ctx, (char *)f, fiber_main, f, f->bottom);
#endif
  s->created++;
  s->running++;
  f->live_prev = NULL;
  f->live_next = s->live;
  if (s->live)
    s->live->live_prev = f;
  s->live = f;
  *out = f;
  return 0;
}

static void fiber_release(sched *s, mc_fiber *f) {
  s->running--;
  if (f->live_prev)
    f->live_prev->live_next = f->live_next;
  else
    s->live = f->live_next;
  if (f->live_next)
    f->live_next->live_prev = f->live_prev;
  if (s->npooled < s->max_pooled) {
    f->next = s->pool;
    s->pool = f;
    s->npooled++;
  } else {
    fiber_unmap(f);
  }
}

static void fiber_main(void *arg) {
  mc_fiber *f = arg;
#ifdef MC_ASAN
  __sanitizer_finish_switch_fiber(NULL, &S->main_bottom, &S->main_size);
#endif
  f->fn(f->arg);
  f->done = true;
  sched *s = S;
#ifdef MC_ASAN
  __sanitizer_start_switch_fiber(NULL, s->main_bottom, s->main_size);
#endif
  CTX_SWITCH(&f->ctx, &s->main_ctx);
  abort(); /* a finished fiber is never resumed */
}

void mc__fiber_resume(mc_fiber *f) {
  sched *s = S;
  if (s->current) { /* not from a fiber: queue it instead */
    mc__fiber_ready(f);
    return;
  }
  s->current = f;
  guard_lo = f->map;
  guard_hi = f->bottom;
#ifdef MC_ASAN
  __sanitizer_start_switch_fiber(&s->main_fake_stack, f->bottom, f->size);
#endif
  CTX_SWITCH(&s->main_ctx, &f->ctx);
#ifdef MC_ASAN
  __sanitizer_finish_switch_fiber(s->main_fake_stack, NULL, NULL);
#endif
  s->current = NULL;
  guard_lo = guard_hi = NULL;
  if (f->done) {
    void (*on_exit)(void *) = f->on_exit;
    void *on_exit_arg = f->on_exit_arg;
    fiber_release(s, f);
    if (on_exit)
      on_exit(on_exit_arg);
  }
}

void mc__fiber_yield(void) {
  sched *s = S;
  mc_fiber *f = s->current;
#ifdef MC_ASAN
  __sanitizer_start_switch_fiber(&f->fake_stack, s->main_bottom, s->main_size);
#endif
  CTX_SWITCH(&f->ctx, &s->main_ctx);
#ifdef MC_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &s->main_bottom,
                                  &s->main_size);
#endif
}

static void on_ready_idle(uv_idle_t *h) {
  sched *s = S;
  (void)h;
  mc_fiber *list = s->ready_head;
  s->ready_head = s->ready_tail = NULL;
  uv_idle_stop(&s->ready_idle);
  while (list) {
    mc_fiber *f = list;
    list = f->next;
    f->next = NULL;
    mc__fiber_resume(f);
  }
}

void mc__fiber_ready(mc_fiber *f) {
  sched *s = S;
  f->next = NULL;
  if (s->ready_tail)
    s->ready_tail->next = f;
  else
    s->ready_head = f;
  s->ready_tail = f;
  uv_idle_start(&s->ready_idle, on_ready_idle);
}

void mc__fiber_on_exit(mc_fiber *f, void (*fn)(void *), void *arg) {
  f->on_exit = fn;
  f->on_exit_arg = arg;
}

void mc__fiber_wait_begin(void (*cancel_fn)(void *), void *arg) {
  mc_fiber *f = S->current;
  f->cancel_fn = cancel_fn;
  f->cancel_arg = arg;
}

void mc__fiber_wait_end(void) {
  S->current->cancel_fn = NULL;
}

void mc__fiber_cancel(mc_fiber *f) {
  if (f->done || f->canceled)
    return;
  f->canceled = true;
  void (*fn)(void *) = f->cancel_fn;
  f->cancel_fn = NULL;
  if (fn)
    fn(f->cancel_arg);
}

void mc__sched_cancel_all(void) {
  sched *s = S;
  if (!s)
    return;
  /* Cancel functions never resume synchronously, so the list holds. */
  for (mc_fiber *f = s->live; f; f = f->live_next)
    mc__fiber_cancel(f);
}

uint32_t mc__sched_running(void) {
  return S ? S->running : 0;
}

uint64_t mc_deadline(void) {
  return S && S->current ? S->current->deadline : 0;
}

void mc_deadline_set(uint64_t at_ns) {
  mc_fiber *f = S ? S->current : NULL;
  if (f && at_ns && (!f->deadline || at_ns < f->deadline))
    f->deadline = at_ns;
}

void mc__fiber_set_deadline(mc_fiber *f, uint64_t at_ns) {
  f->deadline = at_ns;
}

int mc__sched_on_close(void (*fn)(void *), void *arg) {
  sched *s = S;
  if (!s)
    return MC_ESTATE;
  if (s->nclose_hooks == sizeof s->close_hooks / sizeof s->close_hooks[0])
    return MC_ETOOBIG;
  s->close_hooks[s->nclose_hooks].fn = fn;
  s->close_hooks[s->nclose_hooks].arg = arg;
  s->nclose_hooks++;
  return 0;
}

bool mc_fiber_canceled(void) {
  return S && S->current && S->current->canceled;
}

void mc__fiber_set_data(mc_fiber *f, void *data) {
  f->data = data;
}
void *mc__fiber_data(mc_fiber *f) {
  return f->data;
}

/* ---- waiting ---------------------------------------------------------- */

static void wake_fiber_close(uv_handle_t *h) {
  mc__fiber_resume(h->data);
}
static void wake_fiber_timer(uv_timer_t *t) {
  uv_close((uv_handle_t *)t, wake_fiber_close);
}

static void cancel_sleep(void *arg) {
  uv_timer_t *t = arg;
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, wake_fiber_close);
}

int mc_sleep(uint64_t ms) {
  sched *s = S;
  if (!s || !s->current)
    return MC_ESTATE;
  mc_fiber *f = s->current;
  /* libuv's loop clock is coarse (it may lag by a few milliseconds), so
   * check the precise clock on waking and sleep the rest: a sleep never
   * ends early. */
  uint64_t until = mc_now_ns() + ms * 1000000u;
  for (;;) {
    if (f->canceled)
      return MC_ECANCELED;
    uint64_t now = mc_now_ns();
    if (now >= until && ms)
      return 0;
    uint64_t left = ms ? (until - now + 999999u) / 1000000u : 0;
    /* The timer lives on this fiber's stack, which stays put while the
     * fiber is suspended; we resume only after libuv has closed it. */
    uv_timer_t t;
    uv_update_time(s->loop);
    uv_timer_init(s->loop, &t);
    t.data = f;
    uv_timer_start(&t, wake_fiber_timer, left, 0);
    mc__fiber_wait_begin(cancel_sleep, &t);
    mc__fiber_yield();
    mc__fiber_wait_end();
    if (!ms)
      return f->canceled ? MC_ECANCELED : 0; /* mc_sleep(0): one loop turn */
  }
}

typedef struct {
  uv_work_t req;
  void (*fn)(void *);
  void *arg;
  mc_fiber *fiber;
  int status;
} blocking_job;

static void blocking_work(uv_work_t *w) {
  blocking_job *j = w->data;
  j->fn(j->arg);
}

static void blocking_done(uv_work_t *w, int status) {
  blocking_job *j = w->data;
  j->status = status;
  mc__fiber_resume(j->fiber);
}

/* Work not yet started is taken off the queue; work already running on a
 * pool thread cannot be interrupted and is waited for. */
static void cancel_blocking(void *arg) {
  blocking_job *j = arg;
  uv_cancel((uv_req_t *)&j->req);
}

int mc_run_blocking(void (*fn)(void *), void *arg) {
  sched *s = S;
  if (!s || !s->current)
    return MC_ESTATE;
  if (s->current->canceled)
    return MC_ECANCELED;
  blocking_job j = {.fn = fn, .arg = arg, .fiber = s->current};
  j.req.data = &j;
  if (uv_queue_work(s->loop, &j.req, blocking_work, blocking_done) != 0)
    return MC_ESYS;
  mc__fiber_wait_begin(cancel_blocking, &j);
  mc__fiber_yield();
  mc__fiber_wait_end();
  return j.status == UV_ECANCELED ? MC_ECANCELED : 0;
}

/* ---- wait queues ------------------------------------------------------ */

typedef struct waiter {
  struct waiter *prev, *next;
  mc_waitq *q;
  mc_fiber *fiber;
  uv_timer_t timer; /* every wake-up path ends by closing it */
  int result;
  bool queued;
} waiter;

static void waiter_unlink(waiter *w) {
  mc_waitq *q = w->q;
  if (w->prev)
    w->prev->next = w->next;
  else
    q->head_ = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    q->tail_ = w->prev;
  w->queued = false;
}

/* A wake-up stops the timer and queues the fiber, so waiters resume in the
 * order they were woken; the fiber closes the timer itself once it runs. */
static void waiter_finish(waiter *w, int result) {
  if (!w->queued)
    return;
  waiter_unlink(w);
  w->result = result;
  uv_timer_stop(&w->timer);
  mc__fiber_ready(w->fiber);
}

static void waiter_closed(uv_handle_t *h) {
  waiter *w = h->data;
  mc__fiber_resume(w->fiber);
}

static void waiter_timeout(uv_timer_t *t) {
  waiter_finish(t->data, MC_ETIMEDOUT);
}

static void waiter_cancel(void *arg) {
  waiter_finish(arg, MC_ECANCELED);
}

int mc_waitq_wait(mc_waitq *q, uint64_t timeout_ms) {
  sched *s = S;
  if (!s || !s->current)
    return MC_ESTATE;
  if (s->current->canceled)
    return MC_ECANCELED;
  waiter w = {.q = q, .fiber = s->current, .queued = true};
  w.prev = q->tail_;
  if (q->tail_)
    ((waiter *)q->tail_)->next = &w;
  else
    q->head_ = &w;
  q->tail_ = &w;
  uv_timer_init(s->loop, &w.timer);
  w.timer.data = &w;
  if (timeout_ms != MC_WAIT_FOREVER) {
    uv_update_time(s->loop);
    uv_timer_start(&w.timer, waiter_timeout, timeout_ms, 0);
  }
  mc__fiber_wait_begin(waiter_cancel, &w);
  mc__fiber_yield();
  mc__fiber_wait_end();
  /* The timer lives in this frame: wait for libuv to let go of it. */
  uv_close((uv_handle_t *)&w.timer, waiter_closed);
  mc__fiber_yield();
  return w.result;
}

void mc_waitq_wake_one(mc_waitq *q) {
  if (q->head_)
    waiter_finish(q->head_, 0);
}

void mc_waitq_wake_all(mc_waitq *q) {
  while (q->head_)
    waiter_finish(q->head_, 0);
}

bool mc_waitq_empty(const mc_waitq *q) {
  return q->head_ == NULL;
}

int mc__helper_start(mc__helper *h, void (*fn)(void *), void *arg) {
  h->joiner = NULL;
  h->orphaned = false;
  int err = mc__fiber_new(&h->fiber, fn, arg);
  if (err)
    return err;
  mc__fiber_ready(h->fiber);
  return 0;
}

bool mc__helper_join(mc__helper *h) {
  if (!h->fiber)
    return false;
  mc__fiber_cancel(h->fiber); /* ends its wait, ours or another's */
  if (!h->fiber)
    return false;
  mc_fiber *self = mc_fiber_current();
  if (!self || self == h->fiber) {
    h->orphaned = true;
    return true;
  }
  h->joiner = self;
  while (h->fiber) {
    mc__fiber_wait_begin(NULL, NULL);
    mc__fiber_yield();
    mc__fiber_wait_end();
  }
  h->joiner = NULL;
  return false;
}

bool mc__helper_end(mc__helper *h) {
  h->fiber = NULL;
  if (h->joiner) {
    mc__fiber_ready(h->joiner);
    return false;
  }
  return h->orphaned;
}

int mc_spawn(void (*fn)(void *), void *arg) {
  if (!S)
    return MC_ESTATE;
  mc_fiber *f;
  int err = mc__fiber_new(&f, fn, arg);
  if (err)
    return err;
  mc__fiber_ready(f);
  return 0;
}

void mc_fiber_stats_get(mc_fiber_stats *out) {
  memset(out, 0, sizeof *out);
  if (!S)
    return;
  out->created = S->created;
  out->running = S->running;
  out->pooled = S->npooled;
  out->stack_size = S->stack_size - ((sizeof(mc_fiber) + 63) & ~(size_t)63);
}
