/*
** nd_linalg.c: matrix products (see nd.h). Floats go to CBLAS (Debian's
** OpenBLAS), reading a transposed view in place; integers use a plain
** i-k-j loop in int64.
*/
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nd.h"

void openblas_set_num_threads(int n);

void lask__blas_threads(int n) { openblas_set_num_threads(n); }

/* How BLAS can read 2-d 'a' in place: 0 row-major (ld in *ld), 1
** transposed, -1 not at all (a copy is needed). */
static int blas_layout(const struct lask_nd *a, int64_t *ld) {
  int64_t isz = lask__dtype_size(a->dtype);
  int64_t r = a->shape[0], c = a->shape[1];
  int64_t s0 = a->strides[0], s1 = a->strides[1];
  if ((s1 == isz || c == 1) && s0 % isz == 0 && s0 / isz >= (c > 1 ? c : 1)) {
    *ld = s0 / isz;
    return 0;
  }
  if ((s0 == isz || r == 1) && s1 % isz == 0 && s1 / isz >= (r > 1 ? r : 1)) {
    *ld = s1 / isz;
    return 1;
  }
  return -1;
}

/* A 2-d view of 1-d or 2-d 'a' (a row when row, else a column). */
static void as_2d(const struct lask_nd *a, int row, struct lask_nd *v) {
  *v = *a;
  if (a->ndim == 1) {
    v->ndim = 2;
    if (row) {
      v->shape[0] = 1;
      v->strides[0] = a->strides[0] * a->shape[0];
      v->shape[1] = a->shape[0];
      v->strides[1] = a->strides[0];
    } else {
      v->shape[1] = 1;
      v->strides[1] = lask__dtype_size(a->dtype);
    }
  }
}

/* A contiguous copy of 'a' in 'dtype' (a new reference in *c). */
static int contig(const struct lask_nd *a, int dtype, struct lask_nd *c,
                  const char **why) {
  int rc = lask__nd_alloc(c, dtype, a->ndim, a->shape, 0);
  if (rc) return rc;
  rc = lask__nd_copy(a, c, why);
  if (rc) lask__nd_clear(c);
  return rc;
}

/* Makes 2-d '*x' readable by BLAS in 'dt': in place (*trans, *ld), or
** through a contiguous copy into 'c' (always when 'copy'). */
static int operand(struct lask_nd *x, int dt, int copy, struct lask_nd *c,
                   int *trans, int64_t *ld, const char **why) {
  *trans = (!copy && x->dtype == dt) ? blas_layout(x, ld) : -1;
  if (*trans >= 0) return 0;
  int rc = contig(x, dt, c, why);
  if (rc) return rc;
  *x = *c;
  *trans = 0;
  *ld = x->shape[1];
  return 0;
}

int lask__nd_matmul(const struct lask_nd *a0, const struct lask_nd *b0,
                    int dt, struct lask_nd *out, const char **why) {
  if (a0->ndim < 1 || a0->ndim > 2 || b0->ndim < 1 || b0->ndim > 2) {
    *why = "it takes 1-d or 2-d arrays";
    return LASK_EINVAL;
  }
  struct lask_nd a, b, ca = {0}, cb = {0};
  as_2d(a0, 1, &a);
  as_2d(b0, 0, &b);
  int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1];
  if (b.shape[0] != k) { /* named: a 1-d a is a row, a 1-d b a column */
    static _Thread_local char msg[80];
    snprintf(msg, sizeof msg, "inner dimensions differ (%lld and %lld)",
             (long long)k, (long long)b.shape[0]);
    *why = msg;
    return LASK_EINVAL;
  }
  int64_t oshape[2];
  int ond = 0;
  if (a0->ndim == 2) oshape[ond++] = m;
  if (b0->ndim == 2) oshape[ond++] = n;
  int fl = dt == LASK_DT_F64 || dt == LASK_DT_F32;
  int rc = lask__nd_alloc(out, dt, ond, oshape, !fl || k == 0);
  if (rc) {
    *why = rc == LASK_ENOMEM ? "out of memory" : "matmul: result too large";
    return rc;
  }
  if (m == 0 || n == 0 || k == 0) return 0;
  int64_t lda = 0, ldb = 0;
  int ta = 0, tb = 0;
  /* the integer loop reads contiguous copies */
  if ((rc = operand(&a, dt, !fl, &ca, &ta, &lda, why)) != 0 ||
      (rc = operand(&b, dt, !fl, &cb, &tb, &ldb, why)) != 0)
    goto done;
  if (fl && (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff ||
             lda > 0x7fffffff || ldb > 0x7fffffff)) {
    *why = "a dimension beyond BLAS's int range";
    rc = LASK_EINVAL;
    goto done;
  }
  if (dt == LASK_DT_F64) {
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0,
                (const double *)lask__nd_data(&a), (int)lda,
                (const double *)lask__nd_data(&b), (int)ldb, 0.0,
                (double *)lask__nd_data(out), (int)n);
  } else if (dt == LASK_DT_F32) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                (const float *)lask__nd_data(&a), (int)lda,
                (const float *)lask__nd_data(&b), (int)ldb, 0.0f,
                (float *)lask__nd_data(out), (int)n);
  } else {
    /* Integers: int64 accumulation, wrapping, then stored in dt. */
    struct lask_nd acc;
    int64_t ash[2] = {m, n};
    const struct lask_nd *ia = &a, *ib = &b;
    struct lask_nd wa = {0}, wb = {0};
    if (a.dtype != LASK_DT_I64 && (rc = contig(&a, LASK_DT_I64, &wa, why)))
      goto done;
    if (a.dtype != LASK_DT_I64) ia = &wa;
    if (b.dtype != LASK_DT_I64 && (rc = contig(&b, LASK_DT_I64, &wb, why))) {
      if (wa.buf) lask__nd_clear(&wa);
      goto done;
    }
    if (b.dtype != LASK_DT_I64) ib = &wb;
    rc = lask__nd_alloc(&acc, LASK_DT_I64, 2, ash, 1);
    if (rc == 0) {
      const int64_t *pa = (const int64_t *)lask__nd_data(ia);
      const int64_t *pb = (const int64_t *)lask__nd_data(ib);
      uint64_t *pc = (uint64_t *)lask__nd_data(&acc);
      for (int64_t i = 0; i < m; i++)
        for (int64_t p = 0; p < k; p++) {
          uint64_t x = (uint64_t)pa[i * k + p];
          for (int64_t j = 0; j < n; j++)
            pc[i * n + j] += x * (uint64_t)pb[p * n + j];
        }
      struct lask_nd o2 = *out;
      as_2d(out, 1, &o2);
      if (out->ndim == 2) o2 = *out;
      else if (out->ndim == 0) {
        o2.ndim = 2;
        o2.shape[0] = o2.shape[1] = 1;
        o2.strides[0] = o2.strides[1] = 0;
      } else if (a0->ndim == 2) { /* (m) from a column */
        o2.ndim = 2;
        o2.shape[0] = m;
        o2.shape[1] = 1;
        o2.strides[0] = out->strides[0];
        o2.strides[1] = 0;
      }
      rc = lask__nd_copy(&acc, &o2, why);
      lask__nd_clear(&acc);
    } else {
      *why = "out of memory";
    }
    if (wa.buf) lask__nd_clear(&wa);
    if (wb.buf) lask__nd_clear(&wb);
  }
done:
  if (ca.buf) lask__nd_clear(&ca);
  if (cb.buf) lask__nd_clear(&cb);
  if (rc) lask__nd_clear(out);
  return rc;
}

int lask__nd_matmul_acc(const struct lask_nd *a0, const struct lask_nd *b0,
                        struct lask_nd *out, const char **why) {
  int dt = out->dtype;
  if (a0->ndim != 2 || b0->ndim != 2 || out->ndim != 2 ||
      (dt != LASK_DT_F64 && dt != LASK_DT_F32) || !lask__nd_is_contig(out) ||
      a0->shape[1] != b0->shape[0] || out->shape[0] != a0->shape[0] ||
      out->shape[1] != b0->shape[1]) {
    *why = "shapes, ranks or dtype do not fit";
    return LASK_EINVAL;
  }
  struct lask_nd a = *a0, b = *b0, ca = {0}, cb = {0};
  int64_t m = a.shape[0], k = a.shape[1], n = b.shape[1], lda = 0, ldb = 0;
  int rc = 0;
  if (m == 0 || n == 0 || k == 0) return 0;
  int ta = 0, tb = 0;
  if ((rc = operand(&a, dt, 0, &ca, &ta, &lda, why)) != 0 ||
      (rc = operand(&b, dt, 0, &cb, &tb, &ldb, why)) != 0)
    goto done;
  if (m > 0x7fffffff || n > 0x7fffffff || k > 0x7fffffff ||
      lda > 0x7fffffff || ldb > 0x7fffffff) {
    *why = "a dimension beyond BLAS's int range";
    rc = LASK_EINVAL;
    goto done;
  }
  if (dt == LASK_DT_F64)
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0,
                (const double *)lask__nd_data(&a), (int)lda,
                (const double *)lask__nd_data(&b), (int)ldb, 1.0,
                (double *)lask__nd_data(out), (int)n);
  else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, 1.0f,
                (const float *)lask__nd_data(&a), (int)lda,
                (const float *)lask__nd_data(&b), (int)ldb, 1.0f,
                (float *)lask__nd_data(out), (int)n);
done:
  if (ca.buf) lask__nd_clear(&ca);
  if (cb.buf) lask__nd_clear(&cb);
  return rc;
}
