/* Request metrics: each worker counts into its own arrays (no locks, no
 * atomic read-modify-write on the hot path); a scrape sums the workers.
 * Counters are written with relaxed atomic stores by their one owner and
 * read with relaxed atomic loads by the scraper. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/server_int.h"
#include "microc/discovery.h"

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                   0.025,  0.05,  0.1,    0.25,  0.5,
                                   1,      2.5,   5,      10};
#define NBUCKETS (sizeof bucket_le / sizeof bucket_le[0])

/* Status codes we count individually; anything else counts under its
 * class's first code (e.g. 499 as 400) so the table stays bounded. */
static const int tracked_status[] = {
    100, 101, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400,
    401, 402, 403, 404, 405, 406, 408, 409, 410, 411, 412, 413, 414, 415,
    417, 422, 425, 428, 429, 431, 500, 501, 502, 503, 504, 505};
#define NSTATUS (sizeof tracked_status / sizeof tracked_status[0])

typedef struct mc__metrics {
  size_t nroutes;   /* app routes + 1 for "no route" */
  uint64_t *counts; /* [route][method][status] */
  uint64_t *hist;   /* [route][method][NBUCKETS + 1] cumulative later */
  uint64_t *sum_ns; /* [route][method] */
} mc__metrics;

static int status_slot(int status) {
  for (size_t i = 0; i < NSTATUS; i++)
    if (tracked_status[i] == status)
      return (int)i;
  int cls = status / 100 * 100;
  for (size_t i = 0; i < NSTATUS; i++)
    if (tracked_status[i] == cls)
      return (int)i;
  return 0;
}

int mc__metrics_worker_init(mc__worker *w) {
  mc__metrics *m = calloc(1, sizeof *m);
  if (!m)
    return MC_ENOMEM;
  m->nroutes = w->srv->app->nroutes + 1;
  size_t rm = m->nroutes * MC__M_COUNT;
  m->counts = calloc(rm * NSTATUS, sizeof(uint64_t));
  m->hist = calloc(rm * (NBUCKETS + 1), sizeof(uint64_t));
  m->sum_ns = calloc(rm, sizeof(uint64_t));
  w->metrics = m;
  if (!m->counts || !m->hist || !m->sum_ns)
    return MC_ENOMEM;
  return 0;
}

void mc__metrics_worker_free(mc__worker *w) {
  mc__metrics *m = w->metrics;
  if (!m)
    return;
  free(m->counts);
  free(m->hist);
  free(m->sum_ns);
  free(m);
  w->metrics = NULL;
}

static inline void bump(uint64_t *p, uint64_t by) {
  __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + by,
                   __ATOMIC_RELAXED);
}

static inline uint64_t rd(const uint64_t *p) {
  return __atomic_load_n(p, __ATOMIC_RELAXED);
}

void mc__metrics_observe(mc_req *req, uint64_t ns) {
  mc__metrics *m = req->worker->metrics;
  size_t route = req->match.entry ? req->match.entry->index : m->nroutes - 1;
  size_t rmi = route * MC__M_COUNT + (size_t)req->method_index;
  bump(&m->counts[rmi * NSTATUS + (size_t)status_slot(req->status)], 1);
  double s = (double)ns / 1e9;
  size_t b = 0;
  while (b < NBUCKETS && s > bucket_le[b])
    b++;
  bump(&m->hist[rmi * (NBUCKETS + 1) + b], 1);
  bump(&m->sum_ns[rmi], ns);
}

static void label_value(mc_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\\' || *s == '"')
      mc_buf_append_char(b, '\\');
    if (*s == '\n') {
      mc_buf_append_cstr(b, "\\n");
      continue;
    }
    mc_buf_append_char(b, *s);
  }
}

static void route_labels(mc_buf *b, mc_app *app, size_t route, size_t method) {
  mc_buf_append_cstr(b, "route=\"");
  label_value(b, route < app->nroutes ? app->routes[route]->path : "");
  mc_buf_appendf(b, "\",method=\"%s\"", mc__method_names[method]);
}

static uint64_t proc_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long size = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%lu %lu", &size, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

int mc__metrics_render(mc_app *app, mc_buf *b) {
  mc__server *srv = app->server;
  if (!srv)
    return MC_ESTATE;
  size_t nr = srv->workers[0].metrics->nroutes;
  size_t rm = nr * MC__M_COUNT;
  /* Sum the workers into scratch arrays first. */
  uint64_t *counts = calloc(rm * NSTATUS, sizeof(uint64_t));
  uint64_t *hist = calloc(rm * (NBUCKETS + 1), sizeof(uint64_t));
  uint64_t *sum = calloc(rm, sizeof(uint64_t));
  if (!counts || !hist || !sum) {
    free(counts);
    free(hist);
    free(sum);
    return MC_ENOMEM;
  }
  uint64_t inflight = 0, conns = 0, accepted = 0, rejected = 0, accept_err = 0;
  uint64_t fib_created = 0, fib_running = 0, fib_pooled = 0;
  for (int w = 0; w < srv->nworkers; w++) {
    mc__worker *wk = &srv->workers[w];
    mc__metrics *m = wk->metrics;
    for (size_t i = 0; i < rm * NSTATUS; i++)
      counts[i] += rd(&m->counts[i]);
    for (size_t i = 0; i < rm * (NBUCKETS + 1); i++)
      hist[i] += rd(&m->hist[i]);
    for (size_t i = 0; i < rm; i++)
      sum[i] += rd(&m->sum_ns[i]);
    inflight += __atomic_load_n(&wk->in_flight, __ATOMIC_RELAXED);
    conns += __atomic_load_n(&wk->nconns, __ATOMIC_RELAXED);
    accepted += __atomic_load_n(&wk->accepted, __ATOMIC_RELAXED);
    rejected += __atomic_load_n(&wk->rejected, __ATOMIC_RELAXED);
    accept_err += __atomic_load_n(&wk->accept_errors, __ATOMIC_RELAXED);
    mc_fiber_stats fs;
    memcpy(&fs, &wk->fstats, sizeof fs);
    fib_created += fs.created;
    fib_running += fs.running;
    fib_pooled += fs.pooled;
  }

  mc_buf_append_cstr(b, "# HELP http_requests_total Requests answered, by "
                        "route, method and status.\n"
                        "# TYPE http_requests_total counter\n");
  for (size_t r = 0; r < nr; r++)
    for (size_t m = 0; m < MC__M_COUNT; m++)
      for (size_t s = 0; s < NSTATUS; s++) {
        uint64_t v = counts[(r * MC__M_COUNT + m) * NSTATUS + s];
        if (!v)
          continue;
        mc_buf_append_cstr(b, "http_requests_total{");
        route_labels(b, app, r, m);
        mc_buf_appendf(b, ",status=\"%d\"} %llu\n", tracked_status[s],
                       (unsigned long long)v);
      }
  mc_buf_append_cstr(b, "# HELP http_request_duration_seconds Time from the "
                        "request head to the answer.\n"
                        "# TYPE http_request_duration_seconds histogram\n");
  for (size_t r = 0; r < nr; r++)
    for (size_t m = 0; m < MC__M_COUNT; m++) {
      const uint64_t *h = &hist[(r * MC__M_COUNT + m) * (NBUCKETS + 1)];
      uint64_t total = 0;
      for (size_t k = 0; k <= NBUCKETS; k++)
        total += h[k];
      if (!total)
        continue;
      uint64_t cum = 0;
      for (size_t k = 0; k <= NBUCKETS; k++) {
        cum += h[k];
        mc_buf_append_cstr(b, "http_request_duration_seconds_bucket{");
        route_labels(b, app, r, m);
        if (k < NBUCKETS)
          mc_buf_appendf(b, ",le=\"%g\"} %llu\n", bucket_le[k],
                         (unsigned long long)cum);
        else
          mc_buf_appendf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
      }
      mc_buf_append_cstr(b, "http_request_duration_seconds_sum{");
      route_labels(b, app, r, m);
      mc_buf_appendf(b, "} %.9f\n", (double)sum[r * MC__M_COUNT + m] / 1e9);
      mc_buf_append_cstr(b, "http_request_duration_seconds_count{");
      route_labels(b, app, r, m);
      mc_buf_appendf(b, "} %llu\n", (unsigned long long)total);
    }
  mc_buf_appendf(
      b,
      "# HELP http_requests_in_flight Requests being handled now.\n"
      "# TYPE http_requests_in_flight gauge\n"
      "http_requests_in_flight %llu\n"
      "# HELP http_connections_open Client connections open now.\n"
      "# TYPE http_connections_open gauge\n"
      "http_connections_open %llu\n"
      "# HELP http_connections_accepted_total Connections accepted.\n"
      "# TYPE http_connections_accepted_total counter\n"
      "http_connections_accepted_total %llu\n"
      "# HELP http_connections_rejected_total Connections refused at the "
      "--max-connections cap.\n"
      "# TYPE http_connections_rejected_total counter\n"
      "http_connections_rejected_total %llu\n"
      "# HELP http_accept_errors_total accept() failures (such as running out "
      "of descriptors).\n"
      "# TYPE http_accept_errors_total counter\n"
      "http_accept_errors_total %llu\n"
      "# HELP microc_fibers_running Fibers alive (running or suspended), as of "
      "the last tick.\n"
      "# TYPE microc_fibers_running gauge\n"
      "microc_fibers_running %llu\n"
      "# HELP microc_fibers_pooled Fiber stacks waiting for reuse.\n"
      "# TYPE microc_fibers_pooled gauge\n"
      "microc_fibers_pooled %llu\n"
      "# HELP microc_fibers_created_total Fibers started.\n"
      "# TYPE microc_fibers_created_total counter\n"
      "microc_fibers_created_total %llu\n"
      "# HELP microc_workers Worker threads, each with its own loop.\n"
      "# TYPE microc_workers gauge\n"
      "microc_workers %d\n"
      "# HELP process_resident_memory_bytes Resident memory size.\n"
      "# TYPE process_resident_memory_bytes gauge\n"
      "process_resident_memory_bytes %llu\n",
      (unsigned long long)inflight, (unsigned long long)conns,
      (unsigned long long)accepted, (unsigned long long)rejected,
      (unsigned long long)accept_err, (unsigned long long)fib_running,
      (unsigned long long)fib_pooled, (unsigned long long)fib_created,
      srv->nworkers, (unsigned long long)proc_rss_bytes());
  free(counts);
  free(hist);
  free(sum);
  mc_discovery_metrics(b);
  for (size_t i = 0; i < app->nmetrics; i++) {
    int err = app->metrics[i].fn(app, b, app->metrics[i].ud);
    if (err)
      return err;
  }
  return 0;
}
