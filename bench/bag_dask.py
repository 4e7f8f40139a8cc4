# bag_dask.py: dask.bag on the same workloads as bag.lua, on each of its
# schedulers (the issue compares with the fastest).
import time
import dask
import dask.bag as db

def timed(label, f):
    t0 = time.perf_counter(); r = f(); print("%-44s %6.2f s" % (label, time.perf_counter() - t0)); return r

def main():
    print("dask %s" % dask.__version__)
    for sched in ("sync", "threads", "processes"):
        kw = {"scheduler": sched}
        if sched != "sync": kw["num_workers"] = 2
        timed("word count (str.split), %s" % sched, lambda: db.read_text("bench/data/words-*.txt", blocksize=16_000_000)
              .str.split().flatten().frequencies().topk(10, key=1).compute(**kw))
    for sched in ("sync", "threads", "processes"):
        kw = {"scheduler": sched}
        if sched != "sync": kw["num_workers"] = 2
        timed("range(1e7).topk(10), %s" % sched, lambda: db.range(10_000_000, npartitions=16)
              .topk(10).compute(**kw))
        timed("distinct words (str.split), %s" % sched, lambda: db.read_text("bench/data/words-*.txt", blocksize=16_000_000)
              .str.split().flatten().distinct().count().compute(**kw))
    for sched in ("sync", "threads", "processes"):
        kw = {"scheduler": sched}
        if sched != "sync": kw["num_workers"] = 2
        timed("range(1e7).map.filter.sum, %s" % sched, lambda: db.range(10_000_000, npartitions=16)
              .map(lambda x: (x + 1) * (x + 1)).filter(lambda x: x % 2 == 0).sum().compute(**kw))

if __name__ == "__main__":  # the processes scheduler re-imports this file
    main()
