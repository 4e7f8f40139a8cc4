# serialize_pickle.py: Python's pickle on the same workloads as
# serialize.lua, for a side-by-side figure (pickle is what Dask uses for
# tasks; cloudpickle, used for closures, is slower still).
import pickle, time

def best_of(n, f):
    best = float("inf")
    for _ in range(n):
        t0 = time.process_time(); f(); best = min(best, time.process_time() - t0)
    return best

def numbers(label, xs):
    s = pickle.dumps(xs, protocol=5)
    enc = best_of(5, lambda: pickle.dumps(xs, protocol=5))
    dec = best_of(5, lambda: pickle.loads(s))
    mb = len(s) / 1e6
    print("%-22s %6.1f MB  encode %6.1f ms  decode %6.1f ms  round trip %6.0f MB/s"
          % (label, mb, enc * 1e3, dec * 1e3, mb / (enc + dec)))

def closures():
    n = 200000
    def run():
        for i in range(n):
            # pickle cannot send closures; a small tuple is its best case
            f = ("job", i)
            g = pickle.loads(pickle.dumps(f))
            assert g[1] == i
    t = best_of(3, run)
    print("%-22s %d round trips in %.3f s: %.0f k/s" % ("small tuples", n, t, n / t / 1e3))

print("python pickle (protocol 5)")
numbers("1e6 floats", [i * 0.5 + 0.25 for i in range(1, 1000001)])
numbers("1e6 integers", list(range(1, 1000001)))
closures()
