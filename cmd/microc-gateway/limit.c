/* Token buckets, one per key, shared by the worker threads under one lock
 * (a lookup and a few arithmetic operations: far shorter than a request).
 * The table is capped: when full, buckets that have filled up again are
 * dropped (forgetting a full bucket changes nothing); a key that still
 * finds no room is let through rather than refused. */
#include <stdlib.h>
#include <uv.h>

#include "gateway.h"
#include <microc/map.h>

typedef struct bucket {
  double tokens;
  uint64_t at_ns; /* when tokens was computed */
  double rate, burst;
} bucket;

struct gw_limiter {
  uv_mutex_t lock;
  mc_map buckets;
  size_t max_keys;
};

int gw_limiter_new(gw_limiter **out, size_t max_keys) {
  gw_limiter *l = calloc(1, sizeof *l);
  if (!l)
    return MC_ENOMEM;
  if (uv_mutex_init(&l->lock) != 0) {
    free(l);
    return MC_ESYS;
  }
  l->max_keys = max_keys ? max_keys : 100000;
  *out = l;
  return 0;
}

void gw_limiter_free(gw_limiter *l) {
  if (!l)
    return;
  size_t it = 0;
  void *v;
  while (mc_map_next(&l->buckets, &it, NULL, &v))
    free(v);
  mc_map_free(&l->buckets);
  uv_mutex_destroy(&l->lock);
  free(l);
}

static void refill(bucket *b, uint64_t now_ns) {
  if (now_ns > b->at_ns) {
    b->tokens += (double)(now_ns - b->at_ns) / 1e9 * b->rate;
    if (b->tokens > b->burst)
      b->tokens = b->burst;
  }
  b->at_ns = now_ns;
}

/* Drops the buckets that are full again. */
static void sweep(gw_limiter *l, uint64_t now_ns) {
  mc_slice keys[256];
  size_t n;
  do {
    n = 0;
    size_t it = 0;
    mc_slice k;
    void *v;
    while (n < MC_COUNT(keys) && mc_map_next(&l->buckets, &it, &k, &v)) {
      bucket *b = v;
      refill(b, now_ns);
      if (b->tokens >= b->burst)
        keys[n++] = k;
    }
    for (size_t i = 0; i < n; i++)
      free(mc_map_del(&l->buckets, keys[i]));
  } while (n == MC_COUNT(keys));
}

bool gw_limiter_take(gw_limiter *l, mc_slice key, double rate, double burst,
                     uint64_t now_ns, double *retry_s) {
  *retry_s = 0;
  uv_mutex_lock(&l->lock);
  bucket *b = mc_map_get(&l->buckets, key);
  if (!b) {
    if (mc_map_len(&l->buckets) >= l->max_keys)
      sweep(l, now_ns);
    if (mc_map_len(&l->buckets) >= l->max_keys || !(b = malloc(sizeof *b))) {
      uv_mutex_unlock(&l->lock);
      return true;
    }
    *b = (bucket){burst, now_ns, rate, burst};
    if (mc_map_put(&l->buckets, key, b, NULL) != 0) {
      free(b);
      uv_mutex_unlock(&l->lock);
      return true;
    }
  }
  /* a reloaded route may bring other figures */
  b->rate = rate;
  b->burst = burst;
  refill(b, now_ns);
  bool ok = b->tokens >= 1;
  if (ok)
    b->tokens -= 1;
  else
    *retry_s = (1 - b->tokens) / rate;
  uv_mutex_unlock(&l->lock);
  return ok;
}

size_t gw_limiter_keys(gw_limiter *l) {
  uv_mutex_lock(&l->lock);
  size_t n = mc_map_len(&l->buckets);
  uv_mutex_unlock(&l->lock);
  return n;
}
