#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "microc/core.h"

uint64_t mc_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t mc_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xoshiro256** per thread; ids and jitter need speed, not secrecy. */
static __thread uint64_t rng[4];
static __thread bool rng_seeded;

static inline uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t mc_rand64(void) {
  if (!rng_seeded) {
    if (getrandom(rng, sizeof rng, 0) != (ssize_t)sizeof rng) {
      uint64_t t = mc_now_ns();
      for (int i = 0; i < 4; i++)
        rng[i] = t * 0x9E3779B97F4A7C15ull + (uint64_t)i + (uint64_t)&rng;
    }
    rng_seeded = true;
  }
  uint64_t result = rotl(rng[1] * 5, 7) * 9;
  uint64_t t = rng[1] << 17;
  rng[2] ^= rng[0];
  rng[3] ^= rng[1];
  rng[1] ^= rng[2];
  rng[0] ^= rng[3];
  rng[2] ^= t;
  rng[3] = rotl(rng[3], 45);
  return result;
}

void mc_rand_hex(char *out, size_t n) {
  static const char hex[] = "0123456789abcdef";
  uint64_t r = 0;
  for (size_t i = 0; i < n; i++) {
    if ((i & 7) == 0)
      r = mc_rand64();
    out[2 * i] = hex[(r >> 4) & 15];
    out[2 * i + 1] = hex[r & 15];
    r >>= 8;
  }
}
