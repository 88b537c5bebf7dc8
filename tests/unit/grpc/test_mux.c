/* Raw HTTP/2 exchanges (mc__h2x) sharing one connection, against a
 * listener that never answers: what ends one exchange must not reach the
 * others, nor leave anything behind (the teardown closes the loop, and the
 * sanitizer build sees what was used after it was freed). */
#include <criterion/criterion.h>
#include <uv.h>

#include "core/fiber_int.h"
#include "grpc/grpc_int.h"

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

TestSuite(h2_mux, .init = setup, .fini = teardown);

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

typedef struct exchange {
  int port;
  uint64_t timeout_ms;
  bool due; /* the fiber's deadline has passed already */
  int rc;
  bool done;
} exchange;

static void run_exchange(void *arg) {
  exchange *e = arg;
  if (e->due)
    mc_deadline_set(mc_now_ns());
  mc_arena *a;
  cr_assert_eq(mc_arena_new(&a, 0, 0), 0);
  mc__h2x_res res;
  e->rc = mc__h2x(&(mc__h2x_req){.host = MC_LIT("127.0.0.1"),
                                 .port = e->port,
                                 .method = MC_LIT("GET"),
                                 .path = MC_LIT("/"),
                                 .timeout_ms = e->timeout_ms},
                  a, &res);
  mc_arena_free(a);
  e->done = true;
}

static void start(exchange *e) {
  mc_fiber *f;
  cr_assert_eq(mc__fiber_new(&f, run_exchange, e), 0);
  mc__fiber_ready(f);
}

/* The second exchange joins the first one's connection while it still
 * connects, and ends at once (its deadline has passed): its request, still
 * queued in nghttp2, is dropped when the connection comes up, and nghttp2
 * closes that stream after the exchange is gone. The first goes on, to
 * its own timeout. */
Test(h2_mux, exchange_gone_before_its_request_went_out) {
  int port = mute_port();
  exchange first = {.port = port, .timeout_ms = 200};
  exchange gone = {.port = port, .timeout_ms = 60000, .due = true};
  start(&first);
  start(&gone);
  while (!first.done || !gone.done)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(gone.rc, MC_ETIMEDOUT, "%s", mc_err_name(gone.rc));
  cr_assert_eq(first.rc, MC_ETIMEDOUT, "%s", mc_err_name(first.rc));
  uv_close((uv_handle_t *)&mute, NULL);
}

/* Many exchanges on one connection time out together, each resetting its
 * own stream; the connection then idles in the pool until the thread's
 * scheduler closes. */
Test(h2_mux, many_exchanges_time_out_on_one_connection) {
  int port = mute_port();
  exchange e[20];
  for (int i = 0; i < 20; i++) {
    e[i] = (exchange){.port = port, .timeout_ms = 100 + 10 * (uint64_t)i};
    start(&e[i]);
  }
  for (int i = 0; i < 20; i++)
    while (!e[i].done)
      uv_run(&loop, UV_RUN_ONCE);
  for (int i = 0; i < 20; i++)
    cr_assert_eq(e[i].rc, MC_ETIMEDOUT, "%d: %s", i, mc_err_name(e[i].rc));
  uv_close((uv_handle_t *)&mute, NULL);
}

/* A listener that accepts and counts connections, and never says a word. */
static uv_tcp_t deaf;
static uv_tcp_t deaf_conns[8];
static int ndeaf;
static void on_deaf_conn(uv_stream_t *s, int status) {
  if (status != 0 || ndeaf == 8)
    return;
  uv_tcp_init(&loop, &deaf_conns[ndeaf]);
  cr_assert_eq(uv_accept(s, (uv_stream_t *)&deaf_conns[ndeaf]), 0);
  ndeaf++;
}
static int deaf_port(void) {
  ndeaf = 0;
  uv_tcp_init(&loop, &deaf);
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a);
  cr_assert_eq(uv_tcp_bind(&deaf, (struct sockaddr *)&a, 0), 0);
  cr_assert_eq(uv_listen((uv_stream_t *)&deaf, 16, on_deaf_conn), 0);
  struct sockaddr_storage ss;
  int len = sizeof ss;
  uv_tcp_getsockname(&deaf, (struct sockaddr *)&ss, &len);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A connection on which an exchange timed out with nothing heard takes no
 * new exchange: the next one opens a connection of its own (a dead peer
 * would otherwise take every call to it, to time out). */
Test(h2_mux, silent_connection_after_a_timeout_takes_no_new_exchange) {
  int port = deaf_port();
  exchange first = {.port = port, .timeout_ms = 100};
  start(&first);
  while (!first.done)
    uv_run(&loop, UV_RUN_ONCE);
  exchange next = {.port = port, .timeout_ms = 100};
  start(&next);
  while (!next.done)
    uv_run(&loop, UV_RUN_ONCE);
  int opened = ndeaf;
  /* closed before asserting: a failed assertion skips the rest, and the
   * teardown would wait for the listener forever */
  for (int i = 0; i < ndeaf; i++)
    uv_close((uv_handle_t *)&deaf_conns[i], NULL);
  uv_close((uv_handle_t *)&deaf, NULL);
  cr_assert_eq(first.rc, MC_ETIMEDOUT);
  cr_assert_eq(next.rc, MC_ETIMEDOUT);
  cr_assert_eq(opened, 2);
}
