#!/bin/sh
# run.sh: every benchmark, lask beside its peer in the same run. Not run by
# CI (make bench). Results are recorded by hand in bench/RESULTS.md, with
# the machine's state (load, governor) noted: run on an idle machine.
set -eu
cd "$(dirname "$0")/.."
echo "== $(date -u) on $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== serialization (peer: Python pickle, as Dask uses for task data)"
mkdir -p build/bench
${CC:-cc} -O2 -shared -fPIC $(pkg-config --cflags lua5.4) bench/api_floor.c \
  -o build/bench/api_floor.so
build/lask bench/api_floor.lua
build/lask bench/serialize.lua
build/luajit/lask bench/serialize.lua
/usr/bin/python3 bench/serialize_pickle.py
echo "== task graphs (peer: Dask's threaded scheduler, python3-dask)"
build/lask bench/delayed.lua
build/luajit/lask bench/delayed.lua
/usr/bin/python3 bench/delayed_dask.py
echo "== bags (peer: dask.bag, python3-dask)"
build/lask bench/bag.lua
build/luajit/lask bench/bag.lua
/usr/bin/python3 bench/bag_dask.py
echo "== arrays (peers: dask.array threads and NumPy; memory bandwidth; dgemm alone)"
bench/array_peers.sh
build/lask bench/array.lua
build/luajit/lask bench/array.lua
