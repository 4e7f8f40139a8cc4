# array_dask.py: the peers of lask's array benchmarks, dask.array on its
# default (threaded) scheduler and NumPy in memory, best of 3 each:
#   (x + x.T).sum() and (sin(x)^2 + cos(x)^2).mean() on 8000x8000 float64
#   (1000x1000 chunks, persisted first), 4000x4000 matmul (1000x1000 and
#   2000x2000 chunks), and the random generation itself.
# Each line ends with the result, to check that the work was done.
# Run: /usr/bin/python3 bench/array_dask.py  (NumPy's OpenBLAS reads
# OPENBLAS_CORETYPE, as bench/dgemm.c does; see its header)
import ctypes
import os
import time

import dask
import dask.array as da
import numpy as np

REPS = 3


def best(label, f, check=float):
    """Prints and returns the best of REPS wall times of f(), and check() of
    its result (computed outside the timing)."""
    t, r = 1e30, None
    for _ in range(REPS):
        t0 = time.perf_counter()
        r = f()
        t = min(t, time.perf_counter() - t0)
    print("%-58s %7.3f s   (= %.6g)" % (label + ":", t, check(r)), flush=True)
    return t


def blas_library():
    """The BLAS library NumPy loaded (Debian's alternatives choose it) and,
    for OpenBLAS, the kernels it picked for this CPU (OPENBLAS_CORETYPE
    overrides them)."""
    with open("/proc/self/maps") as f:
        libs = sorted({os.path.realpath(l.split()[-1]) for l in f
                       if "blas" in l and "/" in l})
    for lib in libs:
        if "openblas" in os.path.basename(lib):
            try:
                get = ctypes.CDLL(lib).openblas_get_corename
                get.restype = ctypes.c_char_p
                return "%s (%s kernels)" % (lib, get().decode())
            except (OSError, AttributeError):
                pass
    return ", ".join(libs) or "?"


def main():
    np.ones((2, 2)) @ np.ones((2, 2))  # loads the BLAS
    print("numpy %s, dask %s, %d cores, BLAS %s"
          % (np.__version__, dask.__version__, os.cpu_count(), blas_library()))
    print("dask scheduler: %s" % (dask.config.get("scheduler", None) or "threads (default for arrays)"))

    generation()
    elementwise()
    matmul()


def generation():
    best("dask.array random.sum() 8000x8000 1000x1000",
         lambda: da.random.random((8000, 8000), chunks=(1000, 1000)).sum().compute())
    best("numpy random.random 8000x8000 (+ sum)",
         lambda: np.random.random((8000, 8000)).sum())


def elementwise():
    x = da.random.random((8000, 8000), chunks=(1000, 1000)).persist()
    xn = np.random.random((8000, 8000))
    # a) a transpose and a full reduction: reads x twice
    best("dask.array (x + x.T).sum() 8000x8000 1000x1000",
         lambda: (x + x.T).sum().compute())
    best("numpy (x + x.T).sum() 8000x8000",
         lambda: (xn + xn.T).sum())
    # b) an elementwise chain that fusion turns into one pass
    best("dask.array (sin(x)**2 + cos(x)**2).mean() 8000x8000 1000x1000",
         lambda: (da.sin(x) ** 2 + da.cos(x) ** 2).mean().compute())
    best("numpy (sin(x)**2 + cos(x)**2).mean() 8000x8000",
         lambda: (np.sin(xn) ** 2 + np.cos(xn) ** 2).mean())


def matmul():
    # c) checked (untimed) by the sum of the product, ~ 4000^3 / 4
    for ch in (1000, 2000):
        a = da.random.random((4000, 4000), chunks=(ch, ch)).persist()
        b = da.random.random((4000, 4000), chunks=(ch, ch)).persist()
        best("dask.array a @ b 4000x4000 %dx%d" % (ch, ch),
             lambda: (a @ b).compute(), np.sum)
    an = np.random.random((4000, 4000))
    bn = np.random.random((4000, 4000))
    best("numpy a @ b 4000x4000", lambda: an @ bn, np.sum)


if __name__ == "__main__":
    main()
