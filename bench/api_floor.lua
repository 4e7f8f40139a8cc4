-- api_floor.lua: times bench/api_floor.c's walk and fill over 1e6 floats.
package.cpath = "build/bench/?.so;" .. package.cpath
local floor = require "api_floor"
local t = {}
for i = 1, 1e6 do t[i] = i * 0.5 + 0.25 end
local function best(f)
  local b = math.huge
  for _ = 1, 5 do
    local t0 = os.clock(); f(); b = math.min(b, os.clock() - t0)
  end
  return b
end
local w = best(function() floor.walk(t) end)
local f = best(function() floor.fill(1e6) end)
print(("%-22s walk %6.1f ms  fill %6.1f ms  ceiling at 9 bytes/number " ..
       "%4.0f MB/s"):format("Lua API floor, 1e6", w * 1e3, f * 1e3,
                            9 / (w + f)))
