-- script.lua: the example script for examples/embed/host.c.
-- Run: build/embed_host examples/embed/script.lua
-- It uses lask (opened by the host with lask_openlibs) and the host's own
-- C module "host" (host.log, host.hypot).
local lask = require "lask"
local host = require "host"

host.log(("lask %s on %s"):format(lask.version, lask.flavour))

-- A closure and its upvalue travel together.
local scale = 3
local function scaled_norm(x, y)
  return scale * host.hypot(x, y)
end
local bytes = lask.serialize(scaled_norm)
local copy = lask.deserialize(bytes)
host.log(("scaled_norm sent as %d bytes; copy(3, 4) = %g"):format(#bytes,
  copy(3, 4)))

-- The host's C function is not copied: it travels as a reference to the
-- "host" module and comes back as the very same function.
local back = lask.deserialize(lask.serialize({hypot = host.hypot}))
host.log("host.hypot came back as itself: " ..
  tostring(back.hypot == host.hypot))

-- Two closures sharing one upvalue still share it after the trip.
local count = 0
local counter = lask.deserialize(lask.serialize({
  inc = function() count = count + 1 end,
  get = function() return count end,
}))
counter.inc()
counter.inc()
host.log(("shared upvalue: copy counted %d, the original %d"):format(
  counter.get(), count))
