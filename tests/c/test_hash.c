/*
** test_hash.c: tests of lask_hash64 (runtime/hash.c), the checksum of every
** encoded value: stable results, sensitivity to the seed, to the length and
** to every input bit, and independence from the input's alignment.
*/
#include <stdlib.h>

#include "lask.h"
#include "test.h"

/* Fills 'p' with 'n' bytes of a fixed, irregular pattern. */
static void fill(uint8_t *p, size_t n) {
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = (uint8_t)x;
  }
}

/* qsort order for uint64_t. */
static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* Returns 1 when the 'n' hashes in 'h' are pairwise distinct; sorts 'h'. */
static int all_distinct(uint64_t *h, size_t n) {
  qsort(h, n, sizeof h[0], cmp_u64);
  for (size_t i = 1; i < n; i++) {
    if (h[i] == h[i - 1]) return 0;
  }
  return 1;
}

TEST(hash_known_answers) {
  /* The hash is part of the wire format: these values must never change
  ** without a new LASK__CODEC_VERSION. */
  uint8_t b[100];
  for (size_t i = 0; i < sizeof b; i++) b[i] = (uint8_t)i;
  ASSERT_EQ(0x15b7ba9c52e94132ull, lask_hash64("", 0, 0));
  ASSERT_EQ(0xc0248af96365dbe1ull, lask_hash64("abc", 3, 0));
  ASSERT_EQ(0xa956e7527d697f16ull, lask_hash64(b, 100, 1));
  ASSERT_EQ(0x19e6ea38cac09026ull, lask_hash64(b, 32, 0));
}

TEST(hash_is_deterministic) {
  uint8_t a[200], b[200];
  fill(a, sizeof a);
  memcpy(b, a, sizeof b);
  for (size_t n = 0; n <= sizeof a; n += 7) {
    ASSERT_EQ(lask_hash64(a, n, 99), lask_hash64(a, n, 99));
    ASSERT_EQ(lask_hash64(a, n, 99), lask_hash64(b, n, 99));
  }
}

TEST(hash_depends_on_seed) {
  static const uint64_t seeds[] = {0, 1, 2, 0x8000000000000000ull,
                                   UINT64_MAX, 0x736b6c01ull};
  enum { NSEEDS = sizeof seeds / sizeof seeds[0] };
  static const size_t lens[] = {0, 1, 8, 31, 32, 33, 100};
  uint8_t buf[100];
  fill(buf, sizeof buf);
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    uint64_t h[NSEEDS];
    for (size_t s = 0; s < NSEEDS; s++) {
      h[s] = lask_hash64(buf, lens[i], seeds[s]);
    }
    ASSERT_TRUE(all_distinct(h, NSEEDS));
  }
}

/* Checks that every prefix of the 'n'-byte buffer 'p' (lengths 0..n)
** hashes differently from every other, in particular from the prefix one
** byte shorter. */
static void check_prefixes(const uint8_t *p, size_t n) {
  uint64_t h[101];
  if (n > 100) abort();
  for (size_t len = 0; len <= n; len++) {
    h[len] = lask_hash64(p, len, 0);
    if (len > 0) ASSERT_TRUE(h[len] != h[len - 1]);
  }
  ASSERT_TRUE(all_distinct(h, n + 1));
}

TEST(hash_prefixes_differ) {
  uint8_t buf[100];
  fill(buf, sizeof buf);
  check_prefixes(buf, sizeof buf);
  memset(buf, 0, sizeof buf); /* zeros: only the length tells them apart */
  check_prefixes(buf, sizeof buf);
}

/* Flips each bit of an 'n'-byte buffer in turn (n <= 64) and checks that
** the original and all the flipped versions have distinct hashes. */
static void check_bit_flips(size_t n) {
  uint8_t buf[64];
  uint64_t h[64 * 8 + 1];
  if (n > sizeof buf) abort();
  fill(buf, n);
  h[0] = lask_hash64(buf, n, 7);
  for (size_t bit = 0; bit < n * 8; bit++) {
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    h[bit + 1] = lask_hash64(buf, n, 7);
    buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    ASSERT_TRUE(h[bit + 1] != h[0]);
  }
  ASSERT_TRUE(all_distinct(h, n * 8 + 1));
}

TEST(hash_sees_every_bit) {
  check_bit_flips(64); /* two full stripes */
  check_bit_flips(45); /* a stripe, a word and a byte tail */
  check_bit_flips(7);  /* the byte tail only */
}

TEST(hash_ignores_alignment) {
  uint8_t ref[100];
  uint8_t *block = malloc(sizeof ref + 8);
  ASSERT_TRUE(block != NULL);
  fill(ref, sizeof ref);
  int bad = 0;
  for (size_t off = 0; off < 8; off++) {
    memcpy(block + off, ref, sizeof ref);
    for (size_t n = 0; n <= sizeof ref; n++) {
      if (lask_hash64(block + off, n, 3) != lask_hash64(ref, n, 3)) bad = 1;
    }
  }
  free(block);
  ASSERT_TRUE(!bad);
}
