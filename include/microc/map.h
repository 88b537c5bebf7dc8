/* microc maps: a hash table from byte-string keys to pointers.
 *
 * Keys are copied in; values are the caller's. Hashing is SipHash-1-3 with
 * a key drawn at random per process, so keys chosen by a peer cannot make
 * lookups slow. Not thread-safe: one owner at a time. */
#ifndef MICROC_MAP_H
#define MICROC_MAP_H

#include "microc/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_map_slot {
  char *key; /* NULL: empty */
  size_t keylen;
  uint64_t hash;
  void *value;
} mc_map_slot;

typedef struct mc_map {
  mc_map_slot *slots;
  size_t cap; /* a power of two, or 0 */
  size_t len;
} mc_map;

/* A zeroed mc_map is an empty map; mc_map_init just zeroes it. */
MC_EXTERN void mc_map_init(mc_map *m);
/* Frees the keys and the table (not the values). */
MC_EXTERN void mc_map_free(mc_map *m);
MC_EXTERN void *mc_map_get(const mc_map *m, mc_slice key);
/* Sets key to value (replacing any). *old, if given, gets the replaced
 * value or NULL. Returns 0 or MC_ENOMEM. */
MC_EXTERN int mc_map_put(mc_map *m, mc_slice key, void *value, void **old);
/* Removes key; returns its value, or NULL when absent. */
MC_EXTERN void *mc_map_del(mc_map *m, mc_slice key);
MC_EXTERN size_t mc_map_len(const mc_map *m);
/* Walks the entries in no particular order: start with *it = 0. The map
 * must not change during a walk. */
MC_EXTERN bool mc_map_next(const mc_map *m, size_t *it, mc_slice *key,
                           void **value);

#ifdef __cplusplus
}
#endif
#endif
