-- hello.lua: lask's serialization layer in a few lines. A closure with
-- upvalues travels to a fresh Lua state on another OS thread, runs there,
-- and its results come back.
-- Run: build/lask examples/hello.lua
local lask = require "lask"
local core = require "lask.core"

local greeting, rate = "hello from another thread", 1.5
local function job(xs)
  local total = 0
  for _, x in ipairs(xs) do total = total + x * rate end
  return greeting, total, string.format("%d items", #xs)
end

local bytes = lask.serialize(job)
print(("lask %s on %s: a closure with 2 upvalues is %d bytes")
  :format(lask.version, lask.flavour, #bytes))

local msg, total, summary = core.call_in_thread(job, {1, 2, 3, 4})
print(msg, total, summary)

-- What cannot travel is named, with the path to it.
local fh = io.tmpfile()
local ok, err = pcall(lask.serialize, function() return fh end)
print(ok, err)
fh:close()
