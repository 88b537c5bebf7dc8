/* mc_grpc_health_check on a real loop, against sockets that refuse, say
 * nothing, or are canceled mid-call. (Talking to a real gRPC server is for
 * tests/integration/test_grpc_health.py.) The teardown closes the loop:
 * a handle left open by a call fails it. */
#include <criterion/criterion.h>
#include <string.h>
#include <uv.h>

#include "core/fiber_int.h"
#include "microc/grpc.h"

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

TestSuite(grpc_call, .init = setup, .fini = teardown);

typedef struct probe {
  const char *host;
  int port;
  const char *service;
  uint64_t timeout_ms;
  int rc, status, serving;
  char msg[128];
  bool done;
} probe;

static void run_probe(void *arg) {
  probe *p = arg;
  p->rc = mc_grpc_health_check(mc_slice_cstr(p->host), p->port,
                               mc_slice_cstr(p->service), p->timeout_ms,
                               &p->status, &p->serving, p->msg, sizeof p->msg);
  p->done = true;
}

static mc_fiber *start(probe *p) {
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, run_probe, p), 0);
  mc__fiber_ready(f);
  return f;
}

/* A port nobody listens on: bind, read the port, close. */
static int dead_port(void) {
  uv_tcp_t t;
  uv_tcp_init(&loop, &t);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  cr_assert_eq(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&t, (struct sockaddr *)&ss, &len);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A listener that never accepts: connects succeed (the kernel completes
 * them into the backlog) and nothing is ever said. */
static uv_tcp_t mute;
static void on_conn(uv_stream_t *s, int status) {}
static int mute_port(void) {
  uv_tcp_init(&loop, &mute);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  cr_assert_eq(uv_tcp_bind(&mute, (struct sockaddr *)&a, 0), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&mute, 16, on_conn), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&mute, (struct sockaddr *)&ss, &len);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

Test(grpc_call, outside_a_fiber_is_a_state_error) {
  int status = 7, serving = 7;
  char msg[64];
  cr_assert_eq(mc_grpc_health_check(MC_LIT("127.0.0.1"), 1, MC_LIT(""), 100,
                                    &status, &serving, msg, sizeof msg),
               MC_ESTATE);
  cr_assert_eq(status, -1);
  cr_assert_eq(serving, 0);
  cr_assert_str_eq(msg, "not called from a fiber");
}

Test(grpc_call, refused) {
  probe p = {.host = "127.0.0.1",
             .port = dead_port(),
             .service = "",
             .timeout_ms = 2000};
  start(&p);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert(p.done);
  cr_assert_eq(p.rc, MC_ECONNREFUSED, "%s: %s", mc_err_name(p.rc), p.msg);
  cr_assert_eq(p.status, -1);
  cr_assert_str_eq(p.msg, mc_strerror(MC_ECONNREFUSED));
}

Test(grpc_call, bad_arguments) {
  const struct {
    const char *host;
    int port;
  } bad[] = {{"", 80},    {"127.0.0.1", 0}, {"127.0.0.1", 65536},
             {"a b", 80}, {"[::1]", 80},    {"h/x", 80}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    probe p = {.host = bad[i].host, .port = bad[i].port, .service = ""};
    start(&p);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(p.rc, MC_EINVAL, "%s:%d", bad[i].host, bad[i].port);
  }
}

typedef struct nul_probe {
  int rc;
} nul_probe;
static void run_nul_probe(void *arg) {
  int st, sv;
  ((nul_probe *)arg)->rc = mc_grpc_health_check(
      MC_LIT("127.0.0.1"), 1, (mc_slice){"a\0b", 3}, 100, &st, &sv, NULL, 0);
}

Test(grpc_call, service_with_a_nul_is_refused) {
  nul_probe p = {0};
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, run_nul_probe, &p), 0);
  mc__fiber_ready(f);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.rc, MC_EINVAL);
}

Test(grpc_call, silence_times_out) {
  probe p = {.host = "localhost",
             .port = mute_port(),
             .service = "x",
             .timeout_ms = 150};
  start(&p);
  uint64_t t0 = mc_now_ns();
  while (!p.done)
    uv_run(&loop, UV_RUN_ONCE);
  uint64_t ms = (mc_now_ns() - t0) / 1000000;
  cr_assert_eq(p.rc, MC_ETIMEDOUT, "%s: %s", mc_err_name(p.rc), p.msg);
  cr_assert_geq(ms, 140);
  cr_assert_str_eq(p.msg, mc_strerror(MC_ETIMEDOUT));
  uv_close((uv_handle_t *)&mute, NULL);
}

/* The fiber's deadline ends the call too, when it comes first. */
static void run_with_deadline(void *arg) {
  mc_deadline_set(mc_now_ns() + 100 * 1000000ull);
  run_probe(arg);
}

Test(grpc_call, fiber_deadline_times_out) {
  probe p = {.host = "127.0.0.1",
             .port = mute_port(),
             .service = "",
             .timeout_ms = 60000};
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, run_with_deadline, &p), 0);
  mc__fiber_ready(f);
  while (!p.done)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(p.rc, MC_ETIMEDOUT);
  uv_close((uv_handle_t *)&mute, NULL);
}

static mc_fiber *to_cancel;
static void cancel_now(uv_timer_t *t) {
  mc__fiber_cancel(to_cancel);
  uv_close((uv_handle_t *)t, NULL);
}

Test(grpc_call, cancel_mid_call_returns_and_frees) {
  probe p = {.host = "127.0.0.1",
             .port = mute_port(),
             .service = "",
             .timeout_ms = 60000};
  to_cancel = start(&p);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, cancel_now, 100, 0);
  while (!p.done)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(p.rc, MC_ECANCELED, "%s", mc_err_name(p.rc));
  cr_assert_eq(p.status, -1);
  uv_close((uv_handle_t *)&mute, NULL);
}

static void run_canceled_first(void *arg) {
  mc__fiber_cancel(mc_fiber_current());
  run_probe(arg);
}

Test(grpc_call, canceled_fiber_does_not_start_a_call) {
  probe p = {.host = "127.0.0.1", .port = 1, .service = "", .timeout_ms = 100};
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, run_canceled_first, &p), 0);
  mc__fiber_ready(f);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(p.rc, MC_ECANCELED);
}
