/*
** hash.c: lask_hash64, a fast non-cryptographic 64-bit hash.
**
** Used as the checksum of every encoded value (it must run at memory speed:
** it touches every byte of every payload) and for pure task keys. Four
** independent 64-bit lanes consume 32-byte stripes so that the multiplies
** overlap; the tail is folded in word by word, then byte by byte, and a final
** avalanche spreads every input bit over the result. Endianness-neutral: the
** same bytes give the same hash on every host.
*/
#include <string.h>

#include "codec.h"

#define P1 0x9E3779B97F4A7C15ull
#define P2 0xD6E8FEB86659FD93ull
#define P3 0xA0761D6478BD642Full
#define P4 0xE7037ED1A0B428DBull

static inline uint64_t rotl(uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

static inline uint64_t lane(uint64_t acc, uint64_t w) {
  acc += w * P2;
  acc = rotl(acc, 29);
  return acc * P1;
}

static inline uint64_t avalanche(uint64_t h) {
  h ^= h >> 31;
  h *= P3;
  h ^= h >> 29;
  h *= P4;
  h ^= h >> 32;
  return h;
}

uint64_t lask_hash64(const void *data, size_t n, uint64_t seed) {
  const unsigned char *p = data;
  const unsigned char *end = p + n;
  uint64_t h;
  if (n >= 32) {
    uint64_t a = seed + P1 + P2, b = seed + P2, c = seed, d = seed - P1;
    do {
      a = lane(a, lask__load_le64((const uint8_t *)p));
      b = lane(b, lask__load_le64((const uint8_t *)p + 8));
      c = lane(c, lask__load_le64((const uint8_t *)p + 16));
      d = lane(d, lask__load_le64((const uint8_t *)p + 24));
      p += 32;
    } while (end - p >= 32);
    h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18);
    h = (h ^ lane(0, a)) * P1 + P4;
    h = (h ^ lane(0, b)) * P1 + P4;
    h = (h ^ lane(0, c)) * P1 + P4;
    h = (h ^ lane(0, d)) * P1 + P4;
  } else {
    h = seed + P3;
  }
  h += (uint64_t)n;
  for (; end - p >= 8; p += 8) h = rotl(h ^ lane(0, lask__load_le64((const uint8_t *)p)), 27) * P1 + P4;
  for (; p < end; p++) h = rotl(h ^ (*p * P3), 11) * P1;
  return avalanche(h);
}
