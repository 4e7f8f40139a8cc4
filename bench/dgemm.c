/*
** dgemm.c: OpenBLAS's dgemm called alone on n x n float64 (default 4000),
** C = A * B with A and B uniform in [0, 1), row-major, on OpenBLAS's
** default number of threads (all cores, unless OPENBLAS_NUM_THREADS says
** otherwise). One warm-up call, then the best of 3 timed calls; GFLOP/s
** counts 2 n^3 flops. It is the yardstick for lask's 4000x4000 matmul in
** bench/RESULTS.md (which must reach 80% of its speed).
** Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not know some newer CPUs
** (seen here: a Xeon of family 6 model 207) and falls back to its Prescott
** (SSE3) kernels, ~5x slower than its AVX-512 ones: OPENBLAS_CORETYPE=
** SkylakeX (read when the library loads) selects those; bench/
** array_peers.sh asks for them only when the CPU has AVX-512 (on an AMD
** EPYC it picks its Zen kernels itself). The kernels used are printed.
** Build: cc -O2 bench/dgemm.c -o build/bench/dgemm $(pkg-config --cflags
**          --libs openblas)
** Run:   build/bench/dgemm [n]
*/
#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 4000;
  size_t nn = (size_t)n * n, i;
  double *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b);
  double *c = malloc(nn * sizeof *c), best = 1e30, trace = 0;
  int r;
  if (n <= 0 || !a || !b || !c) {
    fprintf(stderr, "dgemm: cannot allocate 3 x %d x %d doubles\n", n, n);
    return 1;
  }
  srand(42);
  for (i = 0; i < nn; i++) {
    a[i] = rand() / (RAND_MAX + 1.0);
    b[i] = rand() / (RAND_MAX + 1.0);
    c[i] = 0;
  }
  for (r = 0; r < 4; r++) { /* r == 0 is the warm-up */
    double t0 = now(), t;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n,
                b, n, 0.0, c, n);
    t = now() - t0;
    if (r > 0 && t < best) best = t;
  }
  for (i = 0; i < (size_t)n; i++) trace += c[i * n + i];
  /* each entry of C sums n products of means 1/4: trace ~ n * n / 4 */
  /* the kernel set OpenBLAS chose for this CPU (DYNAMIC_ARCH builds fall
     back to an old one on a CPU they do not know; OPENBLAS_CORETYPE then
     names another, e.g. SkylakeX or Haswell) */
  printf("dgemm %d openblas: %.3f s, %.1f GFLOP/s (%d threads, %s kernels; "
         "trace %.6g, expected ~%.6g)\n",
         n, best, 2.0 * n * n * (double)n / best / 1e9,
         openblas_get_num_threads(), openblas_get_corename(), trace,
         (double)n * n / 4);
  free(a);
  free(b);
  free(c);
  return 0;
}
