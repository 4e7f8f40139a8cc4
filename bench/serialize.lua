-- serialize.lua: throughput of lask's value codec.
--   1. encode + decode of a table of 1e6 floats (target >= 300 MB/s, counted
--      on the encoded size), and of 1e6 integers;
--   2. round trips per second of small closures with upvalues (target >=
--      200k/s): a fresh closure each time, as tasks would make them.
-- Run: build/lask bench/serialize.lua  (or build/luajit/lask ...)
local lask = require "lask"
local clock = os.clock

local function best_of(n, f)
  local best = math.huge
  for _ = 1, n do
    local t0 = clock()
    f()
    best = math.min(best, clock() - t0)
  end
  return best
end

local function numbers(label, make)
  local t = {}
  for i = 1, 1e6 do t[i] = make(i) end
  local s
  local enc = best_of(5, function() s = lask.serialize(t) end)
  local dec = best_of(5, function() lask.deserialize(s) end)
  local mb = #s / 1e6
  print(("%-22s %6.1f MB  encode %6.1f ms  decode %6.1f ms  " ..
         "round trip %6.0f MB/s"):format(label, mb, enc * 1e3, dec * 1e3,
                                         mb / (enc + dec)))
end

local function closures()
  local n = 200000
  local t = best_of(3, function()
    for i = 1, n do
      local k, name = i, "job"
      local f = function(x) return x + k, name end
      local g = lask.deserialize(lask.serialize(f))
      if g(1) ~= i + 1 then error("wrong result") end
    end
  end)
  print(("%-22s %d round trips in %.3f s: %.0f k/s"):format(
    "small closures", n, t, n / t / 1e3))
end

print(("lask %s on %s"):format(lask.version, lask.flavour))
numbers("1e6 floats", function(i) return i * 0.5 + 0.25 end)
numbers("1e6 integers", function(i) return i end)
closures()
