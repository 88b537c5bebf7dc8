/* Region allocator. Blocks are chained; reset keeps the first block so a
 * connection that serves many requests allocates once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "microc/core.h"

typedef struct block {
  struct block *next;
  size_t size; /* usable bytes after the header */
  size_t used;
  max_align_t data[];
} block;

typedef struct cleanup {
  struct cleanup *next;
  void (*fn)(void *);
  void *arg;
} cleanup;

struct mc_arena {
  block *head; /* current block; the first block is last in the chain */
  block *first;
  cleanup *cleanups;
  size_t limit;
  size_t handed_out;
};

#define ALIGN 16

static block *block_new(size_t size) {
  block *b = malloc(sizeof(block) + size);
  if (!b)
    return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

int mc_arena_new(mc_arena **out, size_t first_chunk, size_t limit) {
  mc_arena *a = calloc(1, sizeof *a);
  if (!a)
    return MC_ENOMEM;
  a->first = block_new(first_chunk ? first_chunk : 4096);
  if (!a->first) {
    free(a);
    return MC_ENOMEM;
  }
  a->head = a->first;
  a->limit = limit;
  *out = a;
  return 0;
}

static void run_cleanups(mc_arena *a) {
  while (a->cleanups) {
    cleanup *c = a->cleanups;
    a->cleanups = c->next;
    c->fn(c->arg);
  }
}

void mc_arena_reset(mc_arena *a) {
  run_cleanups(a);
  block *b = a->head;
  while (b != a->first) {
    block *next = b->next;
    free(b);
    b = next;
  }
  a->head = a->first;
  a->first->used = 0;
  a->handed_out = 0;
}

void mc_arena_free(mc_arena *a) {
  if (!a)
    return;
  mc_arena_reset(a);
  free(a->first);
  free(a);
}

void *mc_arena_alloc(mc_arena *a, size_t n) {
  size_t need = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  if (need < n)
    return NULL;
  if (a->limit && (need > a->limit || a->handed_out > a->limit - need))
    return NULL;
  block *b = a->head;
  if (b->size - b->used < need) {
    size_t size = b->size * 2;
    if (size < need)
      size = need;
    block *nb = block_new(size);
    if (!nb)
      return NULL;
    nb->next = a->head;
    a->head = nb;
    b = nb;
  }
  void *p = (char *)b->data + b->used;
  b->used += need;
  a->handed_out += need;
  return p;
}

void *mc_arena_calloc(mc_arena *a, size_t n) {
  void *p = mc_arena_alloc(a, n);
  if (p)
    memset(p, 0, n);
  return p;
}

char *mc_arena_strndup(mc_arena *a, const char *s, size_t n) {
  char *p = mc_arena_alloc(a, n + 1);
  if (!p)
    return NULL;
  if (n)
    memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *mc_arena_sprintf(mc_arena *a, const char *fmt, ...) {
  /* One formatting pass in the common case: into a stack buffer, then
   * copied; a second pass only for text longer than it. */
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0)
    return NULL;
  char *p = mc_arena_alloc(a, (size_t)n + 1);
  if (!p)
    return NULL;
  if ((size_t)n < sizeof small) {
    memcpy(p, small, (size_t)n + 1);
    return p;
  }
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

int mc_arena_cleanup_add(mc_arena *a, void (*fn)(void *), void *arg) {
  cleanup *c = mc_arena_alloc(a, sizeof *c);
  if (!c)
    return MC_ENOMEM;
  c->fn = fn;
  c->arg = arg;
  c->next = a->cleanups;
  a->cleanups = c;
  return 0;
}

size_t mc_arena_used(const mc_arena *a) {
  return a->handed_out;
}
