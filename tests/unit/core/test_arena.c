#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "microc/core.h"

Test(arena, many_allocations_aligned) {
  mc_arena *a;
  cr_assert_eq(mc_arena_new(&a, 256, 0), 0);
  for (int i = 1; i < 2000; i++) {
    char *p = mc_arena_alloc(a, (size_t)(i % 97) + 1);
    cr_assert_not_null(p);
    cr_assert_eq((uintptr_t)p % 16, 0);
    memset(p, 0xAB, (size_t)(i % 97) + 1);
  }
  mc_arena_free(a);
}

Test(arena, limit_refuses) {
  mc_arena *a;
  cr_assert_eq(mc_arena_new(&a, 256, 1024), 0);
  cr_assert_not_null(mc_arena_alloc(a, 1000));
  cr_assert_null(mc_arena_alloc(a, 100));
  mc_arena_reset(a);
  cr_assert_not_null(mc_arena_alloc(a, 1000));
  mc_arena_free(a);
}

static int order[4];
static int norder;
static void note(void *arg) {
  order[norder++] = (int)(intptr_t)arg;
}

Test(arena, cleanups_run_in_reverse_on_reset) {
  mc_arena *a;
  mc_arena_new(&a, 0, 0);
  norder = 0;
  mc_arena_cleanup_add(a, note, (void *)1);
  mc_arena_cleanup_add(a, note, (void *)2);
  mc_arena_reset(a);
  cr_assert_eq(norder, 2);
  cr_assert_eq(order[0], 2);
  cr_assert_eq(order[1], 1);
  mc_arena_reset(a);
  cr_assert_eq(norder, 2);
  mc_arena_free(a);
}

Test(arena, strndup_and_sprintf) {
  mc_arena *a;
  mc_arena_new(&a, 0, 0);
  cr_assert_str_eq(mc_arena_strndup(a, "hello", 4), "hell");
  cr_assert_str_eq(mc_arena_sprintf(a, "%d-%s", 7, "x"), "7-x");
  /* past the one-pass buffer (256), and exactly at its edges */
  char big[1000];
  memset(big, 'q', sizeof big - 1);
  big[sizeof big - 1] = 0;
  cr_assert_str_eq(mc_arena_sprintf(a, "%s", big), big);
  for (size_t n = 254; n <= 257; n++) {
    char *p = mc_arena_sprintf(a, "%.*s", (int)n, big);
    cr_assert_eq(strlen(p), n);
  }
  mc_arena_free(a);
}
