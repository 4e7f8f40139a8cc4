--- lask: parallel computing for Lua.
-- The top-level module: the value codec today; delayed, compute and the
-- schedulers join it as they are built (see API.md).
-- Dependencies: `lask.core`.
-- @module lask
local core = require "lask.core"

local lask = {}

--- The library version, "X.Y.Z".
lask.version = core.version

--- The interpreter lask was built for: "Lua 5.4" or "LuaJIT 2.1".
lask.flavour = core.flavour

--- Encodes any supported Lua value (closures with upvalues included) as a
-- binary string that another Lua state, thread or process can decode.
-- @param v the value
-- @return string
-- @raise when the value holds something that cannot travel (a file handle,
-- a coroutine, foreign userdata); the message names the path to it.
lask.serialize = core.serialize

--- Decodes a string made by `lask.serialize`.
-- @param s string
-- @param[opt] opts `{code = false}` refuses values that carry bytecode
-- @raise "lask: corrupt serialized value ..." for damaged input
lask.deserialize = core.deserialize

--- Registers metatable `mt` under `name`, so that tables carrying it can be
-- serialized; the receiving state must register the same name.
lask.register_metatable = core.register_metatable

return lask
