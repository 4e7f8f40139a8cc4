/*
** nd.c: shared buffers, their pool, and array views (see nd.h).
*/
#include "nd.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The pool keeps freed buffers of at least POOL_MIN bytes, by exact
** capacity, up to 'pool_limit' bytes in all; smaller ones go back to
** malloc, which reuses them cheaply anyway. */
#define POOL_MIN (64 * 1024)
#define POOL_SLOTS 256

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lask_buf *pool[POOL_SLOTS];
static int pool_n;
static size_t pool_bytes, pool_limit = LASK_POOL_DEFAULT;
static size_t live_bytes; /* atomic */

/* Buffers of at least HUGE_MIN bytes are mapped on their own, 2 MB
** aligned, and the kernel is asked to back their whole 2 MB stretches with
** huge pages (the tail past the last whole stretch keeps small pages, so
** no more memory is touched than the buffer holds): a walk across the rows
** of a transposed block then needs a few TLB entries instead of one per
** row, and a fresh buffer faults in 2 MB at a time. Under AddressSanitizer
** they stay with malloc, where overflows are caught. */
#if defined(__SANITIZE_ADDRESS__)
#define LASK_NO_HUGE 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LASK_NO_HUGE 1
#endif
#endif
#ifdef LASK_NO_HUGE
#define HUGE_MIN SIZE_MAX
#else
#define HUGE_MIN ((size_t)4 << 20)
#endif
#define HUGE_ALIGN ((size_t)2 << 20)
#define MAP_UNIT ((size_t)64 << 10) /* a multiple of any page size */

static size_t map_len(size_t cap) {
  return (cap + MAP_UNIT - 1) / MAP_UNIT * MAP_UNIT;
}

/* Fresh zeroed pages (NULL when out of memory). */
static void *huge_map(size_t cap) {
  size_t len = map_len(cap);
  char *p = mmap(NULL, len + HUGE_ALIGN, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  /* trim to an aligned 'len' */
  size_t lead = (HUGE_ALIGN - (uintptr_t)p % HUGE_ALIGN) % HUGE_ALIGN;
  if (lead) munmap(p, lead);
  munmap(p + lead + len, HUGE_ALIGN - lead);
  p += lead;
#ifdef MADV_HUGEPAGE
  /* advice only: failure is harmless */
  madvise(p, cap / HUGE_ALIGN * HUGE_ALIGN, MADV_HUGEPAGE);
#endif
  return p;
}

static void data_free(void *data, size_t cap) {
  if (cap >= HUGE_MIN) munmap(data, map_len(cap));
  else free(data);
}

static size_t size_class(size_t n) {
  if (n < POOL_MIN) return n ? n : 1;
  /* Round up to a 1/8 step of the power of two below: chunks of equal
  ** shape share a class, and waste stays under 12.5%. */
  size_t p = (size_t)1 << (63 - __builtin_clzll((unsigned long long)n));
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct lask_buf *lask__buf_new(size_t nbytes, int zero) {
  size_t cap = size_class(nbytes);
  struct lask_buf *b = NULL;
  if (cap >= POOL_MIN) {
    pthread_mutex_lock(&pool_lock);
    for (int i = pool_n - 1; i >= 0; i--) {
      if (pool[i]->cap == cap) {
        b = pool[i];
        pool[i] = pool[--pool_n];
        pool_bytes -= cap;
        break;
      }
    }
    pthread_mutex_unlock(&pool_lock);
    if (b && zero) memset(b->data, 0, nbytes);
  }
  if (!b) {
    b = malloc(sizeof *b);
    if (!b) return NULL;
    /* calloc and mmap get fresh pages already zeroed from the kernel. */
    if (cap >= HUGE_MIN) b->data = huge_map(cap);
    else b->data = zero ? calloc(1, cap) : malloc(cap);
    if (!b->data) {
      free(b);
      return NULL;
    }
    b->cap = cap;
  }
  b->nbytes = nbytes;
  __atomic_store_n(&b->refs, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&live_bytes, cap, __ATOMIC_RELAXED);
  return b;
}

void lask__buf_retain(struct lask_buf *b) {
  __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
}

void lask__buf_release(struct lask_buf *b) {
  if (!b || __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  __atomic_sub_fetch(&live_bytes, b->cap, __ATOMIC_RELAXED);
  if (b->cap >= POOL_MIN) {
    pthread_mutex_lock(&pool_lock);
    if (pool_bytes + b->cap <= pool_limit && pool_n < POOL_SLOTS) {
      pool[pool_n++] = b;
      pool_bytes += b->cap;
      b = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!b) return;
  }
  data_free(b->data, b->cap);
  free(b);
}

size_t lask__buf_live(void) {
  return __atomic_load_n(&live_bytes, __ATOMIC_RELAXED);
}

void lask__buf_stats(size_t *live, size_t *pooled) {
  *live = lask__buf_live();
  pthread_mutex_lock(&pool_lock);
  *pooled = pool_bytes;
  pthread_mutex_unlock(&pool_lock);
}

static int gc_states; /* atomic */

void lask__buf_gc_states(int delta) {
  __atomic_add_fetch(&gc_states, delta, __ATOMIC_RELAXED);
}

size_t lask__buf_gc_every(void) {
  pthread_mutex_lock(&pool_lock);
  size_t every = pool_limit / 4;
  pthread_mutex_unlock(&pool_lock);
  int n = __atomic_load_n(&gc_states, __ATOMIC_RELAXED);
  if (n > 1) every /= (size_t)n;
  size_t most = (size_t)64 << 20;
  return every < most ? every : most;
}

void lask__buf_pool_limit(size_t limit) {
  struct lask_buf *drop[POOL_SLOTS];
  int n = 0;
  pthread_mutex_lock(&pool_lock);
  pool_limit = limit;
  while (pool_n > 0) drop[n++] = pool[--pool_n];
  pool_bytes = 0;
  pthread_mutex_unlock(&pool_lock);
  for (int i = 0; i < n; i++) {
    data_free(drop[i]->data, drop[i]->cap);
    free(drop[i]);
  }
}

int64_t lask__nd_size(const struct lask_nd *a) {
  int64_t n = 1;
  for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
  return n;
}

int lask__nd_alloc(struct lask_nd *a, int dtype, int ndim,
                   const int64_t *shape, int zero) {
  int isz = lask__dtype_size(dtype);
  if (!isz || ndim < 0 || ndim > LASK_ND_MAXDIM) return LASK_EINVAL;
  /* The size, and the strides (zero lengths counted as 1), must stay far
  ** from overflowing: at most 2^50 bytes either way. */
  uint64_t n = 1, span = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return LASK_EINVAL;
    uint64_t d = shape[i] ? (uint64_t)shape[i] : 1;
    if (span > (UINT64_C(1) << 50) / d) return LASK_EINVAL;
    span *= d;
    n *= (uint64_t)shape[i];
  }
  if (span > (UINT64_C(1) << 50) / (uint64_t)isz) return LASK_EINVAL;
  struct lask_buf *b = lask__buf_new((size_t)n * (size_t)isz, zero);
  if (!b) return LASK_ENOMEM;
  a->dtype = dtype;
  a->ndim = ndim;
  a->offset = 0;
  a->buf = b;
  int64_t st = isz;
  for (int i = ndim - 1; i >= 0; i--) {
    a->shape[i] = shape[i];
    a->strides[i] = st;
    st *= shape[i] ? shape[i] : 1;
  }
  return 0;
}

void lask__nd_clear(struct lask_nd *a) {
  lask__buf_release(a->buf);
  a->buf = NULL;
}

int lask__nd_is_contig(const struct lask_nd *a) {
  int64_t st = lask__dtype_size(a->dtype);
  for (int i = a->ndim - 1; i >= 0; i--) {
    if (a->shape[i] == 0) return 1;
    if (a->shape[i] != 1 && a->strides[i] != st) return 0;
    st *= a->shape[i];
  }
  return 1;
}

int lask__nd_broadcast(int n, const int *ndims,
                       const int64_t *const *shapes, int *out_ndim,
                       int64_t *out_shape, int *bad_axis) {
  int nd = 0;
  for (int k = 0; k < n; k++)
    if (ndims[k] > nd) nd = ndims[k];
  if (nd > LASK_ND_MAXDIM) return LASK_EINVAL;
  for (int i = 0; i < nd; i++) { /* i counts from the right */
    int64_t d = 1;
    for (int k = 0; k < n; k++) {
      if (i >= ndims[k]) continue;
      int64_t e = shapes[k][ndims[k] - 1 - i];
      if (e == 1) continue;
      if (d != 1 && e != d) {
        if (bad_axis) *bad_axis = i;
        return LASK_EINVAL;
      }
      d = e;
    }
    out_shape[nd - 1 - i] = d;
  }
  *out_ndim = nd;
  return 0;
}
