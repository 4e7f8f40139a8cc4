-- delayed.lua: a lazy task graph run on every core, with a progress bar.
-- Estimates pi by Monte Carlo in 64 independent tasks, then reduces the
-- partial counts in a small tree.
-- Run: build/lask examples/delayed.lua
local lask = require "lask"

local sample = lask.delayed(function(seed, n)
  -- Each task has its own generator: Park-Miller, exact in doubles too, so
  -- Lua 5.4 and LuaJIT draw the same numbers.
  local x, hits = seed, 0
  for _ = 1, n do
    x = (x * 16807) % 2147483647
    local a = x / 2147483647
    x = (x * 16807) % 2147483647
    local b = x / 2147483647
    if a * a + b * b <= 1 then hits = hits + 1 end
  end
  return hits
end, {name = "sample"})

local add = lask.delayed(function(a, b) return a + b end, {name = "add"})

local n, tasks = 200000, {}
for i = 1, 64 do tasks[i] = sample(i * 7919, n) end
while #tasks > 1 do -- a reduction tree
  local next_level = {}
  for i = 1, #tasks, 2 do
    next_level[#next_level + 1] = tasks[i + 1] and add(tasks[i], tasks[i + 1])
                                  or tasks[i]
  end
  tasks = next_level
end

local hits = tasks[1]:compute{progress = true}
print(("pi is about %.4f (%d samples on %d workers)"):format(
  4 * hits / (64 * n), 64 * n, lask.config.get("num_workers")))
