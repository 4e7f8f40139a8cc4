/*
** nd_iter.h: walking several arrays of one (broadcast) shape together, in
** C order, innermost axis in runs (internal to nd_*.c).
**
** Each operand has byte strides aligned to the iteration shape (0 on a
** broadcast axis). Axes of length 1 are dropped and neighbouring axes are
** merged when every operand steps through them as one, so a contiguous
** array is walked as one long run whatever its shape.
*/
#ifndef LASK_ND_ITER_H
#define LASK_ND_ITER_H

#include <string.h>

#include "nd.h"

#define LASK__ITER_MAXOPS 40

/* Base address of virtual operands (positions * 8 from it). */
LASK_INTERNAL extern char lask__nd_origin[1];

struct nd_iter {
  int nd, nops;
  int64_t shape[LASK_ND_MAXDIM];
  int64_t st[LASK__ITER_MAXOPS][LASK_ND_MAXDIM];
  char *p[LASK__ITER_MAXOPS]; /* current run's start, per operand */
  int64_t idx[LASK_ND_MAXDIM];
  int64_t outer, inner; /* runs left (counting this one), run length */
};

/* Strides of 'a' aligned right to an iteration of 'nd' axes with 'shape'
** (0 where 'a' is broadcast). */
static inline void nd_iter_strides(const struct lask_nd *a, int nd,
                                   const int64_t *shape, int64_t *st) {
  int off = nd - a->ndim;
  for (int i = 0; i < nd; i++) {
    int j = i - off;
    st[i] = (j < 0 || (a->shape[j] == 1 && shape[i] != 1)) ? 0
                                                           : a->strides[j];
  }
}

/* Starts an iteration; st[k] and base[k] are operand k's strides (aligned
** as above) and first element. Returns 0 if the shape is empty. */
static inline int nd_iter_init(struct nd_iter *it, int nd,
                               const int64_t *shape, int nops,
                               int64_t (*st)[LASK_ND_MAXDIM], char **base) {
  int m = 0;
  it->nops = nops;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 0) return 0;
    if (shape[i] == 1) continue;
    int merge = m > 0;
    for (int k = 0; merge && k < nops; k++)
      merge = it->st[k][m - 1] == st[k][i] * shape[i];
    if (merge) {
      it->shape[m - 1] *= shape[i];
      for (int k = 0; k < nops; k++) it->st[k][m - 1] = st[k][i];
    } else {
      it->shape[m] = shape[i];
      for (int k = 0; k < nops; k++) it->st[k][m] = st[k][i];
      m++;
    }
  }
  if (m == 0) {
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->st[k][0] = 0;
    m = 1;
  }
  it->nd = m;
  it->inner = it->shape[m - 1];
  it->outer = 1;
  for (int i = 0; i < m - 1; i++) {
    it->outer *= it->shape[i];
    it->idx[i] = 0;
  }
  for (int k = 0; k < nops; k++) it->p[k] = base[k];
  return 1;
}

/* Moves to the next run; returns 0 after the last. */
static inline int nd_iter_next(struct nd_iter *it) {
  if (--it->outer == 0) return 0;
  for (int d = it->nd - 2; d >= 0; d--) {
    for (int k = 0; k < it->nops; k++) it->p[k] += it->st[k][d];
    if (++it->idx[d] < it->shape[d]) break;
    for (int k = 0; k < it->nops; k++)
      it->p[k] -= it->st[k][d] * it->shape[d];
    it->idx[d] = 0;
  }
  return 1;
}

/* Element loads and stores by dtype, for kernels' slow paths. */
static inline double nd_load_f(const char *p, int dt) {
  switch (dt) {
  case LASK_DT_F64: { double v; memcpy(&v, p, 8); return v; }
  case LASK_DT_F32: { float v; memcpy(&v, p, 4); return v; }
  case LASK_DT_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
  case LASK_DT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
  case LASK_DT_U8: return *(const uint8_t *)p;
  default: return *(const uint8_t *)p != 0;
  }
}

static inline int64_t nd_load_i(const char *p, int dt) {
  switch (dt) {
  case LASK_DT_I64: { int64_t v; memcpy(&v, p, 8); return v; }
  case LASK_DT_I32: { int32_t v; memcpy(&v, p, 4); return v; }
  case LASK_DT_U8: return *(const uint8_t *)p;
  case LASK_DT_BOOL: return *(const uint8_t *)p != 0;
  default: return 0;
  }
}

/* Converts n elements of dtype dt at s (byte stride st) into a block of
** the lane's values (double or int64), and back. */
LASK_INTERNAL void lask__nd_load_block(int lane, int dt, const char *s,
                                       int64_t st, int64_t n, void *dst);
LASK_INTERNAL void lask__nd_store_block(int lane, int dt, char *d,
                                        int64_t st, int64_t n,
                                        const void *src);

static inline int nd_is_float(int dt) {
  return dt == LASK_DT_F64 || dt == LASK_DT_F32;
}

#endif
