/* Hash maps: open addressing with linear probing and backward-shift
 * deletion (no tombstones), grown at 3/4 full. See microc/map.h. */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include "microc/map.h"

/* ---- SipHash-1-3 -------------------------------------------------------- */

static uint64_t sip_k0, sip_k1;
static uv_once_t sip_once = UV_ONCE_INIT;

static void sip_init(void) {
  uint64_t k[2];
  if (getrandom(k, sizeof k, 0) != (ssize_t)sizeof k) {
    k[0] = mc_now_ns() * 0x9E3779B97F4A7C15ull;
    k[1] = (uint64_t)(uintptr_t)&k ^ mc_wall_ms();
  }
  sip_k0 = k[0];
  sip_k1 = k[1];
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
  do {                                                                         \
    v0 += v1;                                                                  \
    v1 = ROTL(v1, 13);                                                         \
    v1 ^= v0;                                                                  \
    v0 = ROTL(v0, 32);                                                         \
    v2 += v3;                                                                  \
    v3 = ROTL(v3, 16);                                                         \
    v3 ^= v2;                                                                  \
    v0 += v3;                                                                  \
    v3 = ROTL(v3, 21);                                                         \
    v3 ^= v0;                                                                  \
    v2 += v1;                                                                  \
    v1 = ROTL(v1, 17);                                                         \
    v1 ^= v2;                                                                  \
    v2 = ROTL(v2, 32);                                                         \
  } while (0)

static uint64_t siphash13(const unsigned char *in, size_t len) {
  uint64_t v0 = 0x736f6d6570736575ull ^ sip_k0;
  uint64_t v1 = 0x646f72616e646f6dull ^ sip_k1;
  uint64_t v2 = 0x6c7967656e657261ull ^ sip_k0;
  uint64_t v3 = 0x7465646279746573ull ^ sip_k1;
  uint64_t b = (uint64_t)len << 56;
  size_t end = len - len % 8;
  for (size_t i = 0; i < end; i += 8) {
    uint64_t m;
    memcpy(&m, in + i, 8); /* little-endian hosts only, as x86_64 is */
    v3 ^= m;
    SIPROUND;
    v0 ^= m;
  }
  for (size_t i = 0; i < len % 8; i++)
    b |= (uint64_t)in[end + i] << (8 * i);
  v3 ^= b;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

static uint64_t hash_of(mc_slice key) {
  uv_once(&sip_once, sip_init);
  return siphash13((const unsigned char *)key.ptr, key.len);
}

/* ---- the table ------------------------------------------------------------
 */

void mc_map_init(mc_map *m) {
  memset(m, 0, sizeof *m);
}

void mc_map_free(mc_map *m) {
  for (size_t i = 0; i < m->cap; i++)
    free(m->slots[i].key);
  free(m->slots);
  memset(m, 0, sizeof *m);
}

static mc_map_slot *find(const mc_map *m, mc_slice key, uint64_t h) {
  if (!m->cap)
    return NULL;
  size_t mask = m->cap - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    mc_map_slot *s = &m->slots[i];
    if (!s->key)
      return NULL;
    if (s->hash == h && s->keylen == key.len &&
        (key.len == 0 || memcmp(s->key, key.ptr, key.len) == 0))
      return s;
  }
}

void *mc_map_get(const mc_map *m, mc_slice key) {
  mc_map_slot *s = find(m, key, hash_of(key));
  return s ? s->value : NULL;
}

static void place(mc_map_slot *slots, size_t cap, mc_map_slot e) {
  size_t mask = cap - 1;
  size_t i = e.hash & mask;
  while (slots[i].key)
    i = (i + 1) & mask;
  slots[i] = e;
}

static int grow(mc_map *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  mc_map_slot *slots = calloc(cap, sizeof *slots);
  if (!slots)
    return MC_ENOMEM;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key)
      place(slots, cap, m->slots[i]);
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  return 0;
}

int mc_map_put(mc_map *m, mc_slice key, void *value, void **old) {
  uint64_t h = hash_of(key);
  mc_map_slot *s = find(m, key, h);
  if (s) {
    if (old)
      *old = s->value;
    s->value = value;
    return 0;
  }
  if (old)
    *old = NULL;
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0)
    return MC_ENOMEM;
  char *k = malloc(key.len + 1);
  if (!k)
    return MC_ENOMEM;
  if (key.len)
    memcpy(k, key.ptr, key.len);
  k[key.len] = 0;
  place(m->slots, m->cap, (mc_map_slot){k, key.len, h, value});
  m->len++;
  return 0;
}

void *mc_map_del(mc_map *m, mc_slice key) {
  uint64_t h = hash_of(key);
  mc_map_slot *s = find(m, key, h);
  if (!s)
    return NULL;
  void *value = s->value;
  free(s->key);
  size_t mask = m->cap - 1;
  size_t hole = (size_t)(s - m->slots);
  /* Shift back the entries after the hole that would otherwise become
   * unreachable: those whose home slot is not between the hole and them. */
  for (size_t j = (hole + 1) & mask;; j = (j + 1) & mask) {
    mc_map_slot *e = &m->slots[j];
    if (!e->key)
      break;
    size_t home = e->hash & mask;
    bool stays =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays)
      continue;
    m->slots[hole] = *e;
    hole = j;
  }
  memset(&m->slots[hole], 0, sizeof m->slots[hole]);
  m->len--;
  return value;
}

size_t mc_map_len(const mc_map *m) {
  return m->len;
}

bool mc_map_next(const mc_map *m, size_t *it, mc_slice *key, void **value) {
  while (*it < m->cap) {
    mc_map_slot *s = &m->slots[(*it)++];
    if (s->key) {
      if (key)
        *key = (mc_slice){s->key, s->keylen};
      if (value)
        *value = s->value;
      return true;
    }
  }
  return false;
}
