#!/bin/sh
# array_peers.sh: the yardsticks of lask's array benchmarks, run alone: this
# machine's memory bandwidth (stream.c, and from it the bound on
# (x + x:T()):sum()), OpenBLAS dgemm called alone (dgemm.c), and dask.array
# and NumPy on the same workloads (array_dask.py). Run on an idle machine.
set -eu
cd "$(dirname "$0")/.."
mkdir -p build/bench
${CC:-cc} -O2 -march=native bench/stream.c -o build/bench/stream -lpthread
${CC:-cc} -O2 bench/dgemm.c -o build/bench/dgemm $(pkg-config --cflags --libs openblas)
echo "== $(date -u) on $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
build/bench/stream
build/bench/dgemm
# See bench/dgemm.c: on a Xeon OpenBLAS 0.3.21 does not know, its AVX-512
# kernels must be asked for; on a CPU without AVX-512 they would not run.
if grep -qw avx512f /proc/cpuinfo; then
  OPENBLAS_CORETYPE=SkylakeX build/bench/dgemm
fi
/usr/bin/python3 bench/array_dask.py
