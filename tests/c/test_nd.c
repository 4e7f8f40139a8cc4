/*
** test_nd.c: the array kernels (runtime/nd*.c): buffers and their pool,
** broadcasting, the program checker (malformed programs are refused, never
** run), fused evaluation, reductions with axes, matmul, random numbers.
*/
#include <math.h>
#include <stdlib.h>

#include "nd.h"
#include "test.h"

static void fill_seq(struct lask_nd *a) {
  double *d = (double *)lask__nd_data(a);
  for (int64_t i = 0; i < lask__nd_size(a); i++) d[i] = (double)i;
}

TEST(nd_buffers_are_refcounted_and_pooled) {
  size_t live0, pooled0, live, pooled;
  lask__buf_stats(&live0, &pooled0);
  struct lask_buf *b = lask__buf_new(1 << 20, 1);
  ASSERT_TRUE(b != NULL);
  ASSERT_EQ(((char *)b->data)[12345], 0);
  lask__buf_retain(b);
  lask__buf_release(b);
  lask__buf_stats(&live, &pooled);
  ASSERT_TRUE(live >= live0 + (1u << 20));
  void *data = b->data;
  lask__buf_release(b); /* last reference: into the pool */
  struct lask_buf *c = lask__buf_new(1 << 20, 1);
  ASSERT_TRUE(c->data == data); /* the same memory, reused */
  ASSERT_EQ(((char *)c->data)[777], 0); /* and zeroed again */
  lask__buf_release(c);
}

TEST(nd_broadcast_follows_numpy) {
  int64_t s1[] = {8, 1, 6, 1}, s2[] = {7, 1, 5}, out[LASK_ND_MAXDIM];
  const int64_t *shapes[] = {s1, s2};
  int nds[] = {4, 3}, nd, bad = -1;
  ASSERT_EQ(lask__nd_broadcast(2, nds, shapes, &nd, out, &bad), 0);
  ASSERT_EQ(nd, 4);
  ASSERT_EQ(out[0], 8);
  ASSERT_EQ(out[1], 7);
  ASSERT_EQ(out[2], 6);
  ASSERT_EQ(out[3], 5);
  int64_t s3[] = {3}, s4[] = {4};
  const int64_t *sh2[] = {s3, s4};
  int n2[] = {1, 1};
  ASSERT_EQ(lask__nd_broadcast(2, n2, sh2, &nd, out, &bad), LASK_EINVAL);
  ASSERT_EQ(bad, 0);
}

/* add(load 0, load 1) */
static const uint8_t ADD_PROG[] = {3, 2, 0, 2, LASK_OP_LOAD, 0, 0, 0,
                                   LASK_OP_LOAD, 1, 1, 0,
                                   LASK_OP_ADD, 2, 0, 1};

TEST(nd_eval_broadcasts_and_reads_views) {
  struct lask_nd a, b, out;
  int64_t sa[] = {3, 4}, sb[] = {4};
  ASSERT_EQ(lask__nd_alloc(&a, LASK_DT_F64, 2, sa, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&b, LASK_DT_F64, 1, sb, 0), 0);
  fill_seq(&a);
  fill_seq(&b);
  ASSERT_EQ(lask__nd_alloc(&out, LASK_DT_F64, 2, sa, 0), 0);
  struct lask_nd in[2] = {a, b};
  const char *why = NULL;
  ASSERT_EQ(lask__nd_eval(ADD_PROG, sizeof ADD_PROG, 2, in, &out, &why), 0);
  double *o = (double *)lask__nd_data(&out);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++) ASSERT_EQ(o[i * 4 + j], (double)(i * 4 + j + j));
  /* a transposed view of a 16x16 (tiles are used) plus itself */
  struct lask_nd m, mt, o2;
  int64_t sm[] = {16, 16};
  ASSERT_EQ(lask__nd_alloc(&m, LASK_DT_F64, 2, sm, 0), 0);
  fill_seq(&m);
  mt = m;
  mt.strides[0] = m.strides[1];
  mt.strides[1] = m.strides[0];
  ASSERT_EQ(lask__nd_alloc(&o2, LASK_DT_F64, 2, sm, 0), 0);
  struct lask_nd in2[2] = {m, mt};
  ASSERT_EQ(lask__nd_eval(ADD_PROG, sizeof ADD_PROG, 2, in2, &o2, &why), 0);
  double *p = (double *)lask__nd_data(&o2);
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++)
      ASSERT_EQ(p[i * 16 + j], (double)(i * 16 + j + j * 16 + i));
  struct lask_red_acc acc;
  memset(&acc, 0, sizeof acc);
  ASSERT_EQ(lask__nd_eval_reduce(ADD_PROG, sizeof ADD_PROG, 2, in2,
                                 LASK_RED_SUM, 0, NULL, &acc, &why), 0);
  ASSERT_EQ(acc.f, 2.0 * 255 * 256 / 2);
  ASSERT_EQ(acc.count, 256);
  lask__nd_clear(&a);
  lask__nd_clear(&b);
  lask__nd_clear(&out);
  lask__nd_clear(&m);
  lask__nd_clear(&o2);
}

/* A paired full reduction of 'prog' over in[0], in[1] (each the other's
** partner); returns lask__nd_eval_reduce's code, the result in *acc. */
static int reduce_pair(const uint8_t *prog, size_t n, struct lask_nd *in,
                       int op, struct lask_red_acc *acc) {
  static const int pair[2] = {1, 0};
  const char *why = NULL;
  memset(acc, 0, sizeof *acc);
  return lask__nd_eval_reduce(prog, n, 2, in, op, 0, pair, acc, &why);
}

/* Pairs: blocks (0,1) and (1,0) of a 40x40 matrix M, a - b reduced over
** block (0,1) of M - M^T and, paired, over the transpose of block (1,0). */
TEST(nd_eval_reduce_pairs_blocks_of_a_symmetric_expression) {
  static const uint8_t SUB_PROG[] = {3, 2, 0, 2, LASK_OP_LOAD, 0, 0, 0,
                                     LASK_OP_LOAD, 1, 1, 0,
                                     LASK_OP_SUB, 2, 0, 1};
  struct lask_nd m;
  int64_t sm[] = {40, 40};
  ASSERT_EQ(lask__nd_alloc(&m, LASK_DT_F64, 2, sm, 0), 0);
  double *v = (double *)lask__nd_data(&m);
  for (int k = 0; k < 1600; k++) v[k] = (double)((k * 37 + 11) % 101);
  struct lask_nd a = m, bt = m; /* a = M[0:20, 20:40], bt = M[20:40, 0:20]^T */
  a.shape[0] = a.shape[1] = bt.shape[0] = bt.shape[1] = 20;
  a.offset = 20 * 8;
  bt.offset = 20 * 40 * 8;
  bt.strides[0] = 8;
  bt.strides[1] = 40 * 8;
  double want_max = -1e300;
  for (int r = 0; r < 20; r++)
    for (int c = 0; c < 20; c++) {
      double x = v[r * 40 + 20 + c], y = v[(20 + c) * 40 + r];
      want_max = fmax(want_max, fmax(x - y, y - x));
    }
  struct lask_nd in[2] = {a, bt};
  const char *why = NULL;
  struct lask_red_acc acc;
  ASSERT_EQ(reduce_pair(SUB_PROG, sizeof SUB_PROG, in, LASK_RED_MAX, &acc), 0);
  ASSERT_EQ(acc.f, want_max);
  ASSERT_EQ(acc.count, 800);
  /* a + 2 b: not symmetric, so a swapped run differs from the first */
  static const uint8_t AXPY_PROG[] = {5, 2, 1, 4, LASK_LANE_F, 0, 0, 0, 0, 0,
                                      0, 0, 0x40, LASK_OP_LOAD, 0, 0, 0,
                                      LASK_OP_LOAD, 1, 1, 0, LASK_OP_CONST, 2,
                                      0, 0, LASK_OP_MUL, 3, 1, 2,
                                      LASK_OP_ADD, 4, 0, 3};
  ASSERT_EQ(reduce_pair(AXPY_PROG, sizeof AXPY_PROG, in, LASK_RED_SUM, &acc),
            0);
  double want = 0;
  for (int r = 0; r < 20; r++)
    for (int c = 0; c < 20; c++) {
      double x = v[r * 40 + 20 + c], y = v[(20 + c) * 40 + r];
      want += (x + 2 * y) + (y + 2 * x);
    }
  ASSERT_EQ(acc.f, want);
  /* refused: argmax, a partner out of range, unequal shapes */
  ASSERT_EQ(reduce_pair(SUB_PROG, sizeof SUB_PROG, in, LASK_RED_ARGMAX, &acc),
            LASK_EINVAL);
  const int bad[2] = {1, 2};
  ASSERT_EQ(lask__nd_eval_reduce(SUB_PROG, sizeof SUB_PROG, 2, in,
                                 LASK_RED_SUM, 0, bad, &acc, &why),
            LASK_EINVAL);
  in[1].shape[1] = 19;
  ASSERT_EQ(reduce_pair(SUB_PROG, sizeof SUB_PROG, in, LASK_RED_SUM, &acc),
            LASK_EINVAL);
  lask__nd_clear(&m);
}

/* The tiled path: a transposed operand of 71 rows (whole tiles and an odd
** short one) and 1101 columns (a band of 1024 cut into runs of 512, and an
** odd short band), for 8- and 4-byte dtypes, in eval, in plain reductions
** (a sum that ends in + - or * adds as it goes) and in paired ones. */
static void fill_pattern(struct lask_nd *a) {
  int64_t n = lask__nd_size(a);
  char *d = lask__nd_data(a);
  for (int64_t k = 0; k < n; k++) {
    double v = (double)((k * 37 + 11) % 101);
    if (a->dtype == LASK_DT_F64) ((double *)(void *)d)[k] = v;
    else if (a->dtype == LASK_DT_F32) ((float *)(void *)d)[k] = (float)v;
    else ((int32_t *)(void *)d)[k] = (int32_t)v;
  }
}

static double elem(const struct lask_nd *a, int64_t i, int64_t j) {
  const char *p = lask__nd_data(a) + i * a->strides[0] + j * a->strides[1];
  if (a->dtype == LASK_DT_F64) return *(const double *)(const void *)p;
  if (a->dtype == LASK_DT_F32) return *(const float *)(const void *)p;
  if (a->dtype == LASK_DT_I64) return (double)*(const int64_t *)(const void *)p;
  return *(const int32_t *)(const void *)p;
}

TEST(nd_eval_tiles_transposed_operands) {
  const int dts[] = {LASK_DT_F64, LASK_DT_F32, LASK_DT_I32};
  for (int t = 0; t < 3; t++) {
    struct lask_nd m, b, out;
    int64_t sm[] = {1101, 71}, sb[] = {71, 1101};
    ASSERT_EQ(lask__nd_alloc(&m, dts[t], 2, sm, 0), 0);
    ASSERT_EQ(lask__nd_alloc(&b, dts[t], 2, sb, 0), 0);
    fill_pattern(&m);
    fill_pattern(&b);
    struct lask_nd mt = m; /* 71 x 1101, stepping across m's rows */
    mt.shape[0] = 71;
    mt.shape[1] = 1101;
    mt.strides[0] = m.strides[1];
    mt.strides[1] = m.strides[0];
    int odt = dts[t] == LASK_DT_I32 ? LASK_DT_I64 : LASK_DT_F64;
    ASSERT_EQ(lask__nd_alloc(&out, odt, 2, sb, 0), 0);
    struct lask_nd in[2] = {b, mt};
    const char *why = NULL;
    ASSERT_EQ(lask__nd_eval(ADD_PROG, sizeof ADD_PROG, 2, in, &out, &why), 0);
    int bad = 0;
    double want[3] = {0, 0, 0}; /* sums of b + m^T, b - m^T, b * m^T */
    for (int64_t i = 0; i < 71; i++)
      for (int64_t j = 0; j < 1101; j++) {
        double x = elem(&b, i, j), y = elem(&m, j, i);
        if (elem(&out, i, j) != x + y) bad++;
        want[0] += x + y;
        want[1] += x - y;
        want[2] += x * y;
      }
    ASSERT_EQ(bad, 0);
    const uint8_t ops[3] = {LASK_OP_ADD, LASK_OP_SUB, LASK_OP_MUL};
    for (int o = 0; o < 3; o++) {
      uint8_t prog[sizeof ADD_PROG];
      memcpy(prog, ADD_PROG, sizeof prog);
      prog[12] = ops[o];
      struct lask_red_acc acc;
      memset(&acc, 0, sizeof acc);
      ASSERT_EQ(lask__nd_eval_reduce(prog, sizeof prog, 2, in, LASK_RED_SUM,
                                     0, NULL, &acc, &why),
                0);
      double got = dts[t] == LASK_DT_I32 ? (double)acc.i : acc.f;
      ASSERT_EQ(got, want[o]); /* small integers: exact in any order */
      ASSERT_EQ(acc.count, 71 * 1101);
    }
    lask__nd_clear(&out);
    lask__nd_clear(&b);
    lask__nd_clear(&m);
  }
  /* paired: blocks (0,1) and (1,0) of a 142x142 M, a * a - b over 71x71
  ** views (exact sums: small integers) */
  static const uint8_t SQ_PROG[] = {4, 2, 0, 3, LASK_OP_LOAD, 0, 0, 0,
                                    LASK_OP_LOAD, 1, 1, 0,
                                    LASK_OP_MUL, 2, 0, 0,
                                    LASK_OP_SUB, 3, 2, 1};
  for (int t = 0; t < 3; t++) {
    struct lask_nd m;
    int64_t sm[] = {142, 142};
    ASSERT_EQ(lask__nd_alloc(&m, dts[t], 2, sm, 0), 0);
    fill_pattern(&m);
    int64_t isz = m.strides[1];
    struct lask_nd a = m, bt = m;
    a.shape[0] = a.shape[1] = bt.shape[0] = bt.shape[1] = 71;
    a.offset = 71 * isz;
    bt.offset = 71 * 142 * isz;
    bt.strides[0] = isz;
    bt.strides[1] = 142 * isz;
    double want = 0, want_max = -1;
    for (int64_t r = 0; r < 71; r++)
      for (int64_t c = 0; c < 71; c++) {
        double x = elem(&m, r, 71 + c), y = elem(&m, 71 + c, r);
        want += (x * x - y) + (y * y - x);
        want_max = fmax(want_max, fmax(x * x - y, y * y - x));
      }
    struct lask_nd in[2] = {a, bt};
    struct lask_red_acc acc;
    ASSERT_EQ(reduce_pair(SQ_PROG, sizeof SQ_PROG, in, LASK_RED_SUM, &acc), 0);
    double got = dts[t] == LASK_DT_I32 ? (double)acc.i : acc.f;
    ASSERT_EQ(got, want);
    ASSERT_EQ(acc.count, 2 * 71 * 71);
    ASSERT_EQ(reduce_pair(SQ_PROG, sizeof SQ_PROG, in, LASK_RED_MAX, &acc), 0);
    got = dts[t] == LASK_DT_I32 ? (double)acc.i : acc.f;
    ASSERT_EQ(got, want_max);
    lask__nd_clear(&m);
  }
}

TEST(nd_programs_are_checked_before_running) {
  struct lask_nd a, out;
  int64_t s[] = {4};
  ASSERT_EQ(lask__nd_alloc(&a, LASK_DT_F64, 1, s, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&out, LASK_DT_F64, 1, s, 0), 0);
  const char *why = NULL;
  /* reads a register never written */
  const uint8_t p1[] = {2, 1, 0, 1, LASK_OP_NEG, 1, 0, 0};
  ASSERT_EQ(lask__nd_eval(p1, sizeof p1, 1, &a, &out, &why), LASK_EINVAL);
  /* an input that does not exist */
  const uint8_t p2[] = {1, 1, 0, 0, LASK_OP_LOAD, 0, 5, 0};
  ASSERT_EQ(lask__nd_eval(p2, sizeof p2, 1, &a, &out, &why), LASK_EINVAL);
  /* an integer op on floats: NOT needs the integer lane */
  const uint8_t p3[] = {2, 1, 0, 1, LASK_OP_LOAD, 0, 0, 0, LASK_OP_NOT, 1, 0, 0};
  ASSERT_EQ(lask__nd_eval(p3, sizeof p3, 1, &a, &out, &why), LASK_EINVAL);
  /* an unknown op, and a truncated WHERE */
  const uint8_t p4[] = {1, 1, 0, 0, 250, 0, 0, 0};
  ASSERT_EQ(lask__nd_eval(p4, sizeof p4, 1, &a, &out, &why), LASK_EINVAL);
  const uint8_t p5[] = {4, 1, 0, 3, LASK_OP_LOAD, 0, 0, 0, LASK_OP_WHERE, 3, 0, 0};
  ASSERT_EQ(lask__nd_eval(p5, sizeof p5, 1, &a, &out, &why), LASK_EINVAL);
  /* random bytes: refused or run, never out of bounds (ASan watches) */
  uint32_t x = 12345;
  for (int t = 0; t < 20000; t++) {
    uint8_t p[24];
    size_t n = 4 + (size_t)(t % 20);
    for (size_t i = 0; i < n; i++) {
      x = x * 1103515245u + 12345u;
      p[i] = (uint8_t)(x >> 16);
    }
    p[1] = 1;
    p[0] = (uint8_t)(p[0] % 8 + 1);
    p[2] = (uint8_t)(p[2] % 2);
    (void)lask__nd_eval(p, n, 1, &a, &out, &why);
  }
  lask__nd_clear(&a);
  lask__nd_clear(&out);
}

TEST(nd_reduce_over_axes_with_nan_rules) {
  struct lask_nd a, out;
  int64_t s[] = {2, 3}, so[] = {1, 3};
  ASSERT_EQ(lask__nd_alloc(&a, LASK_DT_F64, 2, s, 0), 0);
  double *d = (double *)lask__nd_data(&a);
  double v[] = {1, NAN, 3, 4, 5, -6};
  memcpy(d, v, sizeof v);
  ASSERT_EQ(lask__nd_alloc(&out, LASK_DT_F64, 2, so, 0), 0);
  const char *why = NULL;
  ASSERT_EQ(lask__nd_reduce(&a, 1, LASK_RED_SUM, 0, NULL, &out, NULL, &why), 0);
  double *o = (double *)lask__nd_data(&out);
  ASSERT_EQ(o[0], 5.0);
  ASSERT_TRUE(isnan(o[1]));
  ASSERT_EQ(o[2], -3.0);
  ASSERT_EQ(lask__nd_reduce(&a, 1, LASK_RED_MAX, 1, NULL, &out, NULL, &why), 0);
  ASSERT_EQ(o[1], 5.0); /* nanmax skips the NaN */
  ASSERT_EQ(lask__nd_reduce(&a, 1, LASK_RED_MAX, 0, NULL, &out, NULL, &why), 0);
  ASSERT_TRUE(isnan(o[1])); /* max propagates it */
  struct lask_nd idx, val;
  ASSERT_EQ(lask__nd_alloc(&idx, LASK_DT_I64, 2, so, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&val, LASK_DT_F64, 2, so, 0), 0);
  ASSERT_EQ(lask__nd_reduce(&a, 1, LASK_RED_ARGMIN, 0, NULL, &idx, &val, &why), 0);
  int64_t *ix = (int64_t *)lask__nd_data(&idx);
  ASSERT_EQ(ix[0], 0);
  ASSERT_EQ(ix[1], 0); /* the NaN is the minimum, as NumPy says */
  ASSERT_EQ(ix[2], 1);
  /* wrong output shape is refused */
  ASSERT_EQ(lask__nd_reduce(&a, 2, LASK_RED_SUM, 0, NULL, &out, NULL, &why),
            LASK_EINVAL);
  lask__nd_clear(&a);
  lask__nd_clear(&out);
  lask__nd_clear(&idx);
  lask__nd_clear(&val);
}

TEST(nd_matmul_matches_a_plain_loop) {
  struct lask_nd a, b, out, ia, ib, io;
  int64_t sa[] = {5, 7}, sb[] = {7, 3};
  ASSERT_EQ(lask__nd_alloc(&a, LASK_DT_F64, 2, sa, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&b, LASK_DT_F64, 2, sb, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&ia, LASK_DT_I32, 2, sa, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&ib, LASK_DT_I32, 2, sb, 0), 0);
  fill_seq(&a);
  fill_seq(&b);
  for (int i = 0; i < 35; i++) ((int32_t *)lask__nd_data(&ia))[i] = i;
  for (int i = 0; i < 21; i++) ((int32_t *)lask__nd_data(&ib))[i] = i;
  const char *why = NULL;
  lask__blas_threads(1);
  ASSERT_EQ(lask__nd_matmul(&a, &b, LASK_DT_F64, &out, &why), 0);
  ASSERT_EQ(lask__nd_matmul(&ia, &ib, LASK_DT_I64, &io, &why), 0);
  double *o = (double *)lask__nd_data(&out);
  int64_t *oi = (int64_t *)lask__nd_data(&io);
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 3; j++) {
      double s = 0;
      for (int k = 0; k < 7; k++) s += (double)(i * 7 + k) * (k * 3 + j);
      ASSERT_EQ(o[i * 3 + j], s);
      ASSERT_EQ((double)oi[i * 3 + j], s);
    }
  struct lask_nd bad;
  ASSERT_EQ(lask__nd_matmul(&a, &a, LASK_DT_F64, &bad, &why), LASK_EINVAL);
  lask__nd_clear(&a);
  lask__nd_clear(&b);
  lask__nd_clear(&out);
  lask__nd_clear(&ia);
  lask__nd_clear(&ib);
  lask__nd_clear(&io);
}

TEST(nd_random_depends_only_on_seed_stream_and_position) {
  struct lask_nd a, b;
  int64_t s[] = {1000};
  ASSERT_EQ(lask__nd_alloc(&a, LASK_DT_F64, 1, s, 0), 0);
  ASSERT_EQ(lask__nd_alloc(&b, LASK_DT_F64, 1, s, 0), 0);
  lask__nd_random(&a, 42, 7, 0);
  lask__nd_random(&b, 42, 7, 0);
  double *x = (double *)lask__nd_data(&a), *y = (double *)lask__nd_data(&b);
  double sum = 0;
  for (int i = 0; i < 1000; i++) {
    ASSERT_EQ(x[i], y[i]);
    ASSERT_TRUE(x[i] >= 0 && x[i] < 1);
    sum += x[i];
  }
  ASSERT_TRUE(fabs(sum / 1000 - 0.5) < 0.05);
  lask__nd_random(&b, 42, 8, 0);
  int same = 0;
  for (int i = 0; i < 1000; i++) same += x[i] == y[i];
  ASSERT_TRUE(same < 5);
  lask__nd_random(&b, 42, 7, 1); /* normal */
  double m = 0, v = 0;
  for (int i = 0; i < 1000; i++) m += y[i];
  m /= 1000;
  for (int i = 0; i < 1000; i++) v += (y[i] - m) * (y[i] - m);
  ASSERT_TRUE(fabs(m) < 0.15);
  ASSERT_TRUE(fabs(v / 1000 - 1) < 0.2);
  lask__nd_clear(&a);
  lask__nd_clear(&b);
}
