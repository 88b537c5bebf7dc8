#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "microc/map.h"

Test(map, put_get_replace_delete) {
  mc_map m;
  mc_map_init(&m);
  int a = 1, b = 2;
  void *old;
  cr_assert_eq(mc_map_put(&m, MC_LIT("alpha"), &a, &old), 0);
  cr_assert_null(old);
  cr_assert_eq(mc_map_get(&m, MC_LIT("alpha")), &a);
  cr_assert_null(mc_map_get(&m, MC_LIT("alph")));
  cr_assert_eq(mc_map_put(&m, MC_LIT("alpha"), &b, &old), 0);
  cr_assert_eq(old, &a);
  cr_assert_eq(mc_map_len(&m), 1);
  cr_assert_eq(mc_map_put(&m, MC_LIT(""), &a, NULL), 0, "empty keys work");
  cr_assert_eq(mc_map_get(&m, MC_LIT("")), &a);
  cr_assert_eq(mc_map_del(&m, MC_LIT("alpha")), &b);
  cr_assert_null(mc_map_del(&m, MC_LIT("alpha")));
  cr_assert_eq(mc_map_len(&m), 1);
  mc_map_free(&m);
}

/* Random operations against a brute-force reference: deletions in a
 * crowded table exercise the backward shift. */
Test(map, matches_a_reference_under_churn) {
  enum { KEYS = 600, OPS = 200000 };
  static int present[KEYS];
  static int values[KEYS];
  mc_map m;
  mc_map_init(&m);
  srand(12345);
  char key[32];
  for (int op = 0; op < OPS; op++) {
    int k = rand() % KEYS;
    int n = snprintf(key, sizeof key, "key-%d", k);
    mc_slice ks = {key, (size_t)n};
    switch (rand() % 3) {
    case 0:
      values[k] = op;
      cr_assert_eq(mc_map_put(&m, ks, &values[k], NULL), 0);
      present[k] = 1;
      break;
    case 1:
      cr_assert_eq(mc_map_del(&m, ks), present[k] ? &values[k] : NULL);
      present[k] = 0;
      break;
    default:
      cr_assert_eq(mc_map_get(&m, ks), present[k] ? &values[k] : NULL,
                   "op %d key %d", op, k);
    }
  }
  size_t count = 0;
  for (int k = 0; k < KEYS; k++)
    count += (size_t)present[k];
  cr_assert_eq(mc_map_len(&m), count);
  size_t it = 0, walked = 0;
  mc_slice k;
  void *v;
  while (mc_map_next(&m, &it, &k, &v)) {
    int idx = atoi(k.ptr + 4);
    cr_assert(present[idx]);
    cr_assert_eq(v, &values[idx]);
    walked++;
  }
  cr_assert_eq(walked, count);
  mc_map_free(&m);
}
