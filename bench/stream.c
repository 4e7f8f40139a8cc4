/*
** stream.c: this machine's memory bandwidth, STREAM-style. Five kernels over
** arrays of n doubles (default 64M, 512 MB each, far larger than any cache;
** 1.5 GB in all): read (s += a[i]), copy (c = a), scale (b = q*c), add
** (c = a + b) and triad (a = b + q*c). Each runs on 1 thread, then on 2
** pthreads each taking half of the arrays; the best of NREP runs is kept.
** The kernels use GCC/Clang vector extensions as wide as the target allows.
** Bytes counted as STREAM does: 8 per array element read or written (no
** write-allocate traffic). Pages are touched, by the thread that later uses
** them, before any timing.
** The 2-thread read figure gives the memory-bandwidth bounds that lask's
** (x + x:T()):sum() on 8000x8000 float64 is compared with in
** bench/RESULTS.md, printed as "bound ...": reading x once (8000 * 8000 *
** 8 bytes: the least any evaluation must read, and what lask reads, each
** pair of blocks (i, j), (j, i) in one pass) and reading it twice (x and
** its transpose apart, as dask.array does).
** Build: cc -O2 -march=native bench/stream.c -o build/bench/stream -lpthread
** Run:   build/bench/stream [millions of doubles per array, default 64]
*/
#define _POSIX_C_SOURCE 200112L /* clock_gettime, posix_memalign */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NREP 10 /* runs of each kernel, the best kept */
#define MAXTHREADS 2

enum { READ, COPY, SCALE, ADD, TRIAD, NKERNEL };
static const char *const names[NKERNEL] = {"read", "copy", "scale", "add",
                                           "triad"};
static const int arrays[NKERNEL] = {1, 2, 2, 3, 3}; /* touched per element */

static double *a, *b, *c;
static const double q = 3.0;
static volatile double sink; /* keeps the read kernel's sum alive */

typedef struct {
  int kernel;
  size_t lo, hi;
  double sum;
} Job;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* W doubles at any 8-byte aligned address: the kernels are written on
   vectors so that they move data at full speed at -O2 too, where the
   compiler does not vectorize loops by itself. The widest registers the
   build allows are used: on this machine (2 cores of a Xeon under KVM) the
   2-thread read reaches ~21 GB/s with AVX-512 loads, ~17.5 with AVX2, ~15
   with SSE2 and only ~12 with scalar loads, so build with -march=native. */
#if defined __AVX512F__
#define W 8
#elif defined __AVX__
#define W 4
#else
#define W 2
#endif
typedef double V __attribute__((vector_size(W * 8), aligned(8)));
#define AT(p, i) (*(V *)&(p)[i])

static void *work(void *arg) {
  Job *j = arg;
  size_t i, lo = j->lo, hi = j->hi, vhi = lo + (hi - lo) / (4 * W) * (4 * W);
  switch (j->kernel) {
  case -1: /* first touch, before any timing */
    for (i = lo; i < hi; i++) a[i] = 1.0, b[i] = 2.0, c[i] = 0.0;
    break;
  case READ: {
    /* four sums, so the adds' latency does not bound the loop */
    V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    double s = 0;
    for (i = lo; i < vhi; i += 4 * W) {
      s0 += AT(a, i), s1 += AT(a, i + W);
      s2 += AT(a, i + 2 * W), s3 += AT(a, i + 3 * W);
    }
    for (; i < hi; i++) s += a[i];
    s0 = (s0 + s1) + (s2 + s3);
    for (i = 0; i < W; i++) s += s0[i];
    j->sum = s;
    break;
  }
  case COPY:
    for (i = lo; i < vhi; i += W) AT(c, i) = AT(a, i);
    for (; i < hi; i++) c[i] = a[i];
    break;
  case SCALE:
    for (i = lo; i < vhi; i += W) AT(b, i) = q * AT(c, i);
    for (; i < hi; i++) b[i] = q * c[i];
    break;
  case ADD:
    for (i = lo; i < vhi; i += W) AT(c, i) = AT(a, i) + AT(b, i);
    for (; i < hi; i++) c[i] = a[i] + b[i];
    break;
  case TRIAD:
    for (i = lo; i < vhi; i += W) AT(a, i) = AT(b, i) + q * AT(c, i);
    for (; i < hi; i++) a[i] = b[i] + q * c[i];
    break;
  }
  return NULL;
}

/* Runs kernel k over [0, n) on nt threads; returns the wall time. */
static double run(int k, size_t n, int nt) {
  pthread_t th[MAXTHREADS];
  Job job[MAXTHREADS];
  double t0, t, sum = 0;
  int i;
  for (i = 0; i < nt; i++) {
    job[i].kernel = k;
    job[i].lo = n * i / nt;
    job[i].hi = n * (i + 1) / nt;
    job[i].sum = 0;
  }
  t0 = now();
  for (i = 1; i < nt; i++)
    if (pthread_create(&th[i], NULL, work, &job[i]) != 0) {
      perror("pthread_create");
      exit(1);
    }
  work(&job[0]); /* the calling thread takes the first part */
  for (i = 1; i < nt; i++) pthread_join(th[i], NULL);
  t = now() - t0;
  for (i = 0; i < nt; i++) sum += job[i].sum;
  sink = sum;
  return t;
}

int main(int argc, char **argv) {
  size_t n = (size_t)(argc > 1 ? atof(argv[1]) : 64) * 1000000;
  double best[MAXTHREADS + 1][NKERNEL];
  int nt, k, r;
  /* cache-line aligned, as a numerical library's arrays would be */
  if (n < 1000 || posix_memalign((void **)&a, 64, n * sizeof *a) ||
      posix_memalign((void **)&b, 64, n * sizeof *b) ||
      posix_memalign((void **)&c, 64, n * sizeof *c)) {
    fprintf(stderr, "stream: cannot allocate 3 x %zu doubles\n", n);
    return 1;
  }
  run(-1, n, MAXTHREADS); /* touch every page, each half by its thread */
  printf("stream: 3 arrays of %zu doubles (%.0f MB each), best of %d\n", n,
         n * 8 / 1e6, NREP);
  for (nt = 1; nt <= MAXTHREADS; nt++) {
    for (k = 0; k < NKERNEL; k++) best[nt][k] = 1e30;
    /* kernels in turn in each round, so a burst of load elsewhere on the
       machine spoils one run of each rather than every run of one */
    for (r = 0; r < NREP; r++)
      for (k = 0; k < NKERNEL; k++) {
        double t = run(k, n, nt);
        if (t < best[nt][k]) best[nt][k] = t;
      }
    for (k = 0; k < NKERNEL; k++)
      printf("stream %-5s %dthread%s: %6.2f GB/s\n", names[k], nt,
             nt > 1 ? "s" : "", arrays[k] * 8.0 * n / best[nt][k] / 1e9);
  }
  {
    double bw = 8.0 * n / best[MAXTHREADS][READ]; /* bytes/s */
    printf("bound (x + x.T).sum 8000x8000: %.3f s reading x once (512 MB "
           "at %.2f GB/s), %.3f s reading it twice\n",
           8000.0 * 8000 * 8 / bw, bw / 1e9, 2.0 * 8000 * 8000 * 8 / bw);
  }
  free(a);
  free(b);
  free(c);
  return 0;
}
