-- bench/array.lua: lask.array beside dask.array and NumPy (bench/array_dask.py,
-- run by bench/run.sh in the same session). Best of 3 after one warm-up.
local la = require "lask.array"
local core = require "lask.core"
local now = core.now

local function best(n, f)
  f() -- warm-up: pools and pages
  local b = math.huge
  local r
  for _ = 1, n do
    local t = now()
    r = f()
    b = math.min(b, now() - t)
  end
  return b, r
end

local flavour = core.flavour
local function report(what, t, r)
  print(("lask (%s) %s: %.3f s  [%s]"):format(flavour, what, t, tostring(r)))
end

local x = la.random.random({8000, 8000}, {chunks = {1000, 1000}, seed = 1})
local t, r = best(3, function() return x:sum():compute() end)
report("random((8000, 8000)).sum() 1000x1000 (generation)", t, r)

x = x:persist()
t, r = best(3, function() return x:sum():compute() end)
report("x.sum() 8000x8000 1000x1000 (reads x once)", t, r)
t, r = best(3, function() return (x + x:T()):sum():compute() end)
report("(x + x.T).sum() 8000x8000 1000x1000", t, r)

t, r = best(3, function()
  return (la.sin(x) ^ 2 + la.cos(x) ^ 2):mean():compute()
end)
report("(sin(x)^2 + cos(x)^2).mean() 8000x8000 1000x1000", t, r)
x = nil
collectgarbage()

for _, c in ipairs{1000, 2000} do
  local a = la.random.random({4000, 4000}, {chunks = {c, c}, seed = 2}):persist()
  local b = la.random.random({4000, 4000}, {chunks = {c, c}, seed = 3}):persist()
  t, r = best(3, function() return a:matmul(b):compute() end)
  report(("matmul 4000x4000 chunks %dx%d"):format(c, c), t,
         ("%.1f GFLOP/s"):format(2 * 4000 ^ 3 / t / 1e9))
end

local N = require "lask.ndarray"
local a = la.random.random({4000, 4000}, {chunks = {4000, 4000}, seed = 2}):compute()
local b = la.random.random({4000, 4000}, {chunks = {4000, 4000}, seed = 3}):compute()
t = best(3, function() return a:matmul(b) end)
report("eager ndarray matmul 4000x4000 (one dgemm)", t,
       ("%.1f GFLOP/s"):format(2 * 4000 ^ 3 / t / 1e9))
local _ = N
