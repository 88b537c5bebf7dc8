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
  /* two hex digits a byte from one table load; eight bytes a draw */
  static const char pairs[] =
      "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
      "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
      "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
      "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
      "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
      "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
      "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
      "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
  uint64_t r = 0;
  for (size_t i = 0; i < n; i++) {
    if ((i & 7) == 0)
      r = mc_rand64();
    memcpy(out + 2 * i, pairs + 2 * (r & 0xff), 2);
    r >>= 8;
  }
}
