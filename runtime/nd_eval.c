/*
** nd_eval.c: fused elementwise programs (format in nd.h).
**
** A program runs over its output in runs of at most BLK elements: each
** instruction is one tight loop over the run, on registers that stay in
** the first-level cache, so a chain such as sin(x)^2 + cos(x)^2 reads x
** once and writes the result once, with no temporary array. A LOAD of a
** contiguous float64 (int64) input into the F (I) lane reads the input in
** place, and the last instruction writes straight into a contiguous
** output of its lane's width.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_iter.h"

#define BLK 512

/* The base of virtual operands, whose "addresses" are only offsets from
** it (positions times 8), never dereferenced. */
char lask__nd_origin[1];
#define MAX_INPUTS 32

struct ins {
  uint8_t op, dst, a, b, c;
};

struct prog {
  int nregs, ninputs, nconsts, result, nins;
  uint8_t lane[256];       /* per register */
  uint8_t const_lane[256]; /* per constant */
  double cf[256];
  int64_t ci[256];
  struct ins *ins;
};

static const uint8_t *parse_fail(const char **why, const char *msg) {
  *why = msg;
  return NULL;
}

static int input_lane(int dtype) {
  return nd_is_float(dtype) ? LASK_LANE_F : LASK_LANE_I;
}

/* Parses and checks 'p' against the inputs' dtypes. Returns 0 or
** LASK_EINVAL with *why; pr->ins is malloc'd on success. */
static int prog_parse(const uint8_t *p, size_t n, int ninputs,
                      const struct lask_nd *inputs, struct prog *pr,
                      const char **why) {
  pr->ins = NULL;
  if (n < 4) return parse_fail(why, "program too short"), LASK_EINVAL;
  pr->nregs = p[0];
  pr->ninputs = p[1];
  pr->nconsts = p[2];
  pr->result = p[3];
  if (pr->ninputs != ninputs)
    return parse_fail(why, "program expects another number of inputs"),
           LASK_EINVAL;
  if (ninputs > MAX_INPUTS)
    return parse_fail(why, "program has more than 32 inputs"), LASK_EINVAL;
  size_t at = 4;
  if (n - at < (size_t)p[2] * 9)
    return parse_fail(why, "program's constants are truncated"), LASK_EINVAL;
  for (int k = 0; k < pr->nconsts; k++, at += 9) {
    uint64_t u = 0;
    for (int j = 7; j >= 0; j--) u = (u << 8) | p[at + 1 + (size_t)j];
    pr->const_lane[k] = p[at];
    if (p[at] == LASK_LANE_F) memcpy(&pr->cf[k], &u, 8);
    else if (p[at] == LASK_LANE_I) pr->ci[k] = (int64_t)u;
    else return parse_fail(why, "bad constant lane"), LASK_EINVAL;
  }
  if ((n - at) % 4 != 0 || n == at)
    return parse_fail(why, "program's instructions are malformed"),
           LASK_EINVAL;
  int cap = (int)((n - at) / 4);
  pr->ins = malloc(sizeof *pr->ins * (size_t)cap);
  if (!pr->ins) return parse_fail(why, "out of memory"), LASK_ENOMEM;
  uint8_t written[256] = {0};
  pr->nins = 0;
  for (; at < n; at += 4) {
    struct ins in = {p[at], p[at + 1], p[at + 2], p[at + 3], 0};
    int la = -1, lb = -1, lc = -1, out = -1;
    if (in.op >= LASK_OP_COUNT) goto bad_op;
    if (in.dst >= pr->nregs || written[in.dst]) goto bad_reg;
    if (in.op == LASK_OP_WHERE) {
      if (n - at < 8 || p[at + 4] != 0) goto bad_op;
      in.c = p[at + 5];
      at += 4;
    }
    if (in.op == LASK_OP_LOAD) {
      if (in.a >= ninputs) goto bad_reg;
      out = input_lane(inputs[in.a].dtype);
    } else if (in.op == LASK_OP_CONST) {
      if (in.a >= pr->nconsts) goto bad_reg;
      out = pr->const_lane[in.a];
    } else {
      if (in.a >= pr->nregs || !written[in.a]) goto bad_reg;
      la = pr->lane[in.a];
      switch (in.op) {
      case LASK_OP_ADD: case LASK_OP_SUB: case LASK_OP_MUL:
      case LASK_OP_MOD: case LASK_OP_MAX: case LASK_OP_MIN:
        lb = la;
        out = la;
        break;
      case LASK_OP_DIV: case LASK_OP_POW: case LASK_OP_FMAX:
      case LASK_OP_FMIN: case LASK_OP_ATAN2:
        if (la != LASK_LANE_F) goto bad_lane;
        lb = la;
        out = la;
        break;
      case LASK_OP_EQ: case LASK_OP_NE: case LASK_OP_LT: case LASK_OP_LE:
      case LASK_OP_GT: case LASK_OP_GE:
        lb = la;
        out = LASK_LANE_I;
        break;
      case LASK_OP_AND: case LASK_OP_OR: case LASK_OP_XOR:
        if (la != LASK_LANE_I) goto bad_lane;
        lb = la;
        out = la;
        break;
      case LASK_OP_NEG: case LASK_OP_ABS: case LASK_OP_SIGN:
      case LASK_OP_SQUARE:
        out = la;
        break;
      case LASK_OP_WRAPU8: case LASK_OP_WRAPI32:
        if (la != LASK_LANE_I) goto bad_lane;
        out = la;
        break;
      case LASK_OP_NOT: case LASK_OP_TOF:
        if (la != LASK_LANE_I) goto bad_lane;
        out = in.op == LASK_OP_NOT ? LASK_LANE_I : LASK_LANE_F;
        break;
      case LASK_OP_ISNAN: case LASK_OP_ISINF: case LASK_OP_ISFINITE:
      case LASK_OP_TOI:
        if (la != LASK_LANE_F) goto bad_lane;
        out = LASK_LANE_I;
        break;
      case LASK_OP_WHERE:
        if (la != LASK_LANE_I) goto bad_lane;
        if (in.b >= pr->nregs || !written[in.b]) goto bad_reg;
        lb = pr->lane[in.b];
        lc = lb;
        out = lb;
        break;
      default: /* float functions */
        if (la != LASK_LANE_F) goto bad_lane;
        out = la;
        break;
      }
      if (lb >= 0) {
        if (in.b >= pr->nregs || !written[in.b]) goto bad_reg;
        if (pr->lane[in.b] != lb) goto bad_lane;
      }
      if (lc >= 0) {
        if (in.c >= pr->nregs || !written[in.c]) goto bad_reg;
        if (pr->lane[in.c] != lc) goto bad_lane;
      }
    }
    written[in.dst] = 1;
    pr->lane[in.dst] = (uint8_t)out;
    pr->ins[pr->nins++] = in;
  }
  if (pr->result >= pr->nregs || !written[pr->result]) goto bad_reg;
  return 0;
bad_op:
  *why = "program has an unknown or malformed instruction";
  goto fail;
bad_reg:
  *why = "program uses a register, input or constant that does not exist "
         "or is not yet written";
  goto fail;
bad_lane:
  *why = "program mixes integer and float operands";
fail:
  free(pr->ins);
  pr->ins = NULL;
  return LASK_EINVAL;
}

/* ---- loads and stores between arrays and register blocks ---- */

void lask__nd_load_block(int lane, int dt, const char *s, int64_t st,
                       int64_t n, void *dstv) {
  if (lane == LASK_LANE_F) {
    double *d = dstv;
    switch (dt) {
    case LASK_DT_F64:
      for (int64_t k = 0; k < n; k++) memcpy(&d[k], s + k * st, 8);
      break;
    case LASK_DT_F32:
      for (int64_t k = 0; k < n; k++) {
        float v;
        memcpy(&v, s + k * st, 4);
        d[k] = v;
      }
      break;
    default:
      for (int64_t k = 0; k < n; k++) d[k] = nd_load_f(s + k * st, dt);
    }
  } else {
    int64_t *d = dstv;
    switch (dt) {
    case LASK_DT_I64:
      for (int64_t k = 0; k < n; k++) memcpy(&d[k], s + k * st, 8);
      break;
    case LASK_DT_I32:
      for (int64_t k = 0; k < n; k++) {
        int32_t v;
        memcpy(&v, s + k * st, 4);
        d[k] = v;
      }
      break;
    case LASK_DT_U8:
      for (int64_t k = 0; k < n; k++) d[k] = ((const uint8_t *)s)[k * st];
      break;
    default:
      for (int64_t k = 0; k < n; k++) d[k] = ((const uint8_t *)s)[k * st] != 0;
    }
  }
}

void lask__nd_store_block(int lane, int dt, char *d, int64_t st, int64_t n,
                        const void *srcv) {
  if (lane == LASK_LANE_F) {
    const double *s = srcv;
    if (dt == LASK_DT_F64) {
      for (int64_t k = 0; k < n; k++) memcpy(d + k * st, &s[k], 8);
    } else {
      for (int64_t k = 0; k < n; k++) {
        float v = (float)s[k];
        memcpy(d + k * st, &v, 4);
      }
    }
  } else {
    const int64_t *s = srcv;
    switch (dt) {
    case LASK_DT_I64:
      for (int64_t k = 0; k < n; k++) memcpy(d + k * st, &s[k], 8);
      break;
    case LASK_DT_I32:
      for (int64_t k = 0; k < n; k++) {
        int32_t v = (int32_t)(uint32_t)(uint64_t)s[k];
        memcpy(d + k * st, &v, 4);
      }
      break;
    case LASK_DT_U8:
      for (int64_t k = 0; k < n; k++) ((uint8_t *)d)[k * st] = (uint8_t)s[k];
      break;
    default:
      for (int64_t k = 0; k < n; k++) ((uint8_t *)d)[k * st] = s[k] != 0;
    }
  }
}

/* ---- the operations, one loop each ---- */

static double f_max(double a, double b) {
  return a != a ? a : (b != b ? b : (a >= b ? a : b));
}
static double f_min(double a, double b) {
  return a != a ? a : (b != b ? b : (a <= b ? a : b));
}
static double f_mod(double a, double b) { /* NumPy's remainder */
  double r = fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  else if (r == 0) r = copysign(0.0, b);
  return r;
}
static double f_sign(double a) {
  return a > 0 ? 1.0 : (a < 0 ? -1.0 : a); /* keeps 0, -0 and NaN */
}
static int64_t i_mod(int64_t a, int64_t b) {
  if (b == 0 || b == -1) return 0;
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}
static int64_t i_wrap(uint64_t u) { return (int64_t)u; }
static int64_t f_toi(double v) {
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
    return INT64_MIN;
  return (int64_t)v;
}

#define LOOP(expr) for (int64_t k = 0; k < n; k++) d[k] = (expr)

static void run_f(int op, int64_t n, double *restrict d, const double *a,
                  const double *b) {
  if (op >= LASK_OP_SQRT && lask__vmath(op, d, a, n)) return;
  switch (op) {
  case LASK_OP_ADD: LOOP(a[k] + b[k]); break;
  case LASK_OP_SUB: LOOP(a[k] - b[k]); break;
  case LASK_OP_MUL: LOOP(a[k] * b[k]); break;
  case LASK_OP_DIV: LOOP(a[k] / b[k]); break;
  case LASK_OP_MOD: LOOP(f_mod(a[k], b[k])); break;
  case LASK_OP_POW: LOOP(pow(a[k], b[k])); break;
  case LASK_OP_MAX: LOOP(f_max(a[k], b[k])); break;
  case LASK_OP_MIN: LOOP(f_min(a[k], b[k])); break;
  case LASK_OP_FMAX: LOOP(fmax(a[k], b[k])); break;
  case LASK_OP_FMIN: LOOP(fmin(a[k], b[k])); break;
  case LASK_OP_ATAN2: LOOP(atan2(a[k], b[k])); break;
  case LASK_OP_NEG: LOOP(-a[k]); break;
  case LASK_OP_ABS: LOOP(fabs(a[k])); break;
  case LASK_OP_SIGN: LOOP(f_sign(a[k])); break;
  case LASK_OP_SQUARE: LOOP(a[k] * a[k]); break;
  case LASK_OP_SQRT: LOOP(sqrt(a[k])); break;
  case LASK_OP_EXP: LOOP(exp(a[k])); break;
  case LASK_OP_LOG: LOOP(log(a[k])); break;
  case LASK_OP_LOG10: LOOP(log10(a[k])); break;
  case LASK_OP_LOG2: LOOP(log2(a[k])); break;
  case LASK_OP_LOG1P: LOOP(log1p(a[k])); break;
  case LASK_OP_EXPM1: LOOP(expm1(a[k])); break;
  case LASK_OP_SIN: LOOP(sin(a[k])); break;
  case LASK_OP_COS: LOOP(cos(a[k])); break;
  case LASK_OP_TAN: LOOP(tan(a[k])); break;
  case LASK_OP_ASIN: LOOP(asin(a[k])); break;
  case LASK_OP_ACOS: LOOP(acos(a[k])); break;
  case LASK_OP_ATAN: LOOP(atan(a[k])); break;
  case LASK_OP_SINH: LOOP(sinh(a[k])); break;
  case LASK_OP_COSH: LOOP(cosh(a[k])); break;
  case LASK_OP_TANH: LOOP(tanh(a[k])); break;
  case LASK_OP_FLOOR: LOOP(floor(a[k])); break;
  case LASK_OP_CEIL: LOOP(ceil(a[k])); break;
  case LASK_OP_ROUND: LOOP(nearbyint(a[k])); break;
  case LASK_OP_TRUNC: LOOP(trunc(a[k])); break;
  case LASK_OP_TOF32: LOOP((double)(float)a[k]); break;
  }
}

static void run_i(int op, int64_t n, int64_t *restrict d, const int64_t *a,
                  const int64_t *b) {
  switch (op) {
  case LASK_OP_ADD: LOOP(i_wrap((uint64_t)a[k] + (uint64_t)b[k])); break;
  case LASK_OP_SUB: LOOP(i_wrap((uint64_t)a[k] - (uint64_t)b[k])); break;
  case LASK_OP_MUL: LOOP(i_wrap((uint64_t)a[k] * (uint64_t)b[k])); break;
  case LASK_OP_MOD: LOOP(i_mod(a[k], b[k])); break;
  case LASK_OP_MAX: LOOP(a[k] >= b[k] ? a[k] : b[k]); break;
  case LASK_OP_MIN: LOOP(a[k] <= b[k] ? a[k] : b[k]); break;
  case LASK_OP_AND: LOOP((a[k] != 0) & (b[k] != 0)); break;
  case LASK_OP_OR: LOOP((a[k] != 0) | (b[k] != 0)); break;
  case LASK_OP_XOR: LOOP((a[k] != 0) ^ (b[k] != 0)); break;
  case LASK_OP_NEG: LOOP(i_wrap(0 - (uint64_t)a[k])); break;
  case LASK_OP_ABS: LOOP(a[k] < 0 ? i_wrap(0 - (uint64_t)a[k]) : a[k]); break;
  case LASK_OP_SIGN: LOOP((a[k] > 0) - (a[k] < 0)); break;
  case LASK_OP_SQUARE: LOOP(i_wrap((uint64_t)a[k] * (uint64_t)a[k])); break;
  case LASK_OP_NOT: LOOP(a[k] == 0); break;
  case LASK_OP_WRAPU8: LOOP((int64_t)(uint8_t)a[k]); break;
  case LASK_OP_WRAPI32: LOOP((int64_t)(int32_t)(uint32_t)(uint64_t)a[k]); break;
  }
}

#define CMP(T, A, B)                                                      \
  switch (op) {                                                           \
  case LASK_OP_EQ: LOOP(((const T *)A)[k] == ((const T *)B)[k]); break;   \
  case LASK_OP_NE: LOOP(((const T *)A)[k] != ((const T *)B)[k]); break;   \
  case LASK_OP_LT: LOOP(((const T *)A)[k] < ((const T *)B)[k]); break;    \
  case LASK_OP_LE: LOOP(((const T *)A)[k] <= ((const T *)B)[k]); break;   \
  case LASK_OP_GT: LOOP(((const T *)A)[k] > ((const T *)B)[k]); break;    \
  case LASK_OP_GE: LOOP(((const T *)A)[k] >= ((const T *)B)[k]); break;   \
  }

static void run_ins(const struct prog *pr, const struct ins *in, int64_t n,
                    void *dv, void *const *rp) {
  const void *a = rp[in->a], *b = rp[in->b];
  int la = pr->lane[in->a], op = in->op;
  switch (in->op) {
  case LASK_OP_EQ: case LASK_OP_NE: case LASK_OP_LT: case LASK_OP_LE:
  case LASK_OP_GT: case LASK_OP_GE: {
    int64_t *restrict d = dv;
    if (la == LASK_LANE_F) { CMP(double, a, b) } else { CMP(int64_t, a, b) }
    return;
  }
  case LASK_OP_ISNAN: case LASK_OP_ISINF: case LASK_OP_ISFINITE:
  case LASK_OP_TOI: {
    int64_t *restrict d = dv;
    const double *x = a;
    if (in->op == LASK_OP_ISNAN) LOOP(isnan(x[k]) != 0);
    else if (in->op == LASK_OP_ISINF) LOOP(isinf(x[k]) != 0);
    else if (in->op == LASK_OP_ISFINITE) LOOP(isfinite(x[k]) != 0);
    else LOOP(f_toi(x[k]));
    return;
  }
  case LASK_OP_TOF: {
    double *restrict d = dv;
    const int64_t *x = a;
    LOOP((double)x[k]);
    return;
  }
  case LASK_OP_WHERE: {
    const int64_t *c = a;
    const void *t = rp[in->b], *f = rp[in->c];
    if (pr->lane[in->b] == LASK_LANE_F) {
      double *restrict d = dv;
      LOOP(c[k] ? ((const double *)t)[k] : ((const double *)f)[k]);
    } else {
      int64_t *restrict d = dv;
      LOOP(c[k] ? ((const int64_t *)t)[k] : ((const int64_t *)f)[k]);
    }
    return;
  }
  }
  if (la == LASK_LANE_F) run_f(in->op, n, dv, a, b);
  else run_i(in->op, n, dv, a, b);
}

/* Runs the program over one run of n elements (n <= BLK) whose input
** elements start at ip[k] with inner strides ist[k]. 'direct' (or NULL) is
** where the result may be written in place. Returns the result block. */
static const void *run_block(const struct prog *pr, int nins,
                             const struct lask_nd *inputs, char *const *ip,
                             const int64_t *ist, int64_t n, void *direct,
                             void **rp, char *store) {
  for (int i = 0; i < nins; i++) {
    const struct ins *in = &pr->ins[i];
    void *own = store + (size_t)in->dst * BLK * 8;
    if (in->op == LASK_OP_CONST) continue; /* filled once, read-only */
    if (in->op == LASK_OP_LOAD) {
      int dt = inputs[in->a].dtype;
      int lane = input_lane(dt);
      int64_t st = ist[in->a];
      if (st == 8 && (dt == LASK_DT_F64 || dt == LASK_DT_I64)) {
        rp[in->dst] = ip[in->a]; /* read in place */
      } else {
        lask__nd_load_block(lane, dt, ip[in->a], st, n, own);
        rp[in->dst] = own;
      }
      continue;
    }
    void *d = (in->dst == pr->result && direct) ? direct : own;
    run_ins(pr, in, n, d, rp);
    rp[in->dst] = d;
  }
  return rp[pr->result];
}

static char *alloc_regs(const struct prog *pr, void **rp) {
  char *store = malloc((size_t)pr->nregs * BLK * 8);
  if (!store) return NULL;
  for (int i = 0; i < pr->nins; i++) { /* constants: filled once */
    const struct ins *in = &pr->ins[i];
    if (in->op != LASK_OP_CONST) continue;
    void *own = store + (size_t)in->dst * BLK * 8;
    if (pr->const_lane[in->a] == LASK_LANE_F) {
      double *d = own;
      for (int k = 0; k < BLK; k++) d[k] = pr->cf[in->a];
    } else {
      int64_t *d = own;
      for (int k = 0; k < BLK; k++) d[k] = pr->ci[in->a];
    }
    rp[in->dst] = own;
  }
  return store;
}

/* Sets up the walk over 'nd' axes of 'shape' for out (operand 0, when
** 'out' is given) and the inputs. */
static int walk_init(struct nd_iter *it, int nd, const int64_t *shape,
                     const struct lask_nd *out, int ninputs,
                     const struct lask_nd *inputs, int64_t *flat_st) {
  static const int64_t zero[LASK_ND_MAXDIM];
  int64_t(*st)[LASK_ND_MAXDIM] = malloc(sizeof *st * LASK__ITER_MAXOPS);
  char *base[LASK__ITER_MAXOPS];
  if (!st) return -1;
  int k = 0;
  if (out) {
    nd_iter_strides(out, nd, shape, st[k]);
    base[k++] = lask__nd_data(out);
  } else { /* a virtual C-contiguous operand: offsets are positions * 8 */
    memcpy(st[k], flat_st ? flat_st : zero, sizeof st[k]);
    base[k++] = lask__nd_origin;
  }
  for (int i = 0; i < ninputs; i++) {
    nd_iter_strides(&inputs[i], nd, shape, st[k]);
    base[k++] = lask__nd_data(&inputs[i]);
  }
  int r = nd_iter_init(it, nd, shape, k, st, base);
  free(st);
  return r;
}

/* ---- full reductions of a program's result ---- */

/* Sums (expr), i running over 0..n-1, into 8 partial sums s[], from k
** (callers start it at 0): 8 independent additions a step, so that the
** loop vectorizes; sum8 adds the partial sums up, pairwise. */
#define SUM8(expr)                                                        \
  do {                                                                    \
    for (; k + 8 <= n; k += 8)                                            \
      for (int j = 0; j < 8; j++) {                                       \
        int64_t i = k + j;                                                \
        s[j] += (expr);                                                   \
      }                                                                   \
    for (; k < n; k++) {                                                  \
      int64_t i = k;                                                      \
      s[0] += (expr);                                                     \
    }                                                                     \
  } while (0)

static double sum8(const double *s) {
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void reduce_f(int op, int skipnan, const double *x, int64_t n,
                     int64_t pos0, struct lask_red_acc *acc) {
  switch (op) {
  case LASK_RED_SUM: {
    double s[8] = {0};
    int64_t k = 0, cnt = n;
    if (!skipnan) {
      SUM8(x[i]);
    } else {
      for (; k < n; k++) {
        if (x[k] == x[k]) s[k & 7] += x[k];
        else cnt--;
      }
    }
    acc->f += sum8(s);
    acc->count += cnt;
    return;
  }
  case LASK_RED_SQDEV: {
    double s = 0, m = acc->mean;
    int64_t cnt = 0;
    for (int64_t k = 0; k < n; k++) {
      double d = x[k] - m;
      if (skipnan && x[k] != x[k]) continue;
      s += d * d;
      cnt++;
    }
    acc->f += s;
    acc->count += cnt;
    return;
  }
  case LASK_RED_PROD:
    for (int64_t k = 0; k < n; k++) {
      if (skipnan && x[k] != x[k]) continue;
      acc->f *= x[k];
      acc->count++;
    }
    return;
  case LASK_RED_COUNT:
    for (int64_t k = 0; k < n; k++)
      if (!skipnan || x[k] == x[k]) acc->count++;
    return;
  case LASK_RED_ANY: case LASK_RED_ALL:
    for (int64_t k = 0; k < n; k++) {
      int t = x[k] != 0;
      if (op == LASK_RED_ANY ? t : !t) acc->i = op == LASK_RED_ANY;
    }
    acc->count += n;
    return;
  default: { /* MIN MAX ARGMIN ARGMAX */
    int mx = op == LASK_RED_MAX || op == LASK_RED_ARGMAX;
    for (int64_t k = 0; k < n; k++) {
      double v = x[k];
      if (v != v) {
        if (skipnan) continue;
        if (acc->f == acc->f) { /* the first NaN wins */
          acc->f = v;
          acc->pos = pos0 + k;
        }
        acc->count++;
        continue;
      }
      if (acc->count == 0 ||
          (acc->f == acc->f && (mx ? v > acc->f : v < acc->f))) {
        acc->f = v;
        acc->pos = pos0 + k;
      }
      acc->count++;
    }
  }
  }
}

static void reduce_i(int op, const int64_t *x, int64_t n, int64_t pos0,
                     struct lask_red_acc *acc) {
  switch (op) {
  case LASK_RED_SUM: {
    uint64_t s = (uint64_t)acc->i;
    for (int64_t k = 0; k < n; k++) s += (uint64_t)x[k];
    acc->i = (int64_t)s;
    break;
  }
  case LASK_RED_PROD: {
    uint64_t s = (uint64_t)acc->i;
    for (int64_t k = 0; k < n; k++) s *= (uint64_t)x[k];
    acc->i = (int64_t)s;
    break;
  }
  case LASK_RED_SQDEV: {
    double s = 0, m = acc->mean;
    for (int64_t k = 0; k < n; k++) {
      double d = (double)x[k] - m;
      s += d * d;
    }
    acc->f += s;
    break;
  }
  case LASK_RED_ANY: case LASK_RED_ALL:
    for (int64_t k = 0; k < n; k++) {
      int t = x[k] != 0;
      if (op == LASK_RED_ANY ? t : !t) acc->i = op == LASK_RED_ANY;
    }
    break;
  case LASK_RED_COUNT:
    break;
  default: {
    int mx = op == LASK_RED_MAX || op == LASK_RED_ARGMAX;
    for (int64_t k = 0; k < n; k++) {
      int64_t v = x[k];
      if (acc->count + k == 0 || (mx ? v > acc->i : v < acc->i)) {
        acc->i = v;
        acc->pos = pos0 + k;
      }
    }
  }
  }
  acc->count += n;
}

/* ---- walking runs ---- */

/* Tiles of a transposed operand: TILE_ROWS rows of up to TILE_COLS
** columns. The copied operand is read TILE_ROWS elements (half a cache
** line of doubles) from each of up to TILE_COLS source rows, one constant
** stride apart, which the hardware's stride prefetcher follows; the next
** tile reads the rest of those lines from the second-level cache. The
** operands read in place stream along TILE_ROWS long rows. (Measured on
** 8000x8000 doubles in 1000x1000 blocks: 32x512 tiles copied a column at
** a time took twice as long as 4x1024 tiles copied in 2x2 blocks.) */
#ifndef TILE_ROWS
#define TILE_ROWS 4
#endif
#ifndef TILE_COLS
#define TILE_COLS 1024
#endif
#ifndef TILE_PF
#define TILE_PF 64
#endif
/* Transposed operands of at least TILE_MIN_ROWS rows are tiled (the last
** tile of a block may be short). */
#define TILE_MIN_ROWS 4

typedef void (*run_fn)(void *ctx, char *const *p, const int64_t *st,
                       int64_t n);

static int64_t abs64(int64_t v) { return v < 0 ? -v : v; }

/* Tile copies: d[r][c] (rows TILE_COLS apart) = the element at
** src + c * cst + r * size, for r < nr, c < m; 2x2 blocks at a time, so
** that each pair of loads from one source row becomes a pair of stores to
** two scratch rows (the compiler turns them into vector shuffles). */
static void tile_copy8(char *dst, const char *src, int64_t cst, int64_t nr,
                       int64_t m) {
  double *d = (double *)dst;
  int64_t c = 0;
  for (; c + 2 <= m; c += 2) { /* each source row's elements once */
    const char *s0 = src + c * cst, *s1 = s0 + cst;
    /* the next tile's line of each row, into the second-level cache */
    __builtin_prefetch(s0 + TILE_PF, 0, 2);
    __builtin_prefetch(s1 + TILE_PF, 0, 2);
    int64_t r = 0;
    for (; r + 2 <= nr; r += 2) {
      double a0, a1, b0, b1;
      memcpy(&a0, s0 + r * 8, 8);
      memcpy(&a1, s0 + r * 8 + 8, 8);
      memcpy(&b0, s1 + r * 8, 8);
      memcpy(&b1, s1 + r * 8 + 8, 8);
      d[r * TILE_COLS + c] = a0;
      d[r * TILE_COLS + c + 1] = b0;
      d[(r + 1) * TILE_COLS + c] = a1;
      d[(r + 1) * TILE_COLS + c + 1] = b1;
    }
    for (; r < nr; r++) {
      memcpy(&d[r * TILE_COLS + c], s0 + r * 8, 8);
      memcpy(&d[r * TILE_COLS + c + 1], s1 + r * 8, 8);
    }
  }
  for (; c < m; c++)
    for (int64_t r = 0; r < nr; r++)
      memcpy(&d[r * TILE_COLS + c], src + c * cst + r * 8, 8);
}

static void tile_copy4(char *dst, const char *src, int64_t cst, int64_t nr,
                       int64_t m) {
  uint32_t *d = (uint32_t *)dst;
  int64_t c = 0;
  for (; c + 2 <= m; c += 2) {
    const char *s0 = src + c * cst, *s1 = s0 + cst;
    __builtin_prefetch(s0 + TILE_PF, 0, 2);
    __builtin_prefetch(s1 + TILE_PF, 0, 2);
    for (int64_t r = 0; r < nr; r++) {
      uint32_t a, b;
      memcpy(&a, s0 + r * 4, 4);
      memcpy(&b, s1 + r * 4, 4);
      d[r * TILE_COLS + c] = a;
      d[r * TILE_COLS + c + 1] = b;
    }
  }
  for (; c < m; c++)
    for (int64_t r = 0; r < nr; r++)
      memcpy(&d[r * TILE_COLS + c], src + c * cst + r * 4, 4);
}

/* Calls fn for every run (at most BLK elements) of the walk 'it' started
** by walk_init. With 'tile', when an operand steps through memory along
** the second-last axis but jumps along the last (a transposed view), the
** last two axes go in tiles of TILE_ROWS x TILE_COLS, so each cache line of
** that operand is used up while it is still in the first-level cache. */
static void walk_runs(struct nd_iter *it, int tile, const int *isz,
                      run_fn fn, void *ctx) {
  int nd = it->nd, nops = it->nops;
  char *p[LASK__ITER_MAXOPS];
  int64_t st[LASK__ITER_MAXOPS], rst[LASK__ITER_MAXOPS];
  int64_t tst[LASK__ITER_MAXOPS]; /* strides given to fn in tiles */
  char *scratch[LASK__ITER_MAXOPS] = {0};
  int tiled = 0;
  for (int k = 0; k < nops; k++) {
    st[k] = it->st[k][nd - 1];
    rst[k] = nd >= 2 ? it->st[k][nd - 2] : 0;
    tst[k] = st[k];
    if (tile && nd >= 2 && it->shape[nd - 2] >= TILE_MIN_ROWS && isz[k] &&
        abs64(st[k]) > 64 && rst[k] == isz[k])
      tiled = 1;
  }
  if (!tiled) {
    do {
      for (int64_t s = 0; s < it->inner; s += BLK) {
        int64_t m = it->inner - s < BLK ? it->inner - s : BLK;
        for (int k = 0; k < nops; k++) p[k] = it->p[k] + s * st[k];
        fn(ctx, p, st, m);
      }
    } while (nd_iter_next(it));
    return;
  }
  /* Operands read across rows are copied a tile at a time into row-major
  ** scratch: fn then reads them contiguously. */
  for (int k = 0; k < nops; k++) {
    if (isz[k] && abs64(st[k]) > 64 && rst[k] == isz[k] &&
        (isz[k] == 8 || isz[k] == 4)) {
      scratch[k] = malloc((size_t)TILE_ROWS * TILE_COLS * 8);
      if (!scratch[k]) { /* fall back to strided reads for this one */
        continue;
      }
      tst[k] = isz[k];
    }
  }
  int64_t R = it->shape[nd - 2], C = it->shape[nd - 1];
  it->shape[nd - 2] = 1; /* the outer walk skips the row axis */
  it->outer /= R;
  do {
    for (int64_t c0 = 0; c0 < C; c0 += TILE_COLS) {
      int64_t m = C - c0 < TILE_COLS ? C - c0 : TILE_COLS;
      for (int64_t r0 = 0; r0 < R; r0 += TILE_ROWS) {
        int64_t nr = R - r0 < TILE_ROWS ? R - r0 : TILE_ROWS;
        for (int k = 0; k < nops; k++) {
          if (!scratch[k]) continue;
          const char *b = it->p[k] + r0 * rst[k] + c0 * st[k];
          if (isz[k] == 8) tile_copy8(scratch[k], b, st[k], nr, m);
          else tile_copy4(scratch[k], b, st[k], nr, m);
        }
        for (int64_t r = 0; r < nr; r++) {
          for (int64_t s = 0; s < m; s += BLK) {
            int64_t n = m - s < BLK ? m - s : BLK;
            for (int k = 0; k < nops; k++)
              p[k] = scratch[k]
                         ? scratch[k] + (r * TILE_COLS + s) * isz[k]
                         : it->p[k] + (r0 + r) * rst[k] + (c0 + s) * st[k];
            fn(ctx, p, tst, n);
          }
        }
      }
    }
  } while (nd_iter_next(it));
  for (int k = 0; k < nops; k++) free(scratch[k]);
}

struct eval_ctx {
  const struct prog *pr;
  const struct lask_nd *inputs;
  void **rp;
  char *store;
  int lane, odt, osz, ninputs;
};

static void eval_run(void *vc, char *const *p, const int64_t *st,
                     int64_t m) {
  struct eval_ctx *c = vc;
  char *op = p[0];
  void *direct = (st[0] == 8 && c->osz == 8) ? op : NULL;
  const void *res =
      run_block(c->pr, c->pr->nins, c->inputs, p + 1, st + 1, m, direct, c->rp,
                c->store);
  if (res != op) lask__nd_store_block(c->lane, c->odt, op, st[0], m, res);
}

struct red_ctx {
  const struct prog *pr;
  const struct lask_nd *inputs;
  void **rp;
  char *store;
  int lane, op, skipnan, ninputs;
  const int *pair;
  struct lask_red_acc *acc;
  int fused; /* the last instruction, an F-lane + - *, sums as it goes */
};

/* A plain sum whose program ends in a float + - or *: the last instruction
** adds into the sum directly, without writing its result block and reading
** it again (the sums' grouping is reduce_f's: 8 partial sums per run). */
static int sum_fuses(const struct prog *pr, int op, int skipnan) {
  if (op != LASK_RED_SUM || skipnan || pr->nins < 1) return 0;
  const struct ins *in = &pr->ins[pr->nins - 1];
  if (in->dst != pr->result || pr->lane[in->dst] != LASK_LANE_F) return 0;
  if (in->op != LASK_OP_ADD && in->op != LASK_OP_SUB &&
      in->op != LASK_OP_MUL)
    return 0;
  return pr->lane[in->a] == LASK_LANE_F && pr->lane[in->b] == LASK_LANE_F;
}

static void red_block(struct red_ctx *c, char *const *ip, const int64_t *ist,
                      int64_t n, int64_t pos0) {
  const struct prog *pr = c->pr;
  if (c->fused) {
    run_block(pr, pr->nins - 1, c->inputs, ip, ist, n, NULL, c->rp, c->store);
    const struct ins *in = &pr->ins[pr->nins - 1];
    const double *a = c->rp[in->a], *b = c->rp[in->b];
    double s[8] = {0};
    int64_t k = 0;
    if (in->op == LASK_OP_ADD) SUM8(a[i] + b[i]);
    else if (in->op == LASK_OP_SUB) SUM8(a[i] - b[i]);
    else SUM8(a[i] * b[i]);
    c->acc->f += sum8(s);
    c->acc->count += n;
    return;
  }
  const void *res =
      run_block(pr, pr->nins, c->inputs, ip, ist, n, NULL, c->rp, c->store);
  if (c->lane == LASK_LANE_F) reduce_f(c->op, c->skipnan, res, n, pos0, c->acc);
  else reduce_i(c->op, res, n, pos0, c->acc);
}

static void red_run(void *vc, char *const *p, const int64_t *st, int64_t m) {
  struct red_ctx *c = vc;
  int64_t pos0 = (int64_t)(p[0] - lask__nd_origin) / 8;
  red_block(c, p + 1, st + 1, m, pos0);
  if (!c->pair) return;
  /* The partner: the same program over the same run, inputs exchanged
  ** (their elements are still in the first-level cache). */
  char *q[MAX_INPUTS];
  int64_t qst[MAX_INPUTS];
  for (int k = 0; k < c->ninputs; k++) {
    q[k] = p[1 + c->pair[k]];
    qst[k] = st[1 + c->pair[k]];
  }
  red_block(c, q, qst, m, pos0);
}

int lask__nd_eval(const uint8_t *prog, size_t n, int ninputs,
                  const struct lask_nd *inputs, struct lask_nd *out,
                  const char **why) {
  struct prog pr;
  int rc = prog_parse(prog, n, ninputs, inputs, &pr, why);
  if (rc) return rc;
  int lane = pr.lane[pr.result];
  if (input_lane(out->dtype) != lane) {
    free(pr.ins);
    *why = "program's result lane does not fit the output dtype";
    return LASK_EINVAL;
  }
  void *rp[256];
  char *store = alloc_regs(&pr, rp);
  struct nd_iter *it = malloc(sizeof *it);
  if (!store || !it) {
    free(store);
    free(it);
    free(pr.ins);
    *why = "out of memory";
    return LASK_ENOMEM;
  }
  int osz = lask__dtype_size(out->dtype);
  int r = walk_init(it, out->ndim, out->shape, out, ninputs, inputs, NULL);
  if (r < 0) {
    rc = LASK_ENOMEM;
    *why = "out of memory";
  }
  if (r > 0) {
    struct eval_ctx c = {&pr, inputs, rp, store, lane, out->dtype, osz,
                         ninputs};
    int isz[LASK__ITER_MAXOPS] = {0}; /* the output is never copied */
    for (int k = 0; k < ninputs; k++)
      isz[k + 1] = lask__dtype_size(inputs[k].dtype);
    walk_runs(it, 1, isz, eval_run, &c);
  }
  free(it);
  free(store);
  free(pr.ins);
  return rc;
}

/* Input k's partner must be an input of its dtype and shape (two inputs
** may share one: x, x^T and x^T again), and only for reductions that
** ignore positions. */
static int pair_ok(int ninputs, const struct lask_nd *in, const int *pair,
                   int op) {
  if (op == LASK_RED_ARGMIN || op == LASK_RED_ARGMAX) return 0;
  for (int k = 0; k < ninputs; k++) {
    int j = pair[k];
    if (j < 0 || j >= ninputs) return 0;
    if (in[j].dtype != in[k].dtype || in[j].ndim != in[k].ndim) return 0;
    for (int a = 0; a < in[k].ndim; a++)
      if (in[j].shape[a] != in[k].shape[a]) return 0;
  }
  return 1;
}

int lask__nd_eval_reduce(const uint8_t *prog, size_t n, int ninputs,
                         const struct lask_nd *inputs, int op, int skipnan,
                         const int *pair, struct lask_red_acc *acc,
                         const char **why) {
  struct prog pr;
  if (op < 0 || op >= LASK_RED_COUNT_OPS) {
    *why = "unknown reduction";
    return LASK_EINVAL;
  }
  if (pair && !pair_ok(ninputs, inputs, pair, op)) {
    *why = "a partner must be an input of the same dtype and shape "
           "(and not for argmin/argmax)";
    return LASK_EINVAL;
  }
  int rc = prog_parse(prog, n, ninputs, inputs, &pr, why);
  if (rc) return rc;
  int lane = pr.lane[pr.result];
  /* The shape walked is the inputs' broadcast shape. */
  int ndims[MAX_INPUTS];
  const int64_t *shapes[MAX_INPUTS];
  int64_t shape[LASK_ND_MAXDIM], flat[LASK_ND_MAXDIM];
  int nd;
  for (int k = 0; k < ninputs; k++) {
    ndims[k] = inputs[k].ndim;
    shapes[k] = inputs[k].shape;
  }
  if (lask__nd_broadcast(ninputs, ndims, shapes, &nd, shape, NULL) != 0) {
    free(pr.ins);
    *why = "inputs do not broadcast together";
    return LASK_EINVAL;
  }
  int64_t st = 8;
  for (int i = nd - 1; i >= 0; i--) {
    flat[i] = st;
    st *= shape[i];
  }
  acc->count = 0;
  acc->pos = -1;
  acc->f = op == LASK_RED_PROD ? 1.0 : 0.0;
  acc->i = (op == LASK_RED_PROD || op == LASK_RED_ALL) ? 1 : 0;
  void *rp[256];
  char *store = alloc_regs(&pr, rp);
  struct nd_iter *it = malloc(sizeof *it);
  int r = store && it ? walk_init(it, nd, shape, NULL, ninputs, inputs, flat)
                      : -1;
  if (r < 0) {
    rc = LASK_ENOMEM;
    *why = "out of memory";
  }
  if (r > 0) {
    struct red_ctx c = {&pr, inputs, rp, store, lane, op, skipnan, ninputs,
                        pair, acc, sum_fuses(&pr, op, skipnan)};
    /* No tiles for argmin/argmax: ties go to the first in C order. */
    int isz[LASK__ITER_MAXOPS] = {0};
    for (int k = 0; k < ninputs; k++)
      isz[k + 1] = lask__dtype_size(inputs[k].dtype);
    walk_runs(it, op != LASK_RED_ARGMIN && op != LASK_RED_ARGMAX, isz,
              red_run, &c);
  }
  free(it);
  free(store);
  free(pr.ins);
  return rc;
}

int lask__nd_copy(const struct lask_nd *src, struct lask_nd *dst,
                  const char **why) {
  /* LOAD, then a lane change when the dtypes' lanes differ. */
  int from = input_lane(src->dtype), to = input_lane(dst->dtype);
  uint8_t prog[32] = {2, 1, 0, 0, LASK_OP_LOAD, 0, 0, 0};
  size_t n = 8;
  if (dst->dtype == LASK_DT_BOOL && from == LASK_LANE_F) {
    /* float to bool: x != 0 (0.5 is true, NaN is true) */
    static const uint8_t p[] = {3, 1, 1, 2, LASK_LANE_F, 0, 0, 0, 0, 0, 0, 0, 0,
                                LASK_OP_LOAD, 0, 0, 0, LASK_OP_CONST, 1, 0, 0,
                                LASK_OP_NE, 2, 0, 1};
    return lask__nd_eval(p, sizeof p, 1, src, dst, why);
  }
  if (from != to) {
    prog[3] = 1;
    prog[8] = to == LASK_LANE_F ? LASK_OP_TOF : LASK_OP_TOI;
    prog[9] = 1;
    prog[10] = 0;
    n = 12;
  }
  return lask__nd_eval(prog, n, 1, src, dst, why);
}
