# bag_dask.py: dask.bag on the same workloads as bag.lua, on each of its
# schedulers (the issue compares with the fastest).
import re
import time
import dask
import dask.bag as db

def timed(label, f):
    t0 = time.perf_counter(); r = f(); print("%-44s %6.2f s" % (label, time.perf_counter() - t0)); return r

WORD = re.compile(r"\S+")

def split_words(line):
    return line.split()

def match_words(line):
    t = []
    for m in WORD.finditer(line):
        t.append(m.group())
    return t

def main():
    print("dask %s" % dask.__version__)
    for sched in ("sync", "threads", "processes"):
        kw = {"scheduler": sched}
        if sched != "sync": kw["num_workers"] = 2
        timed("word count (str.split), %s" % sched, lambda: db.read_text("bench/data/words-*.txt", blocksize=16_000_000)
              .str.split().flatten().frequencies().topk(10, key=1).compute(**kw))
    # For information (the peer is the pipeline above): the same
    # count with a Python closure per line, as bag.lua's Lua closure; first
    # what a Python user writes (str.split, C), then the line's words
    # matched one at a time, as gmatch does.
    for sched in ("sync", "processes"):
        kw = {"scheduler": sched}
        if sched != "sync": kw["num_workers"] = 2
        timed("word count (closure: split), %s" % sched, lambda: db.read_text("bench/data/words-*.txt", blocksize=16_000_000)
              .map(split_words).flatten().frequencies().topk(10, key=1).compute(**kw))
        timed("word count (closure: finditer), %s" % sched, lambda: db.read_text("bench/data/words-*.txt", blocksize=16_000_000)
              .map(match_words).flatten().frequencies().topk(10, key=1).compute(**kw))
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
