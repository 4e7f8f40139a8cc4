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
  print(("%-38s %6.2f s"):format(label, core.now() - t0))
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
-- For information (not the issue's pipeline): the same closure scanning
-- bytes instead of calling gmatch, which LuaJIT compiles and gmatch it
-- does not (on Lua 5.4 it is slower than gmatch).
local top3 = timed("word count, closure with a byte loop", function()
  return bag.read_text("bench/data/words-*.txt", {blocksize = "16MB"})
    :map(function(line)
      local byte, sub = string.byte, string.sub
      local t, i, n = {}, 1, #line
      while true do
        while i <= n do
          local b = byte(line, i)
          if b ~= 32 and (b < 9 or b > 13) then break end
          i = i + 1
        end
        if i > n then break end
        local j = i + 1
        while j <= n do
          local b = byte(line, j)
          if b == 32 or (b >= 9 and b <= 13) then break end
          j = j + 1
        end
        t[#t + 1] = sub(line, i, j - 1)
        i = j
      end
      return t
    end):flatten():frequencies():topk(10, 2):compute()
end)
assert(top3[1][2] == top[1][2], "the byte loop agrees")
timed("range(1e7):topk(10)", function()
  return bag.range(1e7, {npartitions = 16}):topk(10):compute()
end)
timed("distinct words (str:split)", function()
  return bag.read_text("bench/data/words-*.txt", {blocksize = "16MB"})
    .str:split():flatten():distinct():count():compute()
end)
timed("range(1e7):map:filter:sum", function()
  return bag.range(1e7, {npartitions = 16}):map(function(x) return x * x end)
    :filter(function(x) return x % 2 == 0 end):sum():compute()
end)
