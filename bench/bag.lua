-- bag.lua: lask.bag benchmarks (issue 4), beside bench/bag_dask.py.
--   word count with top 10 over bench/data/words-*.txt (made by
--   gen_words.lua), with the C string helpers and with a plain Lua closure;
--   range(1e7):map(square):filter(even):sum().
-- Run: build/lask bench/bag.lua   (2 executors)
local lask = require "lask"
local bag = require "lask.bag"
local core = require "lask.core"

local files = core.glob("bench/data/words-*.txt")
if #files == 0 then
  os.execute("build/lask bench/gen_words.lua bench/data 200")
  files = core.glob("bench/data/words-*.txt")
end
local bytes = 0
for _, f in ipairs(files) do bytes = bytes + core.file_size(f) end
lask.config.set{num_workers = 2}

local function timed(label, f)
  local t0 = core.now()
  local r = f()
  print(("%-34s %6.2f s"):format(label, core.now() - t0))
  return r
end

print(("lask %s on %s: %.0f MB of text in %d files"):format(
  lask.version, lask.flavour, bytes / 1e6, #files))
local top = timed("word count, C helpers", function()
  return bag.read_text("bench/data/words-*.txt", {blocksize = "16MB"})
    .str:split():flatten():frequencies():topk(10, 2):compute()
end)
print("  top: " .. top[1][1] .. " " .. top[1][2])
local top2 = timed("word count, Lua closure", function()
  return bag.read_text("bench/data/words-*.txt", {blocksize = "16MB"})
    :map(function(line)
      local t = {}
      for w in line:gmatch("%S+") do t[#t + 1] = w end
      return t
    end):flatten():frequencies():topk(10, 2):compute()
end)
assert(top2[1][2] == top[1][2], "both word counts agree")
timed("range(1e7):map:filter:sum", function()
  return bag.range(1e7, {npartitions = 16}):map(function(x) return x * x end)
    :filter(function(x) return x % 2 == 0 end):sum():compute()
end)
