/*
** nd_reduce.c: reductions over chosen axes (see nd.h).
**
** The input is walked in C order together with an accumulator array of the
** output's shape, whose strides are 0 on the reduced axes, so every input
** element meets its output cell once. Accumulators are double or int64
** (the input's lane); a count per cell serves NaN-skipping, means and the
** first-element rule of min/max; argmin/argmax keep the position within
** the reduced axes, from a virtual operand that steps only along them.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nd_iter.h"

#define BLK 512

enum { OP_ACC, OP_IN, OP_CNT, OP_POS, OP_RPOS, OP_AUX, NOPS };

static int fail(const char **why, const char *msg, int rc) {
  *why = msg;
  return rc;
}

/* Updates cell (a, c, p) with value v at reduced position rp. */
static inline void upd_f(int op, int skipnan, double *a, int64_t *c,
                         int64_t *p, double v, int64_t rp, double aux) {
  if (v != v && skipnan) return;
  switch (op) {
  case LASK_RED_SUM: *a += v; break;
  case LASK_RED_PROD: *a *= v; break;
  case LASK_RED_SQDEV: *a += (v - aux) * (v - aux); break;
  case LASK_RED_ANY: if (v != 0) *a = 1; break;
  case LASK_RED_ALL: if (v == 0) *a = 0; break;
  case LASK_RED_COUNT: break;
  default: {
    int mx = op == LASK_RED_MAX || op == LASK_RED_ARGMAX;
    if (*c == 0 || (*a == *a && (v != v || (mx ? v > *a : v < *a)))) {
      *a = v;
      *p = rp;
    }
  }
  }
  (*c)++;
}

static inline void upd_i(int op, int64_t *a, int64_t *c, int64_t *p,
                         int64_t v, int64_t rp, double aux, double *sq) {
  switch (op) {
  case LASK_RED_SUM: *a = (int64_t)((uint64_t)*a + (uint64_t)v); break;
  case LASK_RED_PROD: *a = (int64_t)((uint64_t)*a * (uint64_t)v); break;
  case LASK_RED_SQDEV: *sq += ((double)v - aux) * ((double)v - aux); break;
  case LASK_RED_ANY: if (v != 0) *a = 1; break;
  case LASK_RED_ALL: if (v == 0) *a = 0; break;
  case LASK_RED_COUNT: break;
  default: {
    int mx = op == LASK_RED_MAX || op == LASK_RED_ARGMAX;
    if (*c == 0 || (mx ? v > *a : v < *a)) {
      *a = v;
      *p = rp;
    }
  }
  }
  (*c)++;
}

int lask__nd_reduce(const struct lask_nd *in, uint64_t mask, int op,
                    int skipnan, const struct lask_nd *aux,
                    struct lask_nd *out, struct lask_nd *aux_out,
                    const char **why) {
  int nd = in->ndim;
  if (op < 0 || op >= LASK_RED_COUNT_OPS)
    return fail(why, "unknown reduction", LASK_EINVAL);
  if (out->ndim != nd || !lask__nd_is_contig(out))
    return fail(why, "reduction output has the wrong rank or layout",
                LASK_EINVAL);
  int64_t ncell = 1, cst[LASK_ND_MAXDIM], rst[LASK_ND_MAXDIM];
  for (int i = nd - 1; i >= 0; i--) {
    int red = (mask >> i) & 1;
    if (out->shape[i] != (red ? 1 : in->shape[i]))
      return fail(why, "reduction output has the wrong shape", LASK_EINVAL);
    cst[i] = red ? 0 : ncell * 8;
    ncell *= out->shape[i];
  }
  int64_t r = 8;
  for (int i = nd - 1; i >= 0; i--) {
    rst[i] = ((mask >> i) & 1) ? r : 0;
    if ((mask >> i) & 1) r *= in->shape[i];
  }
  if (op == LASK_RED_SQDEV &&
      (!aux || aux->dtype != LASK_DT_F64 || aux->ndim != nd ||
       memcmp(aux->shape, out->shape, sizeof(int64_t) * (size_t)nd) != 0))
    return fail(why, "SQDEV needs a float64 mean of the output's shape",
                LASK_EINVAL);
  /* A sum into a float output adds in floats, as NumPy's mean does (an
  ** int64 sum of large values would wrap). */
  int lane = nd_is_float(in->dtype) ||
                     (op == LASK_RED_SUM && nd_is_float(out->dtype))
                 ? LASK_LANE_F
                 : LASK_LANE_I;
  size_t cells = (size_t)(ncell ? ncell : 1);
  /* acc (8 bytes per cell), count, position, squares (integer SQDEV) */
  char *mem = calloc(cells, 32);
  double *blk = malloc(BLK * 8);
  struct nd_iter *it = malloc(sizeof *it);
  if (!mem || !blk || !it) {
    free(mem);
    free(blk);
    free(it);
    return fail(why, "out of memory", LASK_ENOMEM);
  }
  double *af = (double *)mem;
  int64_t *ai = (int64_t *)mem, *cnt = (int64_t *)(mem + cells * 8);
  int64_t *pos = (int64_t *)(mem + cells * 16);
  double *sq = (double *)(mem + cells * 24);
  for (size_t c = 0; c < cells; c++) {
    int one = op == LASK_RED_PROD || op == LASK_RED_ALL;
    if (lane == LASK_LANE_F) af[c] = one ? 1.0 : 0.0;
    else ai[c] = one;
    pos[c] = -1;
  }
  int64_t(*st)[LASK_ND_MAXDIM] = malloc(sizeof *st * NOPS);
  char *base[NOPS];
  int rc = 0, go = 0;
  if (!st) {
    rc = fail(why, "out of memory", LASK_ENOMEM);
  } else {
    int n = 0;
    memcpy(st[n], cst, sizeof cst);
    base[n++] = mem;
    nd_iter_strides(in, nd, in->shape, st[n]);
    base[n++] = lask__nd_data(in);
    memcpy(st[n], cst, sizeof cst);
    base[n++] = mem + cells * 8;
    memcpy(st[n], cst, sizeof cst);
    base[n++] = mem + cells * 16;
    memcpy(st[n], rst, sizeof rst);
    base[n++] = lask__nd_origin;
    if (aux) {
      nd_iter_strides(aux, nd, in->shape, st[n]);
      base[n++] = lask__nd_data(aux);
    } else {
      memset(st[n], 0, sizeof st[n]);
      base[n++] = lask__nd_origin;
    }
    go = nd_iter_init(it, nd, in->shape, NOPS, st, base);
    free(st);
  }
  while (go) {
    int64_t s0 = it->st[OP_ACC][it->nd - 1], s1 = it->st[OP_IN][it->nd - 1];
    int64_t s4 = it->st[OP_RPOS][it->nd - 1] / 8;
    int64_t s5 = it->st[OP_AUX][it->nd - 1];
    for (int64_t s = 0; s < it->inner; s += BLK) {
      int64_t m = it->inner - s < BLK ? it->inner - s : BLK;
      lask__nd_load_block(lane, in->dtype, it->p[OP_IN] + s * s1, s1, m, blk);
      char *pa = it->p[OP_ACC] + s * s0;
      int64_t cell0 = (int64_t)(pa - mem) / 8;
      int64_t rp0 = (int64_t)(it->p[OP_RPOS] - lask__nd_origin) / 8 + s * s4;
      const char *px = it->p[OP_AUX] + s * s5;
      for (int64_t k = 0; k < m; k++) {
        int64_t c = cell0 + k * (s0 / 8);
        double a = 0;
        if (aux) memcpy(&a, px + k * s5, 8);
        if (lane == LASK_LANE_F)
          upd_f(op, skipnan, &af[c], &cnt[c], &pos[c], blk[k], rp0 + k * s4,
                a);
        else
          upd_i(op, &ai[c], &cnt[c], &pos[c], ((int64_t *)blk)[k],
                rp0 + k * s4, a, &sq[c]);
      }
    }
    go = nd_iter_next(it);
  }
  free(it);
  free(blk);
  if (rc == 0) {
    /* Cells with no value: NaN for min/max of floats (all NaN skipped). */
    if (lane == LASK_LANE_F && skipnan &&
        (op == LASK_RED_MIN || op == LASK_RED_MAX || op == LASK_RED_ARGMIN ||
         op == LASK_RED_ARGMAX))
      for (size_t c = 0; c < cells; c++)
        if (cnt[c] == 0) af[c] = NAN;
    char *o = lask__nd_data(out);
    int oz = lask__dtype_size(out->dtype);
    int olane = nd_is_float(out->dtype) ? LASK_LANE_F : LASK_LANE_I;
    const void *src;
    int slane;
    if (op == LASK_RED_COUNT || op == LASK_RED_ARGMIN ||
        op == LASK_RED_ARGMAX) {
      src = op == LASK_RED_COUNT ? cnt : pos;
      slane = LASK_LANE_I;
    } else if (op == LASK_RED_SQDEV && lane == LASK_LANE_I) {
      src = sq;
      slane = LASK_LANE_F;
    } else {
      src = mem;
      slane = lane;
    }
    /* Converts lanes through a block when they differ. */
    union { double f[BLK]; int64_t i[BLK]; } tb;
    for (int64_t c = 0; c < ncell; c += BLK) {
      int64_t m = ncell - c < BLK ? ncell - c : BLK;
      const char *sp = (const char *)src + c * 8;
      if (slane != olane) {
        for (int64_t k = 0; k < m; k++) {
          if (olane == LASK_LANE_F) tb.f[k] = (double)((const int64_t *)sp)[k];
          else tb.i[k] = ((const double *)sp)[k] != 0; /* any/all only */
        }
        sp = (const char *)&tb;
      }
      lask__nd_store_block(olane, out->dtype, o + c * oz, oz, m, sp);
    }
    if (aux_out && (op == LASK_RED_ARGMIN || op == LASK_RED_ARGMAX)) {
      int az = lask__dtype_size(aux_out->dtype);
      lask__nd_store_block(lane, aux_out->dtype, lask__nd_data(aux_out), az,
                           ncell, mem);
    }
  }
  free(mem);
  return rc;
}
