# delayed_dask.py: the same workloads as delayed.lua on Dask's threaded
# scheduler (Debian's python3-dask), for the side-by-side figures in
# bench/RESULTS.md.
import os, time
import dask
from dask import delayed

def timed(f):
    t0 = time.perf_counter(); r = f(); return time.perf_counter() - t0, r

def inc(x): return x + 1
N = int(os.environ.get("N", "100000"))
dask.config.set(scheduler="threads", num_workers=2)

tb, parts = timed(lambda: [delayed(inc)(i) for i in range(N)])
tc, vals = timed(lambda: dask.compute(*parts))
assert len(vals) == N
print("dask %s: %dk independent: build %.3f s (%.2f us/task), compute %.3f s (%.2f us/task)"
      % (dask.__version__, N // 1000, tb, tb / N * 1e6, tc, tc / N * 1e6))

# Dask's delayed chain build is quadratic (20k links took 66 s here), so
# the chain is given to the threaded scheduler as a raw graph: that times
# Dask's per-task scheduling fairly.
from dask.threaded import get as threaded_get
tb, dsk = timed(lambda: dict([("x0", 0)] + [("x%d" % i, (inc, "x%d" % (i - 1))) for i in range(1, N)]))
tc, v = timed(lambda: threaded_get(dsk, "x%d" % (N - 1), num_workers=2))
assert v == N - 1
print("dask: %dk chain (raw graph): build %.3f s, compute %.3f s (%.2f us/task)" % (N // 1000, tb, tc, tc / N * 1e6))

def spin(n):
    s = 0
    for i in range(1, n + 1): s += i % 7
    return s
for w in (1, 2):
    tasks = [delayed(spin)(10**6 + i) for i in range(16)]  # 1e6: pure Python is ~10x slower per iteration than Lua
    t, _ = timed(lambda: dask.compute(*tasks, num_workers=w))
    print("dask: 16 CPU-bound tasks (1e6 iterations), %d workers: %.2f s" % (w, t))
