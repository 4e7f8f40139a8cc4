-- delayed.lua: per-task overhead of lask's schedulers (issue 3 targets).
--   1. 100k independent trivial tasks, threads scheduler, 2 executors;
--   2. a 100k-long chain (fused, as lask runs it by default, and unfused);
--   3. building and submitting a 1M-task delayed graph;
--   4. 16 CPU-bound tasks (1e7 loop iterations each) on 1 and 2 executors.
-- Run: build/lask bench/delayed.lua   (peer: bench/delayed_dask.py)
local lask = require "lask"
local core = require "lask.core"
local unpack = table.unpack or unpack -- LuaJIT has only the global
local now = core.now

local function timed(f)
  local t0 = now()
  local r = f()
  return now() - t0, r
end

local inc = lask.delayed(function(x) return x + 1 end)
local N = 100000

local function independent(opts)
  local parts = {}
  local tb = timed(function()
    for i = 1, N do parts[i] = inc(i) end
  end)
  local tc, n = timed(function()
    return #lask.compute(parts) -- a list in, a list out
  end)
  assert(n == N)
  return tb, tc
end

local function chain(opts)
  local x = inc(0)
  local tb = timed(function()
    for _ = 2, N do x = inc(x) end
  end)
  local tc, v = timed(function() return x:compute(opts) end)
  assert(v == N, "chain result")
  return tb, tc
end

print(("lask %s on %s, %d cores"):format(lask.version, lask.flavour,
                                       core.cpu_count()))
lask.config.set{num_workers = 2}
local tb, tc = independent()
print(("100k independent: build %.3f s (%.2f us/task), compute %.3f s " ..
       "(%.2f us/task)"):format(tb, tb / N * 1e6, tc, tc / N * 1e6))
tb, tc = chain({})
print(("100k chain fused: build %.3f s, compute %.3f s (%.2f us/task)")
  :format(tb, tc, tc / N * 1e6))
tb, tc = chain({optimize_graph = false})
print(("100k chain unfused: build %.3f s, compute %.3f s (%.2f us/task)")
  :format(tb, tc, tc / N * 1e6))

local M = 1000000
local big = {}
local t1 = timed(function()
  for i = 1, M do big[i] = inc(i) end
end)
local sum = lask.delayed(function(...) return select("#", ...) end)
local t2 = timed(function()
  return core.build_job(big, require("lask.delayed").Delayed, false)
end)
print(("1M tasks: build Delayed %.2f s + build and plan the graph %.2f s = " ..
       "%.2f s"):format(t1, t2, t1 + t2))
big = nil
collectgarbage()

local spin = lask.delayed(function(n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end)
local function cpu(workers)
  local tasks = {}
  for i = 1, 16 do tasks[i] = spin(1e7 + i) end
  tasks[17] = {num_workers = workers} -- the options come last
  return timed(function()
    return lask.compute(unpack(tasks, 1, 17))
  end)
end
local c1, c2 = math.huge, math.huge -- best of three: the machine is shared
for _ = 1, 3 do
  c1, c2 = math.min(c1, cpu(1)), math.min(c2, cpu(2))
end
print(("16 CPU-bound tasks: 1 executor %.2f s, 2 executors %.2f s: " ..
       "speed-up %.2fx (best of 3 each)"):format(c1, c2, c1 / c2))
