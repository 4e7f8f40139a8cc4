/*
** test_npy.c: tests of the .npy header reader and writer (runtime/npy.c):
** byte-exact agreement with the headers NumPy writes, round trips for every
** dtype and many shapes, versions 2.0 and 3.0, byte order and Fortran
** order, the syntax variants other writers produce, and clean errors (never
** a read out of bounds) on truncated, malformed and mutated input.
*/
#include <stdio.h>
#include <stdlib.h>

#include "npy.h"
#include "test.h"

/* ------------------------------------------------------------ NumPy bytes
** Headers written by NumPy 1.24.2 (np.save into an io.BytesIO, the data
** bytes cut off), copied here byte for byte. Padding is spelled with SP*. */
#define SP4 "    "
#define SP16 SP4 SP4 SP4 SP4

/* np.save(f, np.zeros((3, 4))) (128 bytes) */
static const char npy_f8_3x4[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
    SP16 SP16 SP16 SP4 SP4 "  " /* 58 spaces */ "\n";
/* np.save(f, np.zeros(5, dtype='<i4')) (128 bytes) */
static const char npy_i4_5[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"
    SP16 SP16 SP16 SP4 SP4 SP4 /* 60 spaces */ "\n";
/* np.save(f, np.array(1.5)) (128 bytes) */
static const char npy_f8_0d[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (), }"
    SP16 SP16 SP16 SP4 SP4 SP4 "  " /* 62 spaces */ "\n";
/* np.save(f, np.zeros(0, dtype=np.uint8)) (128 bytes) */
static const char npy_u1_0[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '|u1', 'fortran_order': False, 'shape': (0,), }"
    SP16 SP16 SP16 SP4 SP4 SP4 /* 60 spaces */ "\n";
/* np.save(f, np.zeros((2, 3, 4), dtype=bool)) (128 bytes) */
static const char npy_b1_2x3x4[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3, 4), "
    "}"
    SP16 SP16 SP16 SP4 "   " /* 55 spaces */ "\n";
/* np.save(f, np.asfortranarray(np.zeros((3, 4), dtype='>f4')))
** (128 bytes) */
static const char npy_f4_be_fortran[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '>f4', 'fortran_order': True, 'shape': (3, 4), }"
    SP16 SP16 SP16 SP4 SP4 "   " /* 59 spaces */ "\n";
/* np.save(f, np.zeros((1,) * 32, dtype='<i8')) (192 bytes) */
static const char npy_i8_32d[] =
    "\x93NUMPY\x01\x00\xb6\x00"
    "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1, 1, "
    "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
    "1, 1, 1, 1, 1, 1, 1, 1, 1), }"
    SP16 SP16 /* 32 spaces */ "\n";
/* np.save(f, np.zeros((1000,) + (1,) * 14)) (192 bytes) */
static const char npy_f8_growth[] =
    "\x93NUMPY\x01\x00\xb6\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (1000, 1, "
    "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }"
    SP16 SP16 SP16 SP16 SP16 /* 80 spaces */ "\n";
/* np.save(f, np.zeros((7, 100) + (1,) * 12)) (192 bytes) */
static const char npy_f8_pad64[] =
    "\x93NUMPY\x01\x00\xb6\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (7, 100, 1, "
    "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), }"
    SP16 SP16 SP16 SP16 SP16 SP4 /* 84 spaces */ "\n";
/* np.lib.format.write_array(f, np.zeros((3, 4)), version=(2, 0))
** (128 bytes) */
static const char npy_f8_3x4_v2[] =
    "\x93NUMPY\x02\x00t\x00\x00\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
    SP16 SP16 SP16 SP4 SP4 /* 56 spaces */ "\n";
/* np.lib.format.write_array(f, np.zeros((3, 4)), version=(3, 0))
** (128 bytes) */
static const char npy_f8_3x4_v3[] =
    "\x93NUMPY\x03\x00t\x00\x00\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
    SP16 SP16 SP16 SP4 SP4 /* 56 spaces */ "\n";
/* np.lib.format._write_array_header(f, {'descr': '<f8',
**   'fortran_order': False, 'shape': (2**60 - 1,)}) (128 bytes) */
static const char npy_f8_huge[] =
    "\x93NUMPY\x01\x00v\x00"
    "{'descr': '<f8', 'fortran_order': False, "
    "'shape': (1152921504606846975,), }"
    SP16 SP16 SP4 SP4 "  " /* 42 spaces */ "\n";


/* One NumPy header and what it says. */
struct known {
  const char *bytes;
  size_t len;
  int dtype, big, fortran, ndim;
  int64_t shape[LASK_ND_MAXDIM];
  int written; /* 1: lask__npy_header must produce exactly these bytes */
};

#define KNOWN(b) b, sizeof b - 1
static const struct known known[] = {
  {KNOWN(npy_f8_3x4), LASK_DT_F64, 0, 0, 2, {3, 4}, 1},
  {KNOWN(npy_i4_5), LASK_DT_I32, 0, 0, 1, {5}, 1},
  {KNOWN(npy_f8_0d), LASK_DT_F64, 0, 0, 0, {0}, 1},
  {KNOWN(npy_u1_0), LASK_DT_U8, 0, 0, 1, {0}, 1},
  {KNOWN(npy_b1_2x3x4), LASK_DT_BOOL, 0, 0, 3, {2, 3, 4}, 1},
  {KNOWN(npy_f4_be_fortran), LASK_DT_F32, 1, 1, 2, {3, 4}, 0},
  {KNOWN(npy_i8_32d),
   LASK_DT_I64,
   0,
   0,
   32,
   {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   1},
  {KNOWN(npy_f8_growth),
   LASK_DT_F64,
   0,
   0,
   15,
   {1000, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   1},
  {KNOWN(npy_f8_pad64),
   LASK_DT_F64,
   0,
   0,
   14,
   {7, 100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
   1},
  {KNOWN(npy_f8_3x4_v2), LASK_DT_F64, 0, 0, 2, {3, 4}, 0},
  {KNOWN(npy_f8_3x4_v3), LASK_DT_F64, 0, 0, 2, {3, 4}, 0},
  {KNOWN(npy_f8_huge), LASK_DT_F64, 0, 0, 1, {1152921504606846975}, 1},
};
#define NKNOWN (sizeof known / sizeof known[0])

static int native_big(void) {
  const uint16_t one = 1;
  uint8_t b;
  memcpy(&b, &one, 1);
  return b == 0;
}

/* Parses a copy of 'n' bytes at 's' in a buffer of exactly 'n' bytes, so
** that the sanitizers catch any read beyond the end. */
static int parse_copy(const void *s, size_t n, struct lask_npy_info *info,
                      const char **why) {
  uint8_t *p = malloc(n > 0 ? n : 1);
  if (p == NULL) abort();
  if (n > 0) memcpy(p, s, n);
  int rc = lask__npy_parse(p, n, info, why);
  free(p);
  return rc;
}

/* Builds a file of format 'major'.0 whose header is exactly 'dict' (no
** padding, no '\n'): its length. */
static size_t make_npy(uint8_t *out, int major, const char *dict) {
  size_t len = strlen(dict), pre = major == 1 ? 10 : 12;
  memcpy(out, "\x93NUMPY", 6);
  out[6] = (uint8_t)major;
  out[7] = 0;
  for (size_t i = 0; i + 8 < pre; i++) out[8 + i] = (uint8_t)(len >> (8 * i));
  memcpy(out + pre, dict, len);
  return pre + len;
}

/* Parses a version 1.0 file whose header is 'dict'. */
static int parse_dict(const char *dict, struct lask_npy_info *info,
                      const char **why) {
  uint8_t buf[4096];
  size_t n = make_npy(buf, 1, dict);
  return parse_copy(buf, n, info, why);
}

/* ------------------------------------------------------------------ tests */

TEST(npy_dtype_sizes_and_names) {
  static const int sizes[LASK_DT_COUNT] = {8, 4, 8, 4, 1, 1};
  static const char *const names[LASK_DT_COUNT] = {
    "float64", "float32", "int64", "int32", "uint8", "bool"};
  for (int dt = 0; dt < LASK_DT_COUNT; dt++) {
    ASSERT_EQ(lask__dtype_size(dt), sizes[dt]);
    ASSERT_STREQ(lask__dtype_name(dt), names[dt]);
  }
  ASSERT_EQ(lask__dtype_size(-1), 0);
  ASSERT_EQ(lask__dtype_size(LASK_DT_COUNT), 0);
  ASSERT_TRUE(lask__dtype_name(-1) == NULL);
  ASSERT_TRUE(lask__dtype_name(LASK_DT_COUNT) == NULL);
}

TEST(npy_header_matches_numpy_bytes) {
  for (size_t i = 0; i < NKNOWN; i++) {
    const struct known *k = &known[i];
    ASSERT_EQ(k->len % 64, (size_t)0);
    if (!k->written) continue;
    uint8_t out[LASK_NPY_HEADER_MAX];
    int64_t len = lask__npy_header(k->dtype, k->ndim, k->shape, out,
                                   sizeof out);
    ASSERT_EQ(len, (int64_t)k->len);
    ASSERT_MEMEQ(out, k->bytes, k->len);
  }
}

TEST(npy_parse_numpy_headers) {
  for (size_t i = 0; i < NKNOWN; i++) {
    const struct known *k = &known[i];
    struct lask_npy_info info;
    const char *why = NULL;
    ASSERT_EQ(parse_copy(k->bytes, k->len, &info, &why), 0);
    ASSERT_EQ(info.dtype, k->dtype);
    ASSERT_EQ(info.swap, k->big != native_big());
    ASSERT_EQ(info.fortran, k->fortran);
    ASSERT_EQ(info.ndim, k->ndim);
    for (int d = 0; d < k->ndim; d++) ASSERT_EQ(info.shape[d], k->shape[d]);
    ASSERT_EQ(info.data_offset, (uint64_t)k->len);
    /* Bytes after the header (the data) are not looked at. */
    uint8_t more[300];
    memcpy(more, k->bytes, k->len);
    memset(more + k->len, 0xff, sizeof more - k->len);
    ASSERT_EQ(parse_copy(more, sizeof more, &info, &why), 0);
    ASSERT_EQ(info.data_offset, (uint64_t)k->len);
  }
}

TEST(npy_parse_versions_2_and_3) {
  struct lask_npy_info info;
  const char *why = NULL;
  ASSERT_EQ(parse_copy(npy_f8_3x4_v2, sizeof npy_f8_3x4_v2 - 1, &info, &why),
            0);
  ASSERT_EQ(info.data_offset, (uint64_t)128);
  ASSERT_EQ(parse_copy(npy_f8_3x4_v3, sizeof npy_f8_3x4_v3 - 1, &info, &why),
            0);
  ASSERT_EQ(info.data_offset, (uint64_t)128);
  /* A 2.0 header longer than 64 KiB is refused before it is read. */
  uint8_t b[12];
  memcpy(b, npy_f8_3x4_v2, 8);
  b[8] = 0x01, b[9] = 0x00, b[10] = 0x01, b[11] = 0x00; /* 65537 */
  ASSERT_EQ(parse_copy(b, sizeof b, &info, &why), LASK_ECORRUPT);
  b[8] = 0x00; /* exactly 65536: accepted, so more bytes are wanted */
  ASSERT_EQ(parse_copy(b, sizeof b, &info, &why), LASK_ETRUNC);
  ASSERT_EQ(info.data_offset, (uint64_t)(12 + 65536));
  b[8] = b[9] = b[10] = b[11] = 0xff;
  ASSERT_EQ(parse_copy(b, sizeof b, &info, &why), LASK_ECORRUPT);
  /* A long 2.0 header of white space parses. */
  static char dict[70000];
  size_t n = (size_t)sprintf(
    dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }");
  memset(dict + n, ' ', sizeof dict - 1 - n - 5000);
  dict[sizeof dict - 5001] = '\0';
  uint8_t *big = malloc(sizeof dict + 12);
  if (big == NULL) abort();
  size_t len = make_npy(big, 2, dict);
  int rc = parse_copy(big, len, &info, &why);
  free(big);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(info.dtype, LASK_DT_I64);
  ASSERT_EQ(info.data_offset, (uint64_t)len);
}

TEST(npy_parse_byte_order) {
  static const struct {
    const char *descr;
    int dtype, big; /* big: 1 big, 0 little, -1 native */
  } cases[] = {
    {"<f8", LASK_DT_F64, 0},  {">f8", LASK_DT_F64, 1},
    {"=f8", LASK_DT_F64, -1}, {"<f4", LASK_DT_F32, 0},
    {">f4", LASK_DT_F32, 1},  {"<i8", LASK_DT_I64, 0},
    {">i8", LASK_DT_I64, 1},  {"<i4", LASK_DT_I32, 0},
    {">i4", LASK_DT_I32, 1},  {"=i4", LASK_DT_I32, -1},
    {"|u1", LASK_DT_U8, -1},  {"<u1", LASK_DT_U8, -1},
    {">u1", LASK_DT_U8, -1},  {"|b1", LASK_DT_BOOL, -1},
    {">b1", LASK_DT_BOOL, -1}, {"=b1", LASK_DT_BOOL, -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char dict[128];
    snprintf(dict, sizeof dict,
             "{'descr': '%s', 'fortran_order': True, 'shape': (2,), }",
             cases[i].descr);
    struct lask_npy_info info;
    const char *why = NULL;
    ASSERT_EQ(parse_dict(dict, &info, &why), 0);
    ASSERT_EQ(info.dtype, cases[i].dtype);
    ASSERT_EQ(info.swap, cases[i].big >= 0 && cases[i].big != native_big());
    ASSERT_EQ(info.fortran, 1);
  }
}

TEST(npy_roundtrip_every_dtype_and_shape) {
  static const struct {
    int ndim;
    int64_t shape[LASK_ND_MAXDIM];
  } shapes[] = {
    {0, {0}},
    {1, {0}},
    {1, {1}},
    {1, {7}},
    {2, {3, 4}},
    {2, {0, 5}},
    {3, {2, 0, 3}},
    {3, {0, 0, 0}},
    {2, {INT32_MAX, 3}},
    {2, {(int64_t)1 << 29, (int64_t)1 << 30}},
    {1, {INT64_MAX / 8}},
    {2, {0, INT64_MAX / 8}},
    {32, {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
          2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2}},
    {32, {INT64_MAX / 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
          0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
    {32, {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
          9, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
  };
  for (int dt = 0; dt < LASK_DT_COUNT; dt++) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int ndim = shapes[s].ndim;
      const int64_t *shape = shapes[s].shape;
      uint8_t out[LASK_NPY_HEADER_MAX];
      int64_t len = lask__npy_header(dt, ndim, shape, out, sizeof out);
      ASSERT_TRUE(len > 0);
      ASSERT_EQ(len % 64, 0);
      ASSERT_TRUE(len <= 832);
      ASSERT_EQ(out[6], 1);
      ASSERT_EQ(out[len - 1], '\n');
      /* cap one byte short, and exactly enough */
      uint8_t again[LASK_NPY_HEADER_MAX];
      ASSERT_EQ(lask__npy_header(dt, ndim, shape, again, (size_t)len - 1),
                (int64_t)LASK_ETOOBIG);
      ASSERT_EQ(lask__npy_header(dt, ndim, shape, again, (size_t)len), len);
      ASSERT_MEMEQ(again, out, (size_t)len);

      struct lask_npy_info info;
      const char *why = NULL;
      ASSERT_EQ(parse_copy(out, (size_t)len, &info, &why), 0);
      ASSERT_EQ(info.dtype, dt);
      ASSERT_EQ(info.swap, native_big() && lask__dtype_size(dt) > 1);
      ASSERT_EQ(info.fortran, 0);
      ASSERT_EQ(info.ndim, ndim);
      for (int d = 0; d < ndim; d++) ASSERT_EQ(info.shape[d], shape[d]);
      ASSERT_EQ(info.data_offset, (uint64_t)len);
    }
  }
}

TEST(npy_header_rejects_bad_arguments) {
  uint8_t out[LASK_NPY_HEADER_MAX];
  int64_t shape[LASK_ND_MAXDIM + 1] = {0};
  ASSERT_EQ(lask__npy_header(-1, 1, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  ASSERT_EQ(lask__npy_header(LASK_DT_COUNT, 1, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, -1, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, LASK_ND_MAXDIM + 1, shape, out,
                             sizeof out),
            (int64_t)LASK_EINVAL);
  shape[0] = 3, shape[1] = -1;
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, 2, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  shape[1] = INT64_MIN;
  ASSERT_EQ(lask__npy_header(LASK_DT_U8, 2, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  /* Data sizes at and beyond INT64_MAX bytes. */
  shape[0] = INT64_MAX / 8;
  ASSERT_TRUE(lask__npy_header(LASK_DT_F64, 1, shape, out, sizeof out) > 0);
  shape[0]++;
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, 1, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  ASSERT_TRUE(lask__npy_header(LASK_DT_U8, 1, shape, out, sizeof out) > 0);
  shape[0] = INT64_MAX;
  ASSERT_TRUE(lask__npy_header(LASK_DT_U8, 1, shape, out, sizeof out) > 0);
  ASSERT_EQ(lask__npy_header(LASK_DT_BOOL, 1, shape, out, sizeof out) %
              64, 0);
  shape[0] = (int64_t)1 << 32, shape[1] = (int64_t)1 << 31;
  ASSERT_EQ(lask__npy_header(LASK_DT_U8, 2, shape, out, sizeof out),
            (int64_t)LASK_EINVAL);
  /* No room at all. */
  shape[0] = 3;
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, 1, shape, out, 0),
            (int64_t)LASK_ETOOBIG);
  ASSERT_EQ(lask__npy_header(LASK_DT_F64, 1, shape, out, 127),
            (int64_t)LASK_ETOOBIG);
}

TEST(npy_parse_accepts_syntax_variants) {
  static const char *const ok[] = {
    "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
    "{'descr':'<i4','fortran_order':False,'shape':(2,3)}",
    "{\"descr\": \"<i4\", \"fortran_order\": False, \"shape\": (2, 3)}",
    "{'shape': (2, 3), 'descr': '<i4', 'fortran_order': False}",
    "{'fortran_order': False, 'shape': (2, 3,), 'descr': \"<i4\",}",
    (" \t{ 'descr' : '<i4' ,\n 'fortran_order' :\tFalse ,\r\n 'shape' : "
     "( 2 , 3 ) , }\n"),
    "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }",
    "{'descr': '=i4', 'fortran_order': False, 'shape': (0002, 03), }   \n",
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    struct lask_npy_info info;
    const char *why = NULL;
    int rc = parse_dict(ok[i], &info, &why);
    if (rc != 0) test__fail(__FILE__, __LINE__, "case %zu: %s", i, why);
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(info.dtype, LASK_DT_I32);
    ASSERT_EQ(info.fortran, 0);
    ASSERT_EQ(info.ndim, 2);
    ASSERT_EQ(info.shape[0], (int64_t)2);
    ASSERT_EQ(info.shape[1], (int64_t)3);
    ASSERT_EQ(info.data_offset, (uint64_t)(10 + strlen(ok[i])));
  }
  /* 1-d and 0-d spellings. */
  struct lask_npy_info info;
  const char *why = NULL;
  ASSERT_EQ(parse_dict("{'descr':'|u1','fortran_order':True,'shape':(5,)}",
                       &info, &why),
            0);
  ASSERT_EQ(info.ndim, 1);
  ASSERT_EQ(info.shape[0], (int64_t)5);
  ASSERT_EQ(info.fortran, 1);
  ASSERT_EQ(parse_dict("{'descr':'|u1','fortran_order':True,'shape':( )}",
                       &info, &why),
            0);
  ASSERT_EQ(info.ndim, 0);
}

TEST(npy_parse_truncated_at_every_length) {
  for (size_t i = 0; i < NKNOWN; i++) {
    const struct known *k = &known[i];
    size_t pre = k->bytes[6] == 1 ? 10 : 12;
    for (size_t n = 0; n < k->len; n++) {
      struct lask_npy_info info;
      const char *why = NULL;
      ASSERT_EQ(parse_copy(k->bytes, n, &info, &why), LASK_ETRUNC);
      if (n >= pre) {
        ASSERT_EQ(info.data_offset, (uint64_t)k->len);
      } else {
        ASSERT_TRUE(info.data_offset > n);
        ASSERT_TRUE(info.data_offset <= k->len);
      }
    }
    /* A reader that asks for data_offset bytes each time gets there in at
    ** most three calls. */
    size_t n = 0;
    int rc, calls = 0;
    struct lask_npy_info info;
    const char *why = NULL;
    while ((rc = parse_copy(k->bytes, n, &info, &why)) == LASK_ETRUNC) {
      ASSERT_TRUE(++calls <= 3);
      n = (size_t)info.data_offset;
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(n, k->len);
  }
}

TEST(npy_parse_rejects_bad_preambles) {
  struct lask_npy_info info;
  const char *why = NULL;
  uint8_t b[128];
  memcpy(b, npy_f8_3x4, 128);
  b[0] = 0x94;
  ASSERT_EQ(parse_copy(b, 128, &info, &why), LASK_ECORRUPT);
  ASSERT_STREQ(why, "not an .npy file (bad magic)");
  /* Bad magic is seen in the first byte, before the preamble is whole. */
  why = NULL;
  ASSERT_EQ(parse_copy(b, 1, &info, &why), LASK_ECORRUPT);
  ASSERT_STREQ(why, "not an .npy file (bad magic)");
  ASSERT_EQ(parse_copy("\x93NUMPZ", 6, &info, &why), LASK_ECORRUPT);
  ASSERT_EQ(parse_copy("PK\x03\x04", 4, &info, &why), LASK_ECORRUPT);
  static const uint8_t versions[][2] = {{0, 0}, {1, 1}, {2, 1}, {4, 0},
                                        {0xff, 0}, {1, 0xff}};
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    memcpy(b, npy_f8_3x4, 128);
    b[6] = versions[i][0], b[7] = versions[i][1];
    why = NULL;
    ASSERT_EQ(parse_copy(b, 128, &info, &why), LASK_EINVAL);
    ASSERT_TRUE(why != NULL);
  }
  /* Header lengths that do not match the text. */
  memcpy(b, npy_f8_3x4, 128);
  b[8] = 0x75; /* one short: the '\n' is cut, fine */
  ASSERT_EQ(parse_copy(b, 128, &info, &why), 0);
  ASSERT_EQ(info.data_offset, (uint64_t)127);
  b[8] = 0x30; /* in the middle of the dict */
  ASSERT_EQ(parse_copy(b, 128, &info, &why), LASK_ECORRUPT);
  b[8] = 0, b[9] = 0; /* empty */
  ASSERT_EQ(parse_copy(b, 128, &info, &why), LASK_ECORRUPT);
}

TEST(npy_parse_rejects_bad_dicts) {
  static const struct {
    const char *dict;
    int rc;
    const char *why; /* NULL: any message */
  } bad[] = {
    {"", LASK_ECORRUPT, NULL},
    {"{", LASK_ECORRUPT, NULL},
    {"}", LASK_ECORRUPT, NULL},
    {"[]", LASK_ECORRUPT, NULL},
    {"{}", LASK_ECORRUPT, "the .npy header has no 'descr'"},
    {"{,}", LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,)",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }x",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,),, }",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8' 'fortran_order': False, 'shape': (3,)}", LASK_ECORRUPT,
     NULL},
    {"{'fortran_order': False, 'shape': (3,)}", LASK_ECORRUPT,
     "the .npy header has no 'descr'"},
    {"{'descr': '<f8', 'shape': (3,)}", LASK_ECORRUPT,
     "the .npy header has no 'fortran_order'"},
    {"{'descr': '<f8', 'fortran_order': False}", LASK_ECORRUPT,
     "the .npy header has no 'shape'"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'descr': "
     "'<f8'}",
     LASK_ECORRUPT, "the .npy header repeats a key"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
     LASK_ECORRUPT, "the .npy header has an unknown key"},
    {"{'Descr': '<f8', 'fortran_order': False, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{descr: '<f8', 'fortran_order': False, 'shape': (3,)}", LASK_ECORRUPT,
     NULL},
    {"{'descr\": '<f8', 'fortran_order': False, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr' '<f8', 'fortran_order': False, 'shape': (3,)}", LASK_ECORRUPT,
     NULL},
    {"{'descr': '<f\\x38', 'fortran_order': False, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8\n', 'fortran_order': False, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': 8, 'fortran_order': False, 'shape': (3,)}", LASK_ECORRUPT,
     NULL},
    {"{'descr': '<f8', 'fortran_order': 'False', 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': false, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': 0, 'shape': (3,)}", LASK_ECORRUPT,
     NULL},
    {"{'descr': '<f8', 'fortran_order': Truer, 'shape': (3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': [3]}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3)}", LASK_ECORRUPT,
     "'shape' is not a tuple"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': 3}", LASK_ECORRUPT,
     NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (,)}", LASK_ECORRUPT,
     NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3 4)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3a,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (abc,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (0x10,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3.0,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1_000,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (+3,)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': ((3,),)}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4}",
     LASK_ECORRUPT, NULL},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, -4)}",
     LASK_ECORRUPT, "negative dimension"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (-0,)}",
     LASK_ECORRUPT, "negative dimension"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
     "(99999999999999999999999,)}",
     LASK_ECORRUPT, "dimension too large"},
    {"{'descr': '<u1', 'fortran_order': False, 'shape': "
     "(9223372036854775808,)}",
     LASK_ECORRUPT, "dimension too large"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
     "(9223372036854775807,)}",
     LASK_ECORRUPT, "total size overflows"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': "
     "(1152921504606846976,)}",
     LASK_ECORRUPT, "total size overflows"},
    {"{'descr': '|u1', 'fortran_order': False, 'shape': "
     "(4294967296, 2147483648, 0)}",
     LASK_ECORRUPT, "total size overflows"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, "
     "1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, "
     "1, 1, 1, 1)}",
     LASK_EINVAL, "shape has more than 32 dimensions"},
    {"{'descr': '<c16', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '|i1', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '<u8', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '<f2', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '<f16', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '|f8', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': 'f8', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '<U5', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '|O', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': '<f0', 'fortran_order': False, 'shape': (3,)}", LASK_EINVAL,
     NULL},
    {"{'descr': [('x', '<f8')], 'fortran_order': False, 'shape': (3,)}",
     LASK_EINVAL, "unsupported dtype (a structured dtype)"},
    {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,)}\xe9",
     LASK_ECORRUPT, NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    struct lask_npy_info info;
    const char *why = NULL;
    int rc = parse_dict(bad[i].dict, &info, &why);
    if (rc != bad[i].rc)
      test__fail(__FILE__, __LINE__, "case %zu: %s", i, bad[i].dict);
    ASSERT_EQ(rc, bad[i].rc);
    ASSERT_TRUE(why != NULL && why[0] != '\0');
    if (bad[i].why != NULL) ASSERT_STREQ(why, bad[i].why);
    if (rc == LASK_EINVAL && bad[i].why == NULL)
      ASSERT_TRUE(strncmp(why, "unsupported dtype", 17) == 0);
  }
  /* A NUL byte inside the header; and a NULL 'why' is allowed. */
  uint8_t b[128];
  memcpy(b, npy_f8_3x4, 128);
  b[40] = 0;
  struct lask_npy_info info;
  ASSERT_EQ(parse_copy(b, 128, &info, NULL), LASK_ECORRUPT);
}

/* xorshift64: the mutation test's deterministic random numbers. */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

TEST(npy_parse_survives_mutations) {
  static const char alphabet[] = "{}()[],:'\" \n0123456789-LTrueFalse<>|=fiub";
  uint64_t seed = 0x6e70792d66757a7aull;
  int counts[4] = {0, 0, 0, 0};
  for (int iter = 0; iter < 200000; iter++) {
    const struct known *k = &known[rnd(&seed) % NKNOWN];
    uint8_t b[256];
    size_t n = k->len;
    memcpy(b, k->bytes, n);
    int edits = 1 + (int)(rnd(&seed) % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = (size_t)(rnd(&seed) % n);
      switch (rnd(&seed) % 5) {
      case 0: b[at] ^= (uint8_t)(1u << (rnd(&seed) % 8)); break;
      case 1: b[at] = (uint8_t)rnd(&seed); break;
      case 2: b[at] = (uint8_t)alphabet[rnd(&seed) % (sizeof alphabet - 1)];
        break;
      case 3: /* delete a byte */
        memmove(b + at, b + at + 1, n - at - 1);
        n--;
        break;
      default: /* cut the file short */
        n = at + 1;
        break;
      }
      if (n < 2) break;
    }
    struct lask_npy_info info;
    const char *why = NULL;
    int rc = parse_copy(b, n, &info, &why);
    if (rc == 0) {
      counts[0]++;
      ASSERT_TRUE(info.dtype >= 0 && info.dtype < LASK_DT_COUNT);
      ASSERT_TRUE(info.ndim >= 0 && info.ndim <= LASK_ND_MAXDIM);
      ASSERT_TRUE(info.swap == 0 || info.swap == 1);
      ASSERT_TRUE(info.fortran == 0 || info.fortran == 1);
      ASSERT_TRUE(info.data_offset <= n);
      for (int d = 0; d < info.ndim; d++) ASSERT_TRUE(info.shape[d] >= 0);
    } else if (rc == LASK_ETRUNC) {
      counts[1]++;
      ASSERT_TRUE(info.data_offset > n);
    } else {
      counts[rc == LASK_ECORRUPT ? 2 : 3]++;
      ASSERT_TRUE(rc == LASK_ECORRUPT || rc == LASK_EINVAL);
      ASSERT_TRUE(why != NULL && why[0] != '\0');
    }
  }
  /* Every outcome was seen: the mutations reach all of the parser. */
  for (int i = 0; i < 4; i++) ASSERT_TRUE(counts[i] > 100);
}
