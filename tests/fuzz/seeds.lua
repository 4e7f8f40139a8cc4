-- seeds.lua: writes the starting corpus of the decoder fuzz target
-- (tests/fuzz/fuzz_decode.c): lask.serialize of a variety of values.
-- Usage (from the repository root):
--   lua5.4 tests/fuzz/seeds.lua OUTDIR [BUILDDIR]
-- BUILDDIR holds lib/lask/core.so (default: the parent of OUTDIR, so that
-- `make fuzz` writing build/fuzz-corpus finds build/lib/lask/core.so).
-- Each value gives up to three files, one per mode of the target: the first
-- byte is the mode, then mode 0 has the whole encoding and modes 1 and 2
-- only its body (the target adds a header, without and with the bytecode
-- flag). Runs under Lua 5.4 and LuaJIT.

local outdir, builddir = arg[1], arg[2]
if not outdir then
  io.stderr:write("usage: seeds.lua OUTDIR [BUILDDIR]\n")
  os.exit(1)
end
builddir = builddir or outdir:match("^(.*)/[^/]+/?$") or "."
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = builddir .. "/lib/?.so;" .. package.cpath

local ok, lask = pcall(require, "lask")
if not ok then
  io.stderr:write(("seeds.lua: cannot load lask (build %s/lib/lask/core.so "
    .. "first):\n%s\n"):format(builddir, tostring(lask)))
  os.exit(1)
end

local HEADER = 16  -- bytes before the body (runtime/codec.h)
local MAXINT = math.maxinteger or 2 ^ 53
local MININT = math.mininteger or -2 ^ 53

--- The values to serialize, by seed name.
local seeds = {}

--- Scalars: every tag, integer and float extremes, odd strings.
local function add_scalars()
  seeds.nil_value = {nil}
  seeds["true"], seeds["false"] = {true}, {false}
  seeds.ints = {{0, 1, -1, 63, -64, 64, 127, 128, 2 ^ 31, -2 ^ 31, 2 ^ 32,
    MAXINT, MININT, MAXINT - 1, MININT + 1}}
  seeds.floats = {{0.5, -0.0, 1 / 0, -1 / 0, 0 / 0, 2 ^ 63, -2 ^ 63, 1e308,
    5e-324, 2.2250738585072014e-308, math.pi}}
  local bytes = {}
  for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
  seeds.strings = {{"", "a", "a\0b\0c\0", ("x"):rep(127), ("y"):rep(128),
    table.concat(bytes), ("\0"):rep(40)}}
  seeds.long_string = {("lask"):rep(1000)}
end

--- Tables: arrays, hashes, mixed and odd keys, nesting, sharing, cycles.
local function add_tables()
  seeds.empty_table = {{}}
  seeds.array = {{1, 2, 3, "four", 5.5, true, false}}
  seeds.hash = {{a = 1, b = "two", c = {d = {e = "deep"}}}}
  seeds.mixed = {{10, 20, x = "x", [true] = false, [1.5] = "f", [-7] = 7,
    [MAXINT] = "max", ["\0k"] = "zero key"}}
  seeds.sparse = {{[1] = 1, [3] = 3, [100] = 100}}
  local deep = {}
  for _ = 1, 200 do deep = {deep} end
  seeds.deep = {deep}
  local cyc = {name = "self"}
  cyc.self = cyc
  seeds.cycle = {cyc}
  local a, b = {}, {}
  a.b, b.a = b, a
  seeds.mutual_cycle = {a}
  local shared = {"shared"}
  seeds.shared = {{shared, shared, {shared, inner = shared}}}
  local key = {"key"}
  seeds.table_key = {{[key] = key, [{}] = "fresh"}}
end

--- Registered metatables, module references, the globals table.
local function add_references()
  local point = {}
  point.__index = point
  lask.register_metatable("fuzz.point", point)
  seeds.metatable = {{setmetatable({x = 1, y = 2}, point),
    setmetatable({x = -1, y = 0.5}, point)}}
  seeds.modules = {{string, math.sqrt, string.format, table.concat, io.write,
    lask, lask.serialize, print}}
  seeds.module_userdata = {io.stdout}
  seeds.globals = {{_G, g = _G}}
end

--- Functions: upvalues, shared (joined) upvalues, recursion, globals.
local function add_functions()
  local n = 5
  seeds.closure = {function(x) return x + n end}
  local count = 0
  local function inc() count = count + 1; return count end
  local function get() return count end
  seeds.joined = {{inc = inc, get = get}}
  local function fact(k) if k <= 1 then return 1 end return k * fact(k - 1) end
  seeds.recursive = {fact}
  seeds.uses_globals = {function(s) return string.upper(tostring(s)) end}
  local data = {1, 2, 3}
  data.f = function() return #data end
  seeds.function_in_cycle = {data}
  seeds.nested = {function()
    local m = 2
    return function(y) return y * m * n end
  end}
end

--- Writes 'bytes' to OUTDIR/name.
local function write(name, bytes)
  local path = outdir .. "/" .. name
  local f = assert(io.open(path, "wb"))
  assert(f:write(bytes))
  assert(f:close())
end

--- Writes the seed files of one value; returns how many.
local function write_seed(name, value)
  local enc = lask.serialize(value)
  lask.deserialize(enc) -- a seed that does not decode is a bug here
  write(name .. ".m0", "\0" .. enc)
  local body = enc:sub(HEADER + 1)
  write(name .. ".m1", "\1" .. body)
  write(name .. ".m2", "\2" .. body)
  return 3
end

--- Arrays: every dtype, 0-d, empty, and a strided view (sent by bytes).
local function add_arrays()
  local N = require "lask.ndarray"
  seeds.arrays = {{N.arange(0, 12):reshape({3, 4}),
                   N.from_table({{1.5, -2}, {0 / 0, 1 / 0}}, "float32"),
                   N.full({}, 7, "int32"), N.zeros({0, 3}, "uint8"),
                   N.from_table({true, false, true}),
                   N.arange(0, 20, "float64"):slice{{-1, 1, -3}}}}
end

add_scalars()
add_arrays()
add_tables()
add_references()
add_functions()
local names = {}
for name in pairs(seeds) do names[#names + 1] = name end
table.sort(names)
local total = 0
for _, name in ipairs(names) do
  total = total + write_seed(name, seeds[name][1])
end
print(("seeds.lua: wrote %d seed files to %s"):format(total, outdir))
