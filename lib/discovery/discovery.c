/* Calls by service name. See microc/discovery.h.
 *
 * Per thread: a map from service name to what this thread knows of it (the
 * passing instances, each with a circuit breaker and its calls in flight;
 * a retry budget; a round-robin cursor) and a fiber per service that
 * follows the registry with blocking queries. The per-thread state is
 * freed when the thread's scheduler closes, after its fibers are gone.
 *
 * Process-wide: counters for /metrics, in a table under a mutex that the
 * call path touches only when it first meets a service or an instance; the
 * counters themselves are atomics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/fiber_int.h"
#include "grpc/grpc_int.h"
#include "microc/consul.h"
#include "microc/discovery.h"
#include "microc/log.h"
#include "microc/map.h"
#include "microc/resilience.h"

#define FIRST_LOAD_WAIT_MS 5000
#define WATCH_WAIT "55s"
#define WATCH_TIMEOUT_MS 70000

/* ---- process-wide settings and counters ------------------------------------
 */

static char *registry_url;
static mc_balancer balancer;

typedef struct stats_svc {
  uint64_t calls, retries, budget_exhausted, unavailable;
  int64_t instances; /* as the last thread to load it saw them */
} stats_svc;

typedef struct stats_inst {
  char *service, *id;
  uint64_t requests, failures, opened;
  int64_t open, half_open; /* threads whose breaker is in that state */
} stats_inst;

static uv_once_t stats_once = UV_ONCE_INIT;
static uv_mutex_t stats_lock;
static mc_map stats_svcs, stats_insts;
static int registry_up = -1; /* -1 not tried, 0 down, 1 up */
static uint64_t watch_errors;

static void stats_init(void) {
  uv_mutex_init(&stats_lock);
}

#define ADD(p, v) __atomic_add_fetch(&(p), (v), __ATOMIC_RELAXED)
#define GET(p) __atomic_load_n(&(p), __ATOMIC_RELAXED)
#define SET(p, v) __atomic_store_n(&(p), (v), __ATOMIC_RELAXED)

static stats_svc *stats_service(const char *name) {
  uv_once(&stats_once, stats_init);
  uv_mutex_lock(&stats_lock);
  stats_svc *s = mc_map_get(&stats_svcs, mc_slice_cstr(name));
  if (!s && (s = calloc(1, sizeof *s)) &&
      mc_map_put(&stats_svcs, mc_slice_cstr(name), s, NULL) != 0) {
    free(s);
    s = NULL;
  }
  uv_mutex_unlock(&stats_lock);
  return s;
}

static stats_inst *stats_instance(const char *service, const char *id) {
  char key[512];
  int n = snprintf(key, sizeof key, "%s\x1f%s", service, id);
  mc_slice k = {key, (size_t)n < sizeof key ? (size_t)n : sizeof key - 1};
  uv_once(&stats_once, stats_init);
  uv_mutex_lock(&stats_lock);
  stats_inst *s = mc_map_get(&stats_insts, k);
  if (!s && (s = calloc(1, sizeof *s))) {
    s->service = strdup(service);
    s->id = strdup(id);
    if (!s->service || !s->id || mc_map_put(&stats_insts, k, s, NULL) != 0) {
      free(s->service);
      free(s->id);
      free(s);
      s = NULL;
    }
  }
  uv_mutex_unlock(&stats_lock);
  return s;
}

int mc_balancer_parse(const char *s, mc_balancer *out) {
  if (!strcmp(s, "round-robin"))
    *out = MC_BALANCE_ROUND_ROBIN;
  else if (!strcmp(s, "least-outstanding"))
    *out = MC_BALANCE_LEAST_OUTSTANDING;
  else if (!strcmp(s, "p2c"))
    *out = MC_BALANCE_P2C;
  else
    return MC_EINVAL;
  return 0;
}

int mc_discovery_setup(const char *url, mc_balancer b) {
  char *copy = NULL;
  if (url) {
    mc_url u;
    if (mc_url_parse(mc_slice_cstr(url), &u) != 0 ||
        !mc_slice_eq_nocase(u.scheme, MC_LIT("http")))
      return MC_EINVAL;
    size_t len = strlen(url);
    while (len && url[len - 1] == '/')
      len--; /* paths are appended to it */
    if (!(copy = strndup(url, len)))
      return MC_ENOMEM;
  }
  free(registry_url);
  registry_url = copy;
  balancer = b ? b : MC_BALANCE_ROUND_ROBIN;
  return 0;
}

void mc__discovery_free(void) {
  free(registry_url);
  registry_url = NULL;
  uv_once(&stats_once, stats_init);
  uv_mutex_lock(&stats_lock);
  size_t it = 0;
  void *v;
  while (mc_map_next(&stats_svcs, &it, NULL, &v))
    free(v);
  it = 0;
  while (mc_map_next(&stats_insts, &it, NULL, &v)) {
    stats_inst *s = v;
    free(s->service);
    free(s->id);
    free(s);
  }
  mc_map_free(&stats_svcs);
  mc_map_free(&stats_insts);
  uv_mutex_unlock(&stats_lock);
}

/* ---- per thread
 * ------------------------------------------------------------------ */

typedef struct inst {
  char *id, *address;
  int port;
  char **tags;
  size_t ntags;
  mc_breaker breaker;
  mc_breaker_state shown; /* the state counted in the stats */
  uint32_t outstanding;
  bool gone; /* left the registry's answer; freed once idle */
  stats_inst *st;
} inst;

typedef struct svc {
  char *name;
  inst **v;
  size_t n, cap;
  uint64_t index;
  bool loaded;    /* the registry has answered at least once */
  bool failed;    /* the last attempt to reach it failed */
  mc_waitq ready; /* callers waiting for the first answer */
  mc_retry_budget budget;
  unsigned rr;
  stats_svc *st;
} svc;

static __thread mc_map *T;

static void inst_free(inst *i) {
  for (size_t k = 0; k < i->ntags; k++)
    free(i->tags[k]);
  free(i->tags);
  free(i->id);
  free(i->address);
  free(i);
}

/* Keeps the process-wide breaker gauges in step with this thread's view. */
static void show_state(inst *i, mc_breaker_state now) {
  if (now == i->shown || !i->st)
    return;
  if (i->shown == MC_BREAKER_OPEN)
    ADD(i->st->open, -1);
  else if (i->shown == MC_BREAKER_HALF_OPEN)
    ADD(i->st->half_open, -1);
  if (now == MC_BREAKER_OPEN)
    ADD(i->st->open, 1);
  else if (now == MC_BREAKER_HALF_OPEN)
    ADD(i->st->half_open, 1);
  i->shown = now;
}

static void inst_drop(inst *i) {
  show_state(i, MC_BREAKER_CLOSED);
  if (i->outstanding)
    i->gone = true;
  else
    inst_free(i);
}

static void thread_close(void *arg) {
  mc_map *m = arg;
  size_t it = 0;
  void *v;
  while (mc_map_next(m, &it, NULL, &v)) {
    svc *s = v;
    for (size_t i = 0; i < s->n; i++) {
      s->v[i]->outstanding = 0;
      inst_drop(s->v[i]);
    }
    free(s->v);
    free(s->name);
    free(s);
  }
  mc_map_free(m);
  free(m);
  T = NULL;
}

static int set_tags(inst *i, const mc_consul_instance *in) {
  char **tags = calloc(in->ntags ? in->ntags : 1, sizeof *tags);
  if (!tags)
    return MC_ENOMEM;
  for (size_t k = 0; k < in->ntags; k++)
    if (!(tags[k] = strdup(in->tags[k]))) {
      while (k-- > 0)
        free(tags[k]);
      free(tags);
      return MC_ENOMEM;
    }
  for (size_t k = 0; k < i->ntags; k++)
    free(i->tags[k]);
  free(i->tags);
  i->tags = tags;
  i->ntags = in->ntags;
  return 0;
}

/* Replaces the instance list with the registry's answer, keeping the
 * breakers of instances that stay. */
static void apply(svc *s, const mc_consul_instance *list, size_t n) {
  inst **next = calloc(n ? n : 1, sizeof *next);
  if (!next)
    return;
  size_t k = 0;
  for (size_t j = 0; j < n; j++) {
    inst *i = NULL;
    for (size_t o = 0; o < s->n && !i; o++)
      if (s->v[o] && !strcmp(s->v[o]->id, list[j].id)) {
        i = s->v[o];
        s->v[o] = NULL;
      }
    if (!i) {
      i = calloc(1, sizeof *i);
      if (!i || !(i->id = strdup(list[j].id))) {
        free(i);
        continue;
      }
      mc_breaker_init(&i->breaker, NULL);
      i->st = stats_instance(s->name, i->id);
    }
    if (!i->address || strcmp(i->address, list[j].address) ||
        i->port != list[j].port) {
      char *addr = strdup(list[j].address);
      if (addr) {
        free(i->address);
        i->address = addr;
      }
      i->port = list[j].port;
      mc_breaker_init(&i->breaker, NULL); /* another process now */
      show_state(i, MC_BREAKER_CLOSED);
    }
    set_tags(i, &list[j]);
    next[k++] = i;
  }
  for (size_t o = 0; o < s->n; o++)
    if (s->v[o])
      inst_drop(s->v[o]);
  free(s->v);
  s->v = next;
  s->n = k;
  s->cap = n ? n : 1;
  if (s->st)
    SET(s->st->instances, (int64_t)k);
}

static void url_encode(mc_buf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~')
      mc_buf_append_char(b, (char)c);
    else
      mc_buf_appendf(b, "%%%02X", c);
  }
}

/* Follows one service in the registry for as long as the thread runs. */
static void watch(void *arg) {
  svc *s = arg;
  unsigned fails = 0;
  mc_arena *a;
  if (mc_arena_new(&a, 8192, 0) != 0)
    return;
  mc_buf url;
  mc_buf_init(&url, 0);
  while (!mc_fiber_canceled()) {
    mc_buf_reset(&url);
    mc_buf_appendf(&url, "%s/v1/health/service/", registry_url);
    url_encode(&url, s->name);
    mc_buf_appendf(&url, "?passing&wait=%s&index=%llu", WATCH_WAIT,
                   (unsigned long long)s->index);
    mc_http_response res;
    int err = mc_http_do(
        &(mc_http_request){.url = url.ptr, .timeout_ms = WATCH_TIMEOUT_MS}, a,
        &res);
    mc_consul_instance *list = NULL;
    size_t n = 0;
    if (!err && res.status != 200)
      err = MC_EPROTO;
    if (!err)
      err = mc_consul_decode_health(res.body, a, &list, &n);
    if (err == MC_ECANCELED)
      break;
    if (err) {
      ADD(watch_errors, 1);
      if (!s->failed)
        MC_LOG(MC_LOG_WARN,
               "registry unreachable; keeping the last known instances",
               MC_LOG_CSTR("service", s->name),
               MC_LOG_CSTR("registry", registry_url),
               MC_LOG_CSTR("error", mc_strerror(err)),
               MC_LOG_INT("instances", (int64_t)s->n));
      s->failed = true;
      s->index = 0; /* once it answers again, answer at once: re-sync */
      SET(registry_up, 0);
      mc_waitq_wake_all(&s->ready);
      mc_arena_reset(a);
      if (mc_sleep(mc_backoff_ms(fails < 8 ? fails++ : fails, 250, 5000) +
                   100) != 0)
        break;
      continue;
    }
    if (s->failed)
      MC_LOG(MC_LOG_INFO, "registry reachable again",
             MC_LOG_CSTR("service", s->name));
    s->failed = false;
    fails = 0;
    SET(registry_up, 1);
    int64_t index = 0;
    mc_slice h = mc_http_header(&res, MC_LIT("x-consul-index"));
    if (mc_slice_to_i64(h, &index) != 0 || index < 0)
      index = 0;
    /* An index that goes back means a new registry: start over. */
    s->index = (uint64_t)index < s->index ? 0 : (uint64_t)index;
    apply(s, list, n);
    s->loaded = true;
    mc_waitq_wake_all(&s->ready);
    mc_arena_reset(a);
  }
  mc_buf_free(&url);
  mc_arena_free(a);
}

static svc *svc_get(const char *name) {
  if (!T) {
    mc_map *m = calloc(1, sizeof *m);
    if (!m || mc__sched_on_close(thread_close, m) != 0) {
      free(m);
      return NULL;
    }
    T = m;
  }
  svc *s = mc_map_get(T, mc_slice_cstr(name));
  if (s)
    return s;
  s = calloc(1, sizeof *s);
  if (!s || !(s->name = strdup(name))) {
    free(s);
    return NULL;
  }
  mc_retry_budget_init(&s->budget, 0.2, 10);
  s->st = stats_service(name);
  if (mc_map_put(T, mc_slice_cstr(name), s, NULL) != 0 ||
      mc_spawn(watch, s) != 0) {
    mc_map_del(T, mc_slice_cstr(name));
    free(s->name);
    free(s);
    return NULL;
  }
  return s;
}

/* ---- choosing an instance
 * ---------------------------------------------------------- */

static bool has_tag(const inst *i, const char *tag) {
  if (!tag)
    return true;
  for (size_t k = 0; k < i->ntags; k++)
    if (!strcmp(i->tags[k], tag))
      return true;
  return false;
}

static bool tried(inst *const *t, size_t n, const inst *i) {
  for (size_t k = 0; k < n; k++)
    if (t[k] == i)
      return true;
  return false;
}

/* Whether i may take a call now: not tried in this call, tagged as asked,
 * and its breaker lets calls through. */
static bool eligible(inst *i, const char *tag, inst *const *t, size_t nt,
                     uint64_t now) {
  if (!has_tag(i, tag) || tried(t, nt, i))
    return false;
  mc_breaker_state st = mc_breaker_state_at(&i->breaker, now);
  show_state(i, st);
  return !(st == MC_BREAKER_OPEN ||
           (st == MC_BREAKER_HALF_OPEN &&
            i->breaker.probes >= i->breaker.o.half_open_probes));
}

/* The balancer's choice among the eligible instances, or NULL. */
static inst *choose(svc *s, mc_balancer b, const char *tag, inst *const *t,
                    size_t nt, uint64_t now) {
  inst *best = NULL;
  if (b == MC_BALANCE_P2C) {
    /* two distinct draws among the eligible ones (reservoir sampling, one
     * pass, no allocation), then the less loaded of the two */
    inst *x = NULL, *y = NULL;
    size_t seen = 0;
    for (size_t k = 0; k < s->n; k++) {
      inst *i = s->v[k];
      if (!eligible(i, tag, t, nt, now))
        continue;
      seen++;
      if (seen == 1)
        x = i;
      else if (seen == 2)
        y = i;
      else if (mc_rand64() % seen < 2) {
        if (mc_rand64() & 1)
          x = i;
        else
          y = i;
      }
    }
    if (!y || (x && (x->outstanding < y->outstanding ||
                     (x->outstanding == y->outstanding && (mc_rand64() & 1)))))
      return x;
    return y;
  }
  size_t start = s->rr++;
  for (size_t k = 0; k < s->n; k++) {
    inst *i = s->v[(start + k) % s->n];
    if (!eligible(i, tag, t, nt, now))
      continue;
    if (!best || (b == MC_BALANCE_LEAST_OUTSTANDING &&
                  i->outstanding < best->outstanding))
      best = i;
    if (b == MC_BALANCE_ROUND_ROBIN)
      break;
  }
  return best;
}

/* The next instance to call, skipping those already tried in this call
 * and those whose breaker is open. NULL when there is none. */
static inst *pick(svc *s, mc_balancer b, const char *tag, inst *const *t,
                  size_t nt, uint64_t now) {
  for (int round = 0; round < 2; round++) {
    inst *best = choose(s, b, tag, t, nt, now);
    if (best && mc_breaker_allow(&best->breaker, now))
      return best;
    if (!best)
      return NULL;
  }
  return NULL;
}

/* ---- calls
 * ----------------------------------------------------------------------------
 */

static bool retryable(int err, int status, bool idempotent) {
  if (err == MC_ECONNREFUSED)
    return true; /* the request never left: safe whatever the method */
  if (!idempotent)
    return false;
  if (err)
    return err == MC_ECONNRESET || err == MC_ECLOSED || err == MC_ETIMEDOUT ||
           err == MC_EPROTO;
  return status == 502 || status == 503 || status == 504;
}

/* The caller's body source, seen through one that notes whether it was
 * ever read: a call may be tried again only if not. In the arena, since
 * an HTTP/2 exchange may go on reading it after the call returns. */
typedef struct watched_source {
  mc_body_source src;
  const mc_body_source *inner;
  bool read;
} watched_source;

static int watched_read(void *ud, mc_slice *chunk) {
  watched_source *w = ud;
  w->read = true;
  return w->inner->read(w->inner->ud, chunk);
}

int mc_call_service(const mc_call *c, mc_arena *a, mc_http_response *res) {
  memset(res, 0, sizeof *res);
  if (!mc_fiber_current() || !registry_url || !c->service)
    return MC_ESTATE;
  svc *s = svc_get(c->service);
  if (!s)
    return MC_ENOMEM;
  /* The first call waits for the registry's first answer. */
  uint64_t wait_until = mc_now_ns() + FIRST_LOAD_WAIT_MS * 1000000ull;
  uint64_t dl = mc_deadline();
  if (dl && dl < wait_until)
    wait_until = dl;
  while (!s->loaded && !s->failed) {
    uint64_t now = mc_now_ns();
    if (now >= wait_until)
      break;
    int werr = mc_waitq_wait(&s->ready, (wait_until - now) / 1000000 + 1);
    if (werr == MC_ECANCELED)
      return werr;
  }
  const char *method = c->method ? c->method : "GET";
  bool idempotent = c->idempotent || mc_http_idempotent(mc_slice_cstr(method));
  int attempts = c->max_attempts > 0 ? c->max_attempts : idempotent ? 3 : 2;
  if (attempts > 8)
    attempts = 8;
  if (s->st)
    ADD(s->st->calls, 1);
  uint64_t now_ms = mc_now_ns() / 1000000;
  mc_retry_budget_deposit(&s->budget, now_ms);
  watched_source *ws = NULL;
  if (c->body_source) {
    if (!(ws = mc_arena_alloc(a, sizeof *ws)))
      return MC_ENOMEM;
    *ws = (watched_source){
        {watched_read, ws, c->body_source->length}, c->body_source, false};
  }
  inst *t[8];
  size_t nt = 0;
  int err = MC_EUNAVAILABLE;
  for (int attempt = 0; attempt < attempts; attempt++) {
    now_ms = mc_now_ns() / 1000000;
    inst *i =
        pick(s, c->balancer ? c->balancer : balancer, c->tag, t, nt, now_ms);
    if (!i) {
      if (attempt == 0) {
        err = MC_EUNAVAILABLE;
        if (s->st)
          ADD(s->st->unavailable, 1);
      } else if (c->stream) { /* the answer before was closed to retry */
        err = MC_EUNAVAILABLE;
      }
      break;
    }
    uint64_t per = c->timeout_ms ? c->timeout_ms : 10000;
    if (c->deadline_ns) { /* the call's own deadline, tighter still */
      uint64_t now = mc_now_ns();
      if (now >= c->deadline_ns) { /* (a streamed answer before: closed) */
        if (!attempt || c->stream)
          err = MC_ETIMEDOUT;
        break;
      }
      uint64_t left = (c->deadline_ns - now + 999999) / 1000000;
      if (left < per)
        per = left;
    }
    t[nt++] = i;
    i->outstanding++;
    if (i->st)
      ADD(i->st->requests, 1);
    if (c->h2) {
      mc__h2x_res x;
      err =
          mc__h2x(&(mc__h2x_req){.host = mc_slice_cstr(i->address),
                                 .port = i->port,
                                 .method = mc_slice_cstr(method),
                                 .path = mc_slice_cstr(c->path ? c->path : "/"),
                                 .headers = c->headers,
                                 .nheaders = c->nheaders,
                                 .body = c->body,
                                 .body_source = ws ? &ws->src : NULL,
                                 .stream = c->stream,
                                 .timeout_ms = per,
                                 .max_response = c->max_body},
                  a, &x);
      if (!err)
        *res = (mc_http_response){.status = x.status,
                                  .headers = x.headers,
                                  .nheaders = x.nheaders,
                                  .body = x.body,
                                  .trailers = x.trailers,
                                  .ntrailers = x.ntrailers,
                                  .stream = x.stream};
    } else {
      err = mc_http_do(
          &(mc_http_request){.method = method,
                             .host = mc_slice_cstr(i->address),
                             .port = i->port,
                             .target = mc_slice_cstr(c->path ? c->path : "/"),
                             .headers = c->headers,
                             .nheaders = c->nheaders,
                             .body = c->body,
                             .body_source = ws ? &ws->src : NULL,
                             .stream = c->stream,
                             .timeout_ms = per,
                             .max_body = c->max_body,
                             .user_agent = c->user_agent},
          a, res);
    }
    i->outstanding--;
    bool ok = !err && res->status < 500;
    if (err != MC_ECANCELED && err != MC_EINVAL && !i->gone) {
      mc_breaker_record(&i->breaker, ok, mc_now_ns() / 1000000);
      mc_breaker_state st =
          mc_breaker_state_at(&i->breaker, mc_now_ns() / 1000000);
      if (st == MC_BREAKER_OPEN && i->shown != MC_BREAKER_OPEN) {
        if (i->st)
          ADD(i->st->opened, 1);
        MC_LOG(MC_LOG_WARN, "circuit breaker opened",
               MC_LOG_CSTR("service", s->name), MC_LOG_CSTR("instance", i->id));
      } else if (st == MC_BREAKER_CLOSED && i->shown != MC_BREAKER_CLOSED) {
        MC_LOG(MC_LOG_INFO, "circuit breaker closed",
               MC_LOG_CSTR("service", s->name), MC_LOG_CSTR("instance", i->id));
      }
      show_state(i, st);
    }
    if (!ok && i->st)
      ADD(i->st->failures, 1);
    if (c->served_by && c->served_by_cap)
      snprintf(c->served_by, c->served_by_cap, "%s", i->id);
    bool gone = i->gone && !i->outstanding;
    if (gone) {
      for (size_t k = 0; k < nt; k++)
        if (t[k] == i)
          t[k] = NULL; /* freed below; never compared again */
      inst_free(i);
    }
    if (ok || !retryable(err, res->status, idempotent) || (ws && ws->read) ||
        attempt + 1 >= attempts || mc_fiber_canceled())
      break;
    uint64_t pause = mc_backoff_ms((unsigned)attempt, 25, 1000);
    uint64_t fdl = mc_deadline(), then = mc_now_ns() + pause * 1000000;
    if ((fdl && then >= fdl) || (c->deadline_ns && then >= c->deadline_ns))
      break; /* no time left for another attempt */
    if (!mc_retry_budget_withdraw(&s->budget, mc_now_ns() / 1000000)) {
      if (s->st)
        ADD(s->st->budget_exhausted, 1);
      break;
    }
    if (s->st)
      ADD(s->st->retries, 1);
    /* A streamed answer given up on is closed, its connection with it;
     * the last one tried stays the caller's. */
    mc_http_close(res);
    if (mc_sleep(pause) != 0) {
      if (c->stream) /* the answer it had is closed */
        err = MC_ECANCELED;
      break;
    }
  }
  return err;
}

/* ---- metrics
 * -------------------------------------------------------------------------- */

static void label(mc_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      mc_buf_append_char(b, '\\');
    if (*s == '\n') {
      mc_buf_append_cstr(b, "\\n");
      continue;
    }
    mc_buf_append_char(b, *s);
  }
}

int mc_discovery_metrics(mc_buf *b) {
  if (!registry_url)
    return 0;
  uv_once(&stats_once, stats_init);
  uv_mutex_lock(&stats_lock);
  int up = GET(registry_up);
  mc_buf_appendf(b,
                 "# HELP microc_registry_up Whether the registry answered "
                 "the last watch (-1: not asked yet).\n"
                 "# TYPE microc_registry_up gauge\nmicroc_registry_up %d\n"
                 "# HELP microc_registry_watch_errors_total Watches that "
                 "failed to reach the registry.\n"
                 "# TYPE microc_registry_watch_errors_total counter\n"
                 "microc_registry_watch_errors_total %llu\n",
                 up, (unsigned long long)GET(watch_errors));
  static const char *const svc_metrics[][2] = {
      {"microc_upstream_instances", "gauge"},
      {"microc_upstream_calls_total", "counter"},
      {"microc_upstream_retries_total", "counter"},
      {"microc_upstream_retry_budget_exhausted_total", "counter"},
      {"microc_upstream_unavailable_total", "counter"},
  };
  for (size_t m = 0; m < MC_COUNT(svc_metrics); m++) {
    mc_buf_appendf(b, "# TYPE %s %s\n", svc_metrics[m][0], svc_metrics[m][1]);
    size_t it = 0;
    mc_slice name;
    void *v;
    while (mc_map_next(&stats_svcs, &it, &name, &v)) {
      stats_svc *s = v;
      uint64_t val = m == 0   ? (uint64_t)GET(s->instances)
                     : m == 1 ? GET(s->calls)
                     : m == 2 ? GET(s->retries)
                     : m == 3 ? GET(s->budget_exhausted)
                              : GET(s->unavailable);
      mc_buf_appendf(b, "%s{service=\"", svc_metrics[m][0]);
      label(b, name.ptr);
      mc_buf_appendf(b, "\"} %llu\n", (unsigned long long)val);
    }
  }
  static const char *const inst_metrics[][2] = {
      {"microc_upstream_requests_total", "counter"},
      {"microc_upstream_failures_total", "counter"},
      {"microc_breaker_opened_total", "counter"},
      {"microc_breaker_open", "gauge"},
      {"microc_breaker_half_open", "gauge"},
  };
  for (size_t m = 0; m < MC_COUNT(inst_metrics); m++) {
    mc_buf_appendf(b, "# TYPE %s %s\n", inst_metrics[m][0], inst_metrics[m][1]);
    size_t it = 0;
    void *v;
    while (mc_map_next(&stats_insts, &it, NULL, &v)) {
      stats_inst *s = v;
      int64_t val = m == 0   ? (int64_t)GET(s->requests)
                    : m == 1 ? (int64_t)GET(s->failures)
                    : m == 2 ? (int64_t)GET(s->opened)
                    : m == 3 ? GET(s->open)
                             : GET(s->half_open);
      mc_buf_appendf(b, "%s{service=\"", inst_metrics[m][0]);
      label(b, s->service);
      mc_buf_append_cstr(b, "\",instance=\"");
      label(b, s->id);
      mc_buf_appendf(b, "\"} %lld\n", (long long)val);
    }
  }
  uv_mutex_unlock(&stats_lock);
  return 0;
}
