/*
** npy.c: reader and writer of .npy headers (see npy.h for the layout).
** The reader is a small strict parser of the Python dict literal that
** every .npy writer produces; every read is checked against the end.
*/
#include <string.h>

#include "npy.h"

static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* Per dtype: item size, NumPy kind letter, name. */
static const struct {
  int size;
  char kind;
  const char *name;
} dtypes[LASK_DT_COUNT] = {
  [LASK_DT_F64] = {8, 'f', "float64"}, [LASK_DT_F32] = {4, 'f', "float32"},
  [LASK_DT_I64] = {8, 'i', "int64"},   [LASK_DT_I32] = {4, 'i', "int32"},
  [LASK_DT_U8] = {1, 'u', "uint8"},    [LASK_DT_BOOL] = {1, 'b', "bool"},
};

int lask__dtype_size(int dtype) {
  return dtype >= 0 && dtype < LASK_DT_COUNT ? dtypes[dtype].size : 0;
}

const char *lask__dtype_name(int dtype) {
  return dtype >= 0 && dtype < LASK_DT_COUNT ? dtypes[dtype].name : NULL;
}

/* Checks that 'itemsize' times the product of the dimensions (a zero one
** counted as 1, as NumPy does) fits in int64_t: 0, or -1. */
static int size_ok(int itemsize, int ndim, const int64_t *shape) {
  int64_t total = itemsize;
  for (int i = 0; i < ndim; i++) {
    int64_t d = shape[i] > 0 ? shape[i] : 1;
    if (total > INT64_MAX / d) return -1;
    total *= d;
  }
  return 0;
}

/* ------------------------------------------------------------- reader */

struct cur {
  const uint8_t *p;
  const uint8_t *end;
};

#define FAIL(rc, msg) \
  do { \
    if (why != NULL) *why = (msg); \
    return (rc); \
  } while (0)

static void skip_ws(struct cur *c) {
  while (c->p < c->end &&
         (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

/* Skips white space, then 'ch' if it comes next: 1 if it did, else 0. */
static int eat(struct cur *c, int ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return 1;
  }
  return 0;
}

/* A quoted string without escapes: 0 with *s, *len; or -1. */
static int get_str(struct cur *c, const uint8_t **s, size_t *len) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return -1;
  uint8_t q = *c->p++;
  const uint8_t *start = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\' || *c->p == '\n') return -1;
    c->p++;
  }
  if (c->p >= c->end) return -1;
  *s = start;
  *len = (size_t)(c->p - start);
  c->p++;
  return 0;
}

static int str_is(const uint8_t *s, size_t len, const char *lit) {
  return len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* An identifier-like word (True, False): 1 if 'lit' comes next. */
static int eat_word(struct cur *c, const char *lit) {
  size_t len = strlen(lit);
  skip_ws(c);
  if ((size_t)(c->end - c->p) < len || memcmp(c->p, lit, len) != 0) return 0;
  c->p += len;
  return 1;
}

static int parse_descr(struct cur *c, struct lask_npy_info *info,
                       const char **why) {
  const uint8_t *s;
  size_t len;
  skip_ws(c);
  if (c->p < c->end && *c->p == '[')
    FAIL(LASK_EINVAL, "unsupported dtype (a structured dtype)");
  if (get_str(c, &s, &len) != 0) FAIL(LASK_ECORRUPT, "'descr' is not a string");
  if (len == 3 && s[2] >= '1' && s[2] <= '9') {
    for (int dt = 0; dt < LASK_DT_COUNT; dt++) {
      if (s[1] != dtypes[dt].kind || s[2] - '0' != dtypes[dt].size) continue;
      int big;
      if (s[0] == '<') {
        big = 0;
      } else if (s[0] == '>') {
        big = 1;
      } else if (s[0] == '=' || (s[0] == '|' && dtypes[dt].size == 1)) {
        big = -1; /* native */
      } else {
        break;
      }
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
      int native_big = 1;
#else
      int native_big = 0;
#endif
      info->dtype = dt;
      info->swap = dtypes[dt].size > 1 && big >= 0 && big != native_big;
      return 0;
    }
  }
  FAIL(LASK_EINVAL,
       "unsupported dtype (lask reads f8, f4, i8, i4, u1 and b1 only)");
}

static int parse_fortran(struct cur *c, struct lask_npy_info *info,
                         const char **why) {
  if (eat_word(c, "True")) {
    info->fortran = 1;
  } else if (eat_word(c, "False")) {
    info->fortran = 0;
  } else {
    FAIL(LASK_ECORRUPT, "'fortran_order' is not True or False");
  }
  return 0;
}

/* A tuple of non-negative decimal integers: (), (n,), (n, m), (n, m,). */
static int parse_shape(struct cur *c, struct lask_npy_info *info,
                       const char **why) {
  if (!eat(c, '(')) FAIL(LASK_ECORRUPT, "'shape' is not a tuple");
  info->ndim = 0;
  if (eat(c, ')')) return 0;
  for (;;) {
    skip_ws(c);
    if (c->p < c->end && *c->p == '-') FAIL(LASK_ECORRUPT, "negative dimension");
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
      FAIL(LASK_ECORRUPT, "'shape' holds something other than integers");
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      int d = *c->p++ - '0';
      if (v > (INT64_MAX - d) / 10) FAIL(LASK_ECORRUPT, "dimension too large");
      v = v * 10 + d;
    }
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) c->p++; /* Python 2 */
    if (info->ndim == LASK_ND_MAXDIM)
      FAIL(LASK_EINVAL, "shape has more than 32 dimensions");
    info->shape[info->ndim++] = v;
    if (eat(c, ')')) {
      /* (5) is the number 5, not a tuple. */
      if (info->ndim == 1) FAIL(LASK_ECORRUPT, "'shape' is not a tuple");
      return 0;
    }
    if (!eat(c, ',')) FAIL(LASK_ECORRUPT, "'shape' is not a tuple of integers");
    if (eat(c, ')')) return 0;
  }
}

/* The dict between the preamble and the data: exactly the three keys. */
static int parse_dict(struct cur *c, struct lask_npy_info *info,
                      const char **why) {
  enum { K_DESCR = 1, K_FORTRAN = 2, K_SHAPE = 4 };
  unsigned seen = 0;
  if (!eat(c, '{')) FAIL(LASK_ECORRUPT, "the .npy header is not a dict");
  if (!eat(c, '}')) {
    for (;;) {
      const uint8_t *key;
      size_t len;
      unsigned k;
      int rc;
      if (get_str(c, &key, &len) != 0)
        FAIL(LASK_ECORRUPT, "the .npy header has a key that is not a string");
      if (!eat(c, ':')) FAIL(LASK_ECORRUPT, "the .npy header lacks a ':'");
      if (str_is(key, len, "descr")) {
        k = K_DESCR;
      } else if (str_is(key, len, "fortran_order")) {
        k = K_FORTRAN;
      } else if (str_is(key, len, "shape")) {
        k = K_SHAPE;
      } else {
        FAIL(LASK_ECORRUPT, "the .npy header has an unknown key");
      }
      if (seen & k) FAIL(LASK_ECORRUPT, "the .npy header repeats a key");
      seen |= k;
      rc = k == K_DESCR     ? parse_descr(c, info, why)
           : k == K_FORTRAN ? parse_fortran(c, info, why)
                            : parse_shape(c, info, why);
      if (rc != 0) return rc;
      if (eat(c, '}')) break;
      if (!eat(c, ',')) FAIL(LASK_ECORRUPT, "the .npy header lacks a ',' or '}'");
      if (eat(c, '}')) break;
    }
  }
  skip_ws(c);
  if (c->p != c->end)
    FAIL(LASK_ECORRUPT, "the .npy header has bytes after its dict");
  if (!(seen & K_DESCR)) FAIL(LASK_ECORRUPT, "the .npy header has no 'descr'");
  if (!(seen & K_FORTRAN))
    FAIL(LASK_ECORRUPT, "the .npy header has no 'fortran_order'");
  if (!(seen & K_SHAPE)) FAIL(LASK_ECORRUPT, "the .npy header has no 'shape'");
  return 0;
}

int lask__npy_parse(const uint8_t *p, size_t n, struct lask_npy_info *info,
                    const char **why) {
  for (size_t i = 0; i < 6 && i < n; i++) {
    if (p[i] != magic[i]) FAIL(LASK_ECORRUPT, "not an .npy file (bad magic)");
  }
  info->data_offset = 12;
  if (n < 8) return LASK_ETRUNC;
  if (p[7] != 0 || p[6] < 1 || p[6] > 3)
    FAIL(LASK_EINVAL, "unsupported .npy format version (not 1.0, 2.0, 3.0)");
  size_t pre = p[6] == 1 ? 10 : 12;
  info->data_offset = pre;
  if (n < pre) return LASK_ETRUNC;
  uint32_t hlen = (uint32_t)p[8] | (uint32_t)p[9] << 8;
  if (pre == 12) hlen |= (uint32_t)p[10] << 16 | (uint32_t)p[11] << 24;
  if (hlen > LASK_NPY_HEADER_LIMIT)
    FAIL(LASK_ECORRUPT, "the .npy header is too long");
  info->data_offset = pre + hlen;
  if (n < pre + hlen) return LASK_ETRUNC;

  struct cur c = {p + pre, p + pre + hlen};
  int rc = parse_dict(&c, info, why);
  if (rc != 0) return rc;
  int size = dtypes[info->dtype].size;
  if (size_ok(size, info->ndim, info->shape) != 0)
    FAIL(LASK_ECORRUPT, "total size overflows");
  uint64_t bytes = (uint64_t)size;
  for (int i = 0; i < info->ndim; i++) bytes *= (uint64_t)info->shape[i];
  if (bytes > UINT64_MAX - info->data_offset)
    FAIL(LASK_ECORRUPT, "total size overflows");
  return 0;
}

/* ------------------------------------------------------------- writer */

/* Appends the decimal digits of 'v' (>= 0) at 's': the count. */
static size_t put_int(char *s, int64_t v) {
  char tmp[20];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v > 0);
  for (size_t i = 0; i < n; i++) s[i] = tmp[n - 1 - i];
  return n;
}

static size_t put_lit(char *s, const char *lit) {
  size_t n = strlen(lit);
  memcpy(s, lit, n);
  return n;
}

int64_t lask__npy_header(int dtype, int ndim, const int64_t *shape,
                         uint8_t *out, size_t cap) {
  if (dtype < 0 || dtype >= LASK_DT_COUNT) return LASK_EINVAL;
  if (ndim < 0 || ndim > LASK_ND_MAXDIM) return LASK_EINVAL;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return LASK_EINVAL;
  }
  if (size_ok(dtypes[dtype].size, ndim, shape) != 0) return LASK_EINVAL;

  /* The dict as Python's repr writes it, keys sorted, then the spaces
  ** NumPy leaves for the first dimension to grow to 21 digits. At most
  ** 52 + 32 * 21 + 4 + 20 bytes: well within 'dict'. */
  char dict[LASK_NPY_HEADER_MAX];
  size_t len = put_lit(dict, "{'descr': '");
  dict[len++] = dtypes[dtype].size == 1 ? '|' : '<';
  dict[len++] = dtypes[dtype].kind;
  dict[len++] = (char)('0' + dtypes[dtype].size);
  len += put_lit(dict + len, "', 'fortran_order': False, 'shape': (");
  for (int i = 0; i < ndim; i++) {
    if (i > 0) len += put_lit(dict + len, ", ");
    len += put_int(dict + len, shape[i]);
  }
  len += put_lit(dict + len, ndim == 1 ? ",), }" : "), }");
  if (ndim > 0) {
    char digits[20];
    size_t grow = 21 - put_int(digits, shape[0]);
    memset(dict + len, ' ', grow);
    len += grow;
  }

  /* Spaces then '\n' up to a multiple of 64; like NumPy, a full 64 spaces
  ** when the text already ends on a boundary. */
  size_t pre = 10;
  size_t pad = 64 - (pre + len + 1) % 64;
  if (len + pad + 1 > 0xffff) {
    pre = 12;
    pad = 64 - (pre + len + 1) % 64;
  }
  size_t hlen = len + pad + 1, total = pre + hlen;
  if (cap < total) return LASK_ETOOBIG;
  memcpy(out, magic, 6);
  out[6] = pre == 10 ? 1 : 2;
  out[7] = 0;
  out[8] = (uint8_t)hlen;
  out[9] = (uint8_t)(hlen >> 8);
  if (pre == 12) {
    out[10] = (uint8_t)(hlen >> 16);
    out[11] = (uint8_t)(hlen >> 24);
  }
  memcpy(out + pre, dict, len);
  memset(out + pre + len, ' ', pad);
  out[total - 1] = '\n';
  return (int64_t)total;
}
