/*
** test_codec.c: tests of runtime/codec.c (writers, bounds-checked readers,
** the header, seal and open).
**
** Inputs to the readers are copied into heap blocks of exactly their size,
** so that under ASan a read one byte too far is reported.
*/
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "codec.h"
#include "test.h"

/* A heap copy of 'n' bytes of 'p' with no slack after it; the caller
** frees it. Aborts when out of memory (a test harness may). */
static uint8_t *dup_exact(const void *p, size_t n) {
  uint8_t *q = malloc(n > 0 ? n : 1);
  if (q == NULL) abort();
  if (n > 0) memcpy(q, p, n);
  return q;
}

/* Points 'r' at the 'n' bytes of 'p'. */
static void rbuf_on(struct lask_rbuf *r, const uint8_t *p, size_t n) {
  r->pos = p;
  r->end = p + n;
}

/* Decodes the varint in the 'n' bytes of 'in' (from an exact heap copy);
** returns the reader's code and stores the value and the bytes consumed. */
static int read_varint(const uint8_t *in, size_t n, uint64_t *v,
                       size_t *used) {
  uint8_t *copy = dup_exact(in, n);
  struct lask_rbuf r;
  rbuf_on(&r, copy, n);
  int rc = lask__get_varint(&r, v);
  *used = (size_t)(r.pos - copy);
  free(copy);
  return rc;
}

/* Writes a varint of 'v' and reads it back; checks the value, the length
** 'len' and that the reader consumed exactly what was written. */
static void varint_roundtrip(uint64_t v, size_t len) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__wbuf_reserve(&w, 11));
  lask__put_varint(&w, v);
  size_t n = w.len;
  uint64_t got = 0;
  size_t used = 0;
  int rc = read_varint(w.p, n, &got, &used);
  lask__wbuf_close(&w);
  ASSERT_EQ(len, n);
  ASSERT_EQ(0, rc);
  ASSERT_EQ(v, got);
  ASSERT_EQ(n, used);
}

TEST(codec_varint_roundtrip_boundaries) {
  varint_roundtrip(0, 1);
  varint_roundtrip(1, 1);
  varint_roundtrip(127, 1);
  varint_roundtrip(128, 2);
  varint_roundtrip(16383, 2);
  varint_roundtrip(16384, 3);
  varint_roundtrip(UINT32_MAX, 5);
  varint_roundtrip((uint64_t)1 << 32, 5);
  varint_roundtrip((uint64_t)INT64_MAX, 9);
  varint_roundtrip((uint64_t)1 << 63, 10);
  varint_roundtrip(UINT64_MAX, 10);
}

TEST(codec_varint_encoding_is_leb128) {
  static const uint8_t want[] = {0xac, 0x02};
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__wbuf_reserve(&w, 11));
  lask__put_varint(&w, 300);
  size_t n = w.len;
  int same = n == sizeof want && memcmp(w.p, want, n) == 0;
  lask__wbuf_close(&w);
  ASSERT_EQ(sizeof want, n);
  ASSERT_TRUE(same);
}

TEST(codec_varint_accepts_padding) {
  /* value.c writes bytecode lengths as padded 5-byte varints. */
  static const uint8_t in[] = {0x85, 0x80, 0x80, 0x80, 0x00};
  uint64_t v = 0;
  size_t used = 0;
  ASSERT_EQ(0, read_varint(in, sizeof in, &v, &used));
  ASSERT_EQ((uint64_t)5, v);
  ASSERT_EQ(sizeof in, used);
}

TEST(codec_zigzag_extremes) {
  ASSERT_EQ((uint64_t)0, lask__zigzag(0));
  ASSERT_EQ((uint64_t)1, lask__zigzag(-1));
  ASSERT_EQ((uint64_t)2, lask__zigzag(1));
  ASSERT_EQ(UINT64_MAX - 1, lask__zigzag(INT64_MAX));
  ASSERT_EQ(UINT64_MAX, lask__zigzag(INT64_MIN));
  static const int64_t vals[] = {0, 1, -1, 63, -64, INT32_MIN, INT32_MAX,
                                 INT64_MAX, INT64_MIN, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    ASSERT_EQ(vals[i], lask__unzigzag(lask__zigzag(vals[i])));
  }
}

TEST(codec_varint_rejects_overlong) {
  /* Eleven bytes: ten continuation bytes, then a final zero. */
  static const uint8_t in[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                               0x80, 0x80, 0x80, 0x80, 0x00};
  uint64_t v = 42;
  size_t used = 0;
  ASSERT_EQ(LASK_ECORRUPT, read_varint(in, sizeof in, &v, &used));
  ASSERT_EQ((uint64_t)42, v);
}

TEST(codec_varint_rejects_tenth_byte_above_one) {
  uint8_t in[10];
  memset(in, 0xff, 9);
  uint64_t v = 42;
  size_t used = 0;
  in[9] = 0x01;
  ASSERT_EQ(0, read_varint(in, sizeof in, &v, &used));
  ASSERT_EQ(UINT64_MAX, v);
  v = 42;
  in[9] = 0x02;
  ASSERT_EQ(LASK_ECORRUPT, read_varint(in, sizeof in, &v, &used));
  ASSERT_EQ((uint64_t)42, v);
  in[9] = 0x7f;
  ASSERT_EQ(LASK_ECORRUPT, read_varint(in, sizeof in, &v, &used));
  in[9] = 0x81;
  ASSERT_EQ(LASK_ECORRUPT, read_varint(in, sizeof in, &v, &used));
  ASSERT_EQ((uint64_t)42, v);
}

TEST(codec_varint_truncated) {
  static const uint8_t in[] = {0xff, 0xff, 0xff, 0xff, 0xff,
                               0xff, 0xff, 0xff, 0xff};
  uint64_t v = 42;
  size_t used = 0;
  for (size_t n = 0; n <= sizeof in; n++) {
    ASSERT_EQ(LASK_ETRUNC, read_varint(in, n, &v, &used));
    ASSERT_EQ((uint64_t)42, v);
  }
}

TEST(codec_get_u32) {
  static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04};
  uint8_t *p = dup_exact(in, sizeof in);
  struct lask_rbuf r;
  uint32_t v = 7;
  int rcs[4];
  for (size_t n = 0; n < 4; n++) {
    rbuf_on(&r, p, n);
    rcs[n] = lask__get_u32(&r, &v);
  }
  rbuf_on(&r, p, 4);
  int rc = lask__get_u32(&r, &v);
  size_t left = lask__rbuf_left(&r);
  free(p);
  for (size_t n = 0; n < 4; n++) ASSERT_EQ(LASK_ETRUNC, rcs[n]);
  ASSERT_EQ(0, rc);
  ASSERT_EQ((uint32_t)0x04030201, v);
  ASSERT_EQ((size_t)0, left);
}

TEST(codec_get_f64_truncated) {
  static const uint8_t in[8] = {0};
  uint8_t *p = dup_exact(in, sizeof in);
  struct lask_rbuf r;
  double v = 1.5;
  int bad = 0;
  for (size_t n = 0; n < 8; n++) {
    rbuf_on(&r, p, n);
    if (lask__get_f64(&r, &v) != LASK_ETRUNC || r.pos != p) bad = 1;
  }
  free(p);
  ASSERT_TRUE(!bad);
  ASSERT_EQ(1.5, v);
}

TEST(codec_get_bytes) {
  static const uint8_t in[] = {'a', 'b', 'c'};
  uint8_t *p = dup_exact(in, sizeof in);
  struct lask_rbuf r;
  const uint8_t *s = NULL;
  rbuf_on(&r, p, 3);
  int rc_big = lask__get_bytes(&r, 4, &s);
  int rc_huge = lask__get_bytes(&r, SIZE_MAX, &s);
  const uint8_t *unset = s;
  int rc_zero = lask__get_bytes(&r, 0, &s);
  int rc_two = lask__get_bytes(&r, 2, &s);
  int at_start = s == p;
  int rc_more = lask__get_bytes(&r, 2, &s);
  size_t left = lask__rbuf_left(&r);
  free(p);
  ASSERT_EQ(LASK_ETRUNC, rc_big);
  ASSERT_EQ(LASK_ETRUNC, rc_huge);
  ASSERT_TRUE(unset == NULL);
  ASSERT_EQ(0, rc_zero);
  ASSERT_EQ(0, rc_two);
  ASSERT_TRUE(at_start);
  ASSERT_EQ(LASK_ETRUNC, rc_more);
  ASSERT_EQ((size_t)1, left);
}

/* Reads a string item from the 'n' bytes of 'in'; returns the code and,
** on success, the string's length. */
static int read_string(const uint8_t *in, size_t n, size_t *len) {
  uint8_t *p = dup_exact(in, n);
  struct lask_rbuf r;
  const uint8_t *s;
  rbuf_on(&r, p, n);
  int rc = lask__get_string(&r, &s, len);
  free(p);
  return rc;
}

TEST(codec_get_string_truncated) {
  static const uint8_t short_body[] = {5, 'a', 'b', 'c', 'd'};
  static const uint8_t huge_len[] = {0x80, 0x80, 0x80, 0x80, 0x80,
                                     0x80, 0x80, 0x80, 0x80, 0x01, 'x'};
  static const uint8_t cut_len[] = {0x80};
  static const uint8_t exact[] = {4, 'a', 'b', 'c', 'd'};
  size_t len = 99;
  ASSERT_EQ(LASK_ETRUNC, read_string(short_body, sizeof short_body, &len));
  ASSERT_EQ(LASK_ETRUNC, read_string(huge_len, sizeof huge_len, &len));
  ASSERT_EQ(LASK_ETRUNC, read_string(cut_len, sizeof cut_len, &len));
  ASSERT_EQ(LASK_ETRUNC, read_string(cut_len, 0, &len));
  ASSERT_EQ((size_t)99, len);
  ASSERT_EQ(0, read_string(exact, sizeof exact, &len));
  ASSERT_EQ((size_t)4, len);
}

/* Writes 's' (n bytes, zeros allowed) as a string item and reads it back
** through an exact copy; checks length and bytes. */
static void string_roundtrip(const char *s, size_t n) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__put_string(&w, s, n));
  uint8_t *p = dup_exact(w.p, w.len);
  struct lask_rbuf r;
  rbuf_on(&r, p, w.len);
  lask__wbuf_close(&w);
  const uint8_t *got = NULL;
  size_t len = 0;
  int rc = lask__get_string(&r, &got, &len);
  int same = rc == 0 && len == n && (n == 0 || memcmp(got, s, n) == 0);
  size_t left = lask__rbuf_left(&r);
  free(p);
  ASSERT_EQ(0, rc);
  ASSERT_EQ(n, len);
  ASSERT_TRUE(same);
  ASSERT_EQ((size_t)0, left);
}

TEST(codec_string_roundtrip) {
  static char big[300];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7);
  string_roundtrip("", 0);
  string_roundtrip("a\0b\0", 4);
  string_roundtrip(big, 127);
  string_roundtrip(big, 128);
  string_roundtrip(big, sizeof big);
}

/* Writes 'd' with put_f64, reads it back and checks every bit survived. */
static void f64_roundtrip(double d) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__wbuf_reserve(&w, 8));
  lask__put_f64(&w, d);
  uint8_t *p = dup_exact(w.p, w.len);
  size_t n = w.len;
  lask__wbuf_close(&w);
  struct lask_rbuf r;
  rbuf_on(&r, p, n);
  double got = 0;
  int rc = lask__get_f64(&r, &got);
  free(p);
  ASSERT_EQ((size_t)8, n);
  ASSERT_EQ(0, rc);
  uint64_t a, b;
  memcpy(&a, &d, 8);
  memcpy(&b, &got, 8);
  ASSERT_EQ(a, b);
}

/* A double with exactly the bits 'u'. */
static double from_bits(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

TEST(codec_f64_bit_exact) {
  f64_roundtrip(0.0);
  f64_roundtrip(-0.0);
  f64_roundtrip(1.0 / 3.0);
  f64_roundtrip(INFINITY);
  f64_roundtrip(-INFINITY);
  f64_roundtrip(NAN);
  f64_roundtrip(from_bits(0xfff8000000000001ull)); /* negative NaN payload */
  f64_roundtrip(DBL_MAX);
  f64_roundtrip(DBL_MIN);
  f64_roundtrip(from_bits(1)); /* the smallest subnormal */
}

TEST(codec_f64_is_little_endian) {
  static const uint8_t one[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__wbuf_reserve(&w, 8));
  lask__put_f64(&w, 1.0);
  int same = memcmp(w.p, one, 8) == 0;
  lask__wbuf_close(&w);
  ASSERT_TRUE(same);
}

TEST(codec_u32_put_and_patch) {
  static const uint8_t want[] = {0xef, 0xbe, 0xad, 0xde, 0x04, 0x03, 0x02,
                                 0x01};
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__wbuf_reserve(&w, 8));
  lask__put_u32(&w, 0);
  lask__put_u32(&w, 0x01020304);
  lask__patch_u32(&w, 0, 0xdeadbeef);
  uint8_t got[8];
  memcpy(got, w.p, 8);
  size_t n = w.len;
  lask__wbuf_close(&w);
  ASSERT_EQ((size_t)8, n);
  ASSERT_MEMEQ(want, got, 8);
}

/* The byte written at position i by writer_growth. */
static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 31 + (i >> 8));
}

TEST(codec_writer_growth) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_TRUE(w.p == NULL && w.len == 0 && w.cap == 0);
  uint8_t chunk[97];
  size_t total = 0;
  int rc = 0;
  for (size_t i = 0; i < 20000 && rc == 0; i++) {
    size_t n = i % sizeof chunk;
    for (size_t j = 0; j < n; j++) chunk[j] = pattern(total + j);
    rc = lask__put_bytes(&w, chunk, n);
    total += n;
  }
  size_t bad = total;
  for (size_t i = 0; rc == 0 && i < total && bad == total; i++) {
    if (w.p[i] != pattern(i)) bad = i;
  }
  int fits = w.cap >= w.len && w.len == total;
  lask__wbuf_close(&w);
  ASSERT_EQ(0, rc);
  ASSERT_TRUE(fits);
  ASSERT_EQ(total, bad);
  ASSERT_TRUE(w.p == NULL && w.len == 0 && w.cap == 0);
}

TEST(codec_writer_refuses_impossible_sizes) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__put_bytes(&w, "abc", 3));
  uint8_t *p = w.p;
  size_t cap = w.cap;
  int rc = lask__wbuf_grow(&w, SIZE_MAX);
  int rc2 = lask__wbuf_grow(&w, SIZE_MAX / 2);
  int same = w.p == p && w.cap == cap && w.len == 3;
  lask__wbuf_close(&w);
  ASSERT_EQ(LASK_ETOOBIG, rc);
  ASSERT_EQ(LASK_ETOOBIG, rc2);
  ASSERT_TRUE(same);
}

/* -------------------------------------------------------------------------
** Header: begin, seal, open
** ---------------------------------------------------------------------- */

/* Fills 'w' with a sealed encoding of 'flavour' and 'flags' whose body is
** 'nbody' bytes of a fixed pattern. Returns 0 or a LASK_E* code. */
static int make_sealed(struct lask_wbuf *w, int flavour, int flags,
                       size_t nbody) {
  int rc = lask__codec_begin(w, flavour);
  for (size_t i = 0; rc == 0 && i < nbody; i++) {
    uint8_t b = pattern(i);
    rc = lask__put_bytes(w, &b, 1);
  }
  if (rc == 0) lask__codec_seal(w, flags);
  return rc;
}

/* Opens the 'n' bytes at 'p' from an exact heap copy. */
static int open_copy(const uint8_t *p, size_t n, struct lask_header *h,
                     size_t *body_at, size_t *body_len) {
  uint8_t *q = dup_exact(p, n);
  struct lask_rbuf body = {NULL, NULL};
  int rc = lask__codec_open(q, n, h, &body);
  if (rc == 0) {
    *body_at = (size_t)(body.pos - q);
    *body_len = lask__rbuf_left(&body);
  }
  free(q);
  return rc;
}

TEST(codec_begin_seal_open_roundtrip) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, make_sealed(&w, LASK_FLAVOUR_LUAJIT, LASK__CF_CODE, 50));
  struct lask_header h = {0, 0, 0};
  size_t at = 0, len = 0;
  int rc = open_copy(w.p, w.len, &h, &at, &len);
  uint8_t magic[4];
  memcpy(magic, w.p, 4);
  lask__wbuf_close(&w);
  ASSERT_EQ(0, rc);
  ASSERT_MEMEQ("lsk\001", magic, 4);
  ASSERT_EQ(LASK__CODEC_VERSION, h.version);
  ASSERT_EQ(LASK_FLAVOUR_LUAJIT, h.flavour);
  ASSERT_EQ(LASK__CF_CODE, h.flags);
  ASSERT_EQ((size_t)LASK__CODEC_HEADER, at);
  ASSERT_EQ((size_t)50, len);
}

TEST(codec_empty_body_opens) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, make_sealed(&w, LASK_FLAVOUR_LUA54, 0, 0));
  struct lask_header h;
  size_t at = 0, len = 1;
  int rc = open_copy(w.p, w.len, &h, &at, &len);
  size_t n = w.len;
  lask__wbuf_close(&w);
  ASSERT_EQ((size_t)LASK__CODEC_HEADER, n);
  ASSERT_EQ(0, rc);
  ASSERT_EQ((size_t)0, len);
}

TEST(codec_begin_empties_the_writer) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, lask__put_bytes(&w, "leftover bytes", 14));
  int rc = make_sealed(&w, LASK_FLAVOUR_LUA54, 0, 3);
  size_t n = w.len;
  int magic = w.p != NULL && w.p[0] == 'l';
  lask__wbuf_close(&w);
  ASSERT_EQ(0, rc);
  ASSERT_EQ((size_t)LASK__CODEC_HEADER + 3, n);
  ASSERT_TRUE(magic);
}

/* Is 'rc' one of the codes that report a damaged encoding? */
static int is_damage(int rc) {
  return rc == LASK_ECHECKSUM || rc == LASK_ECORRUPT || rc == LASK_EVERSION;
}

TEST(codec_detects_every_bit_flip) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, make_sealed(&w, LASK_FLAVOUR_LUA54, LASK__CF_CODE, 45));
  size_t n = w.len, missed = SIZE_MAX;
  int bad_rc = 0;
  for (size_t bit = 0; bit < n * 8 && missed == SIZE_MAX; bit++) {
    struct lask_header h;
    size_t at, len;
    w.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    int rc = open_copy(w.p, n, &h, &at, &len);
    w.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    if (!is_damage(rc)) {
      missed = bit;
      bad_rc = rc;
    }
  }
  lask__wbuf_close(&w);
  ASSERT_EQ(SIZE_MAX, missed);
  ASSERT_EQ(0, bad_rc);
}

/* Seals an encoding after setting header byte 'at' to 'v' (so that the
** checksum is right) and returns what codec_open says of it. */
static int open_with_header_byte(size_t at, uint8_t v) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  if (lask__codec_begin(&w, LASK_FLAVOUR_LUA54) != 0) abort();
  if (lask__put_bytes(&w, "\x05\x01x", 3) != 0) abort();
  w.p[at] = v;
  lask__codec_seal(&w, 0);
  struct lask_header h;
  size_t body_at, len;
  int rc = open_copy(w.p, w.len, &h, &body_at, &len);
  lask__wbuf_close(&w);
  return rc;
}

TEST(codec_rejects_wrong_magic) {
  ASSERT_EQ(LASK_ECORRUPT, open_with_header_byte(0, 'L'));
  ASSERT_EQ(LASK_ECORRUPT, open_with_header_byte(1, 0));
  ASSERT_EQ(LASK_ECORRUPT, open_with_header_byte(2, 'K'));
}

TEST(codec_rejects_nonzero_reserved_bytes) {
  ASSERT_EQ(LASK_ECORRUPT, open_with_header_byte(6, 1));
  ASSERT_EQ(LASK_ECORRUPT, open_with_header_byte(7, 0x80));
}

TEST(codec_rejects_wrong_version) {
  ASSERT_EQ(LASK_EVERSION, open_with_header_byte(3, 0));
  ASSERT_EQ(LASK_EVERSION, open_with_header_byte(3, LASK__CODEC_VERSION + 1));
  ASSERT_EQ(LASK_EVERSION, open_with_header_byte(3, 0xff));
}

TEST(codec_reports_flavour_without_judging) {
  ASSERT_EQ(0, open_with_header_byte(4, 0));
  ASSERT_EQ(0, open_with_header_byte(4, 0xee));
}

TEST(codec_rejects_empty_input) {
  struct lask_header h;
  struct lask_rbuf body;
  static const uint8_t none[1] = {0};
  ASSERT_EQ(LASK_ETRUNC, lask__codec_open(none, 0, &h, &body));
  ASSERT_EQ(LASK_ETRUNC, lask_codec_check(none, 0, NULL));
}

TEST(codec_rejects_short_input) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, make_sealed(&w, LASK_FLAVOUR_LUA54, 0, 8));
  int rcs[LASK__CODEC_HEADER + 8];
  for (size_t n = 1; n < w.len; n++) {
    struct lask_header h;
    size_t at, len;
    rcs[n] = open_copy(w.p, n, &h, &at, &len);
  }
  size_t total = w.len;
  lask__wbuf_close(&w);
  /* A cut header is reported as not an encoding, a cut body as damage. */
  for (size_t n = 1; n < LASK__CODEC_HEADER; n++) {
    ASSERT_EQ(LASK_ECORRUPT, rcs[n]);
  }
  for (size_t n = LASK__CODEC_HEADER; n < total; n++) {
    ASSERT_EQ(LASK_ECHECKSUM, rcs[n]);
  }
}

TEST(codec_check_reports_flavour) {
  struct lask_wbuf w;
  lask__wbuf_init(&w);
  ASSERT_EQ(0, make_sealed(&w, LASK_FLAVOUR_LUAJIT, 0, 10));
  int flavour = -1, flavour_bad = -1;
  int rc = lask_codec_check(w.p, w.len, &flavour);
  int rc_null = lask_codec_check(w.p, w.len, NULL);
  w.p[w.len - 1] ^= 1;
  int rc_bad = lask_codec_check(w.p, w.len, &flavour_bad);
  lask__wbuf_close(&w);
  ASSERT_EQ(0, rc);
  ASSERT_EQ(LASK_FLAVOUR_LUAJIT, flavour);
  ASSERT_EQ(0, rc_null);
  ASSERT_EQ(LASK_ECHECKSUM, rc_bad);
  ASSERT_EQ(-1, flavour_bad);
}
