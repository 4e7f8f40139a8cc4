/*
** nd.h: n-dimensional numeric arrays over shared buffers (internal).
**
** Data structures and ownership
**
**   struct lask_buf   a block of memory with an atomic reference count.
**                     Every view (struct lask_nd) that points into it holds
**                     one reference; so does every encoded task result that
**                     carries it inside this process (codec.h's wbuf refs).
**                     The last release returns the memory to a pool of
**                     buffers kept by size, so a chunk-sized buffer freed by
**                     one task is reused by the next without new page faults
**                     (ARCHITECTURE.md "Memory").
**   struct lask_nd    a view: dtype, shape, byte strides and byte offset
**                     into one buffer. Views share memory: slicing and
**                     transposing make new views, never copies.
**
** Threads: buffers are shared between executor threads of one process; only
** the reference count and the pool are touched concurrently (atomics and
** one mutex). The memory itself is written only by the task that allocated
** it, before it publishes the result; afterwards it is read-only by
** convention (a user who writes into a shared block sees NumPy's aliasing).
**
** Axes are 0-based here; the Lua API adds one. Kernels: nd_eval.c (fused
** elementwise programs, casts, copies), nd_reduce.c (reductions with axes),
** nd_linalg.c (matmul via CBLAS), nd_random.c (seeded generators),
** npy.c (the .npy header).
*/
#ifndef LASK_ND_H
#define LASK_ND_H

#include <stddef.h>
#include <stdint.h>

#include "lask.h"
#include "npy.h"

struct lask_buf {
  long refs;     /* atomic */
  size_t nbytes; /* usable bytes at data */
  size_t cap;    /* bytes allocated (the pool's size class) */
  void *data;    /* malloc aligned; 2 MB aligned from 4 MB (nd.c) */
};

struct lask_nd {
  int dtype; /* LASK_DT_* */
  int ndim;
  int64_t offset; /* bytes from buf->data to element 0 */
  int64_t shape[LASK_ND_MAXDIM];
  int64_t strides[LASK_ND_MAXDIM]; /* bytes, may be 0 or negative */
  struct lask_buf *buf;            /* one reference held by the view */
};

/* A new buffer of 'nbytes' (0 allowed), zero-filled when 'zero' is set;
** NULL when out of memory. Thread: any. */
LASK_INTERNAL struct lask_buf *lask__buf_new(size_t nbytes, int zero);
LASK_INTERNAL void lask__buf_retain(struct lask_buf *b);
LASK_INTERNAL void lask__buf_release(struct lask_buf *b);
/* Bytes currently held by live buffers (Thread: any). */
LASK_INTERNAL size_t lask__buf_live(void);
/* Bytes currently held by live buffers and by the pool. */
LASK_INTERNAL void lask__buf_stats(size_t *live, size_t *pooled);
/* The pool's limit until lask__buf_pool_limit changes it. */
#define LASK_POOL_DEFAULT ((size_t)512 << 20)
/* Frees every pooled buffer; the pool keeps at most 'limit' bytes from now
** on. */
LASK_INTERNAL void lask__buf_pool_limit(size_t limit);
/* How many bytes of buffers a Lua state may take between two of the
** collections lask asks for beside its per-buffer steps (see account() in
** bindings/ndarray.c): a quarter of the pool's limit (so with memory_limit
** set, a sixteenth of it) shared among the states that count
** (lask__buf_gc_states adds or removes one), at most 64 MB. Thread: any. */
LASK_INTERNAL size_t lask__buf_gc_every(void);
LASK_INTERNAL void lask__buf_gc_states(int delta);

/* Number of elements (product of the shape); 1 for 0-d. */
LASK_INTERNAL int64_t lask__nd_size(const struct lask_nd *a);
/* Allocates a C-ordered array: 0, LASK_EINVAL (bad dtype, ndim or shape,
** or a size that overflows) or LASK_ENOMEM. */
LASK_INTERNAL int lask__nd_alloc(struct lask_nd *a, int dtype, int ndim,
                                 const int64_t *shape, int zero);
/* Drops the view's reference (a->buf becomes NULL). */
LASK_INTERNAL void lask__nd_clear(struct lask_nd *a);
/* Is the view C-contiguous (elements in row-major order, no gaps)? */
LASK_INTERNAL int lask__nd_is_contig(const struct lask_nd *a);
/* Address of the first element. */
static inline char *lask__nd_data(const struct lask_nd *a) {
  return (char *)a->buf->data + a->offset;
}

/* Broadcasts shapes by NumPy's rule: 0, or LASK_EINVAL when they do not
** fit (the first offending axis is stored in *bad_axis, counted from the
** right). */
LASK_INTERNAL int lask__nd_broadcast(int n, const int *ndims,
                                     const int64_t *const *shapes,
                                     int *out_ndim, int64_t *out_shape,
                                     int *bad_axis);

/* Elementwise programs (nd_eval.c).
**
** A program is a byte string made by the Lua side (lua/lask/ndarray.lua):
**   u8 nregs, u8 ninputs, u8 nconsts, u8 result register,
**   nconsts x (u8 lane, 8 bytes LE value), then 4-byte instructions
**   (op, dst, a, b) up to the end; LASK_OP_WHERE takes its third operand
**   from the next 4 bytes (op = 0, c, 0, 0).
** Registers are blocks of values in one of two lanes: F (double) or I
** (int64). lask__prog_check verifies that every register is written before
** it is read and that every operand has the lane its op needs, against the
** dtypes of the actual inputs, so no program can read out of bounds. */
enum {
  LASK_LANE_F = 0,
  LASK_LANE_I = 1
};

#define LASK_PROG_OPS(X)                                                   \
  X(LOAD, "load")   /* dst = input a, lane from its dtype */               \
  X(CONST, "const") /* dst = constant a */                                 \
  X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div")                  \
  X(MOD, "mod") X(POW, "pow") X(MAX, "max") X(MIN, "min")                  \
  X(FMAX, "fmax") X(FMIN, "fmin") X(ATAN2, "atan2")                        \
  X(EQ, "eq") X(NE, "ne") X(LT, "lt") X(LE, "le") X(GT, "gt")              \
  X(GE, "ge") X(AND, "and") X(OR, "or") X(XOR, "xor")                      \
  X(NEG, "neg") X(ABS, "abs") X(NOT, "not") X(SQRT, "sqrt")                \
  X(EXP, "exp") X(LOG, "log") X(LOG10, "log10") X(LOG2, "log2")            \
  X(LOG1P, "log1p") X(EXPM1, "expm1") X(SIN, "sin") X(COS, "cos")          \
  X(TAN, "tan") X(ASIN, "asin") X(ACOS, "acos") X(ATAN, "atan")            \
  X(SINH, "sinh") X(COSH, "cosh") X(TANH, "tanh") X(FLOOR, "floor")        \
  X(CEIL, "ceil") X(ROUND, "round") X(TRUNC, "trunc") X(SIGN, "sign")      \
  X(SQUARE, "square") X(ISNAN, "isnan") X(ISINF, "isinf")                  \
  X(ISFINITE, "isfinite") X(TOF, "tof") X(TOI, "toi")                      \
  X(WRAPU8, "wrapu8") X(WRAPI32, "wrapi32") X(TOF32, "tof32")              \
  X(WHERE, "where")

enum {
#define LASK__OP_ENUM(name, text) LASK_OP_##name,
  LASK_PROG_OPS(LASK__OP_ENUM)
#undef LASK__OP_ENUM
  LASK_OP_COUNT
};

/* Evaluates program 'prog' (n bytes) over 'inputs' (broadcast to out's
** shape) into 'out' (already allocated, any dtype whose lane matches the
** result register's). Returns 0 or LASK_EINVAL with *why set. */
LASK_INTERNAL int lask__nd_eval(const uint8_t *prog, size_t n, int ninputs,
                                const struct lask_nd *inputs,
                                struct lask_nd *out, const char **why);

/* Copies src into dst (same shape, or broadcast to it), converting
** dtypes as astype does: float to integer truncates toward zero (NaN and
** out-of-range values give INT64_MIN, then wrap), any nonzero is true. */
LASK_INTERNAL int lask__nd_copy(const struct lask_nd *src,
                                struct lask_nd *dst, const char **why);

/* Full reductions fused with a program: the program's result is reduced
** over every element, never stored. 'op' is one of LASK_RED_* (not
** SQDEV's aux array: the mean comes in acc->mean). With 'pair' (else
** NULL), input k's partner pair[k] (an input of the same dtype and
** shape), each run is reduced a second time with input k read from input
** pair[k]: two blocks of an expression such as x + x^T, (i, j) and the
** transpose of (j, i), reduced in one pass over their data. Not for
** ARGMIN/ARGMAX. */
struct lask_red_acc {
  double f;      /* the result when the program's result is in the F lane */
  int64_t i;     /* the result in the I lane */
  int64_t count; /* values taken (NaNs excluded when skipnan) */
  int64_t pos;   /* ARGMIN/ARGMAX: 0-based flat C-order position, or -1 */
  double mean;   /* SQDEV: the mean to subtract (given) */
};
LASK_INTERNAL int lask__nd_eval_reduce(const uint8_t *prog, size_t n,
                                       int ninputs,
                                       const struct lask_nd *inputs, int op,
                                       int skipnan, const int *pair,
                                       struct lask_red_acc *acc,
                                       const char **why);

/* d[k] = f(a[k]) for unary float op 'op' through vector instructions
** (nd_vmath.c); returns 0, touching nothing, when it has no vector form. */
LASK_INTERNAL int lask__vmath(int op, double *d, const double *a, int64_t n);

/* Reductions over axes (nd_reduce.c). */
enum {
  LASK_RED_SUM = 0,
  LASK_RED_PROD,
  LASK_RED_MIN,
  LASK_RED_MAX,
  LASK_RED_ANY,
  LASK_RED_ALL,
  LASK_RED_COUNT, /* number of values (non-NaN ones when skipnan) */
  LASK_RED_SQDEV, /* sum of (x - aux)^2, aux broadcast like the output */
  LASK_RED_ARGMIN,
  LASK_RED_ARGMAX,
  LASK_RED_COUNT_OPS
};

/* Reduces 'in' over the axes set in 'mask' (bit i: axis i) into 'out',
** which has in's ndim with 1 on the reduced axes (keepdims) and a dtype
** chosen by the caller: float64 for SUM/PROD/SQDEV of floats and COUNT,
** int64 for SUM/PROD of integers, in's dtype for MIN/MAX, bool for
** ANY/ALL, int64 for ARGMIN/ARGMAX (0-based flat position within the
** reduced axes, C order). ARGMIN/ARGMAX also store the extreme value into
** 'aux_out' (in's dtype) when not NULL. 'aux' (SQDEV) is float64 with
** out's shape. Returns 0 or LASK_EINVAL with *why. */
LASK_INTERNAL int lask__nd_reduce(const struct lask_nd *in, uint64_t mask,
                                  int op, int skipnan,
                                  const struct lask_nd *aux,
                                  struct lask_nd *out, struct lask_nd *aux_out,
                                  const char **why);

/* Matrix product of 1-d or 2-d a and b (NumPy's matmul for those ranks)
** into 'out', allocated here (float64 or float32 through CBLAS, integers by
** plain loops in int64). Returns 0, LASK_EINVAL (*why: valid until the
** thread's next call) or LASK_ENOMEM. */
LASK_INTERNAL int lask__nd_matmul(const struct lask_nd *a,
                                  const struct lask_nd *b, int out_dtype,
                                  struct lask_nd *out, const char **why);
/* out += a @ b for 2-d float arrays of out's dtype, out C-contiguous
** (a blocked product's partial sums, without a temporary). */
LASK_INTERNAL int lask__nd_matmul_acc(const struct lask_nd *a,
                                      const struct lask_nd *b,
                                      struct lask_nd *out, const char **why);
/* Threads BLAS may use in this process (1 inside executors). */
LASK_INTERNAL void lask__blas_threads(int n);

/* Fills a contiguous float64 array from a counter-based generator: value i
** depends only on (seed, stream, i), so a chunk is the same whatever runs
** it. kind 0: uniform [0, 1); kind 1: standard normal. */
LASK_INTERNAL void lask__nd_random(struct lask_nd *a, uint64_t seed,
                                   uint64_t stream, int kind);

#endif
