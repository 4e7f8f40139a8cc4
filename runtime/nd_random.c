/*
** nd_random.c: seeded, counter-based random numbers (see nd.h).
**
** Value i of stream s under seed k is a fixed function of (k, s, i): two
** rounds of the splitmix64 finalizer over the counter. So a chunk's numbers
** depend only on the seed and the chunk's place, not on which executor (or
** machine) makes them or in which order.
*/
#include <math.h>

#include "nd.h"

static uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double uniform(uint64_t key, uint64_t i) {
  uint64_t z = mix(key + i * UINT64_C(0x9e3779b97f4a7c15));
  z = mix(z ^ key);
  return (double)(z >> 11) * 0x1.0p-53;
}

void lask__nd_random(struct lask_nd *a, uint64_t seed, uint64_t stream,
                     int kind) {
  double *d = (double *)lask__nd_data(a);
  int64_t n = lask__nd_size(a);
  uint64_t key = mix(seed ^ mix(stream + UINT64_C(0x632be59bd9b4e019)));
  if (kind == 0) {
    for (int64_t i = 0; i < n; i++) d[i] = uniform(key, (uint64_t)i);
    return;
  }
  /* Box-Muller: a pair of uniforms per value, u1 in (0, 1]. */
  const double two_pi = 6.283185307179586476925286766559;
  for (int64_t i = 0; i < n; i++) {
    double u1 = 1.0 - uniform(key, 2 * (uint64_t)i);
    double u2 = uniform(key, 2 * (uint64_t)i + 1);
    d[i] = sqrt(-2.0 * log(u1)) * cos(two_pi * u2);
  }
}
