-- Specs for lask.serialize / lask.deserialize (the value codec).
-- Runs on Lua 5.4 and LuaJIT; the Makefile sets LUA_PATH/LUA_CPATH and
-- LASK_LUA (this interpreter's command) for the cross-process tests, and
-- LASK_OTHER_* for the cross-interpreter ones.
local lask = require "lask"
local core = require "lask.core"

local is54 = math.type ~= nil

-- Runs 'body' (Lua code that writes to the file named by the global PATH)
-- in the other interpreter (LASK_OTHER_LUA) and returns the file's bytes,
-- or nil when the other interpreter is not configured.
local function bytes_from_other(body)
  local other = os.getenv("LASK_OTHER_LUA")
  if not other then return nil end
  local path = os.tmpname()
  local script = ("PATH = %q; local l = require 'lask'; " ..
                  "local h = io.open(PATH, 'wb'); %s; h:close()")
                 :format(path, body)
  local env = ("LUA_CPATH=%q "):format(os.getenv("LASK_OTHER_CPATH") or "")
  assert(os.execute(env .. other .. " -e " .. ("%q"):format(script)))
  local fh = assert(io.open(path, "rb"))
  local bytes = fh:read("*a")
  fh:close()
  os.remove(path)
  return bytes
end

local function rt(v)
  return lask.deserialize(lask.serialize(v))
end

local errmsg = require("helpers").errmsg

describe("lask.serialize of plain values", function()
  it("round-trips nil and booleans", function()
    assert.is_nil(rt(nil))
    assert.is_true(rt(true))
    assert.is_false(rt(false))
  end)

  it("keeps Lua 5.4 integers integers, exact to 64 bits", function()
    if not is54 then
      pending("LuaJIT has no integer subtype")
      return
    end
    for _, v in ipairs({0, 1, -1, 127, 128, -129, 2^31, math.maxinteger,
                        math.mininteger, math.maxinteger - 1,
                        9007199254740993}) do
      local i = math.tointeger(v) or v
      local back = rt(i)
      assert.are.equal("integer", math.type(back))
      assert.are.equal(i, back)
    end
    assert.are.equal("float", math.type(rt(1.0)))
  end)

  it("keeps numbers exact on LuaJIT, integral or not", function()
    for _, v in ipairs({0, 1, -1, 2^53, -2^53, 2^60, 2^1023, 0.5, 1e-300}) do
      assert.are.equal(v, rt(v))
    end
  end)

  it("keeps NaN, infinities, -0.0 and denormals", function()
    local nan = rt(0 / 0)
    assert.is_true(nan ~= nan)
    assert.are.equal(math.huge, rt(math.huge))
    assert.are.equal(-math.huge, rt(-math.huge))
    local negzero = rt(-0.0)
    assert.are.equal(-math.huge, 1 / negzero)
    assert.are.equal(4.9406564584124654e-324, rt(4.9406564584124654e-324))
    assert.are.equal(math.pi, rt(math.pi))
    assert.are.equal(0.1, rt(0.1))
  end)

  it("keeps binary strings byte for byte", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    local all = table.concat(bytes)
    assert.are.equal(all, rt(all))
    assert.are.equal("", rt(""))
    assert.are.equal("a\0b\0", rt("a\0b\0"))
    local big = all:rep(4096)
    assert.are.equal(big, rt(big))
  end)
end)

describe("lask.serialize of tables", function()
  it("round-trips nested tables, holes and every key type", function()
    local k = {}
    local t = {1, 2, nil, 4, x = "y", [true] = false, [2.5] = "f",
               [-3] = "neg", [0] = "zero", [k] = "tablekey",
               nested = {a = {b = {c = {1, 2, 3}}}}}
    local back = rt(t)
    assert.are.equal(1, back[1])
    assert.is_nil(back[3])
    assert.are.equal(4, back[4])
    assert.are.equal("y", back.x)
    assert.is_false(back[true])
    assert.are.equal("f", back[2.5])
    assert.are.equal("neg", back[-3])
    assert.are.equal("zero", back[0])
    assert.are.same({1, 2, 3}, back.nested.a.b.c)
    local found = 0
    for key, v in pairs(back) do
      if type(key) == "table" then
        found = found + 1
        assert.are.equal("tablekey", v)
      end
    end
    assert.are.equal(1, found)
  end)

  it("preserves shared references and cycles", function()
    local shared = {n = 1}
    local t = {a = shared, b = shared, list = {shared, shared}}
    t.self = t
    shared.back = t
    local back = rt(t)
    assert.are.equal(back, back.self)
    assert.are.equal(back.a, back.b)
    assert.are.equal(back.a, back.list[1])
    assert.are.equal(back.list[1], back.list[2])
    assert.are.equal(back, back.a.back)
    assert.are_not.equal(t, back)
  end)

  it("keeps a table used as both key and value one table", function()
    local k = {}
    local back = rt({[k] = k})
    local key, value = next(back)
    assert.are.equal(key, value)
  end)

  it("round-trips random tables built in random insertion orders",
     function()
    math.randomseed(42)
    local function random_value(depth)
      local r = math.random(1, depth > 3 and 5 or 7)
      if r == 1 then return math.random(-1000, 1000) end
      if r == 2 then return math.random() * 1e6 end
      if r == 3 then return ("s"):rep(math.random(0, 5)) .. math.random(9) end
      if r == 4 then return math.random() < 0.5 end
      if r == 5 then return math.random(1, 3) * 0.25 end
      local t, keys = {}, {}
      for i = 1, math.random(0, 12) do keys[#keys + 1] = i end
      for i = 1, math.random(0, 4) do keys[#keys + 1] = "k" .. i end
      keys[#keys + 1] = math.random() < 0.3 and 0 or nil
      for i = #keys, 2, -1 do -- shuffle: integer keys land in the hash part
        local j = math.random(1, i)
        keys[i], keys[j] = keys[j], keys[i]
      end
      for _, k in ipairs(keys) do t[k] = random_value(depth + 1) end
      return t
    end
    for _ = 1, 300 do
      local v = random_value(0)
      assert.are.same(v, rt(v))
    end
  end)

  it("round-trips large arrays and maps", function()
    local arr, map = {}, {}
    for i = 1, 100000 do
      arr[i] = i * 0.5
      map["k" .. i] = i
    end
    local back = rt({arr, map})
    assert.are.equal(100000, #back[1])
    assert.are.equal(50000, back[1][100000])
    assert.are.equal(77777, back[2].k77777)
  end)

  it("round-trips a long linked list (deep nesting)", function()
    local list
    for i = 1, 2500 do list = {v = i, next = list} end
    local back, n = rt(list), 0
    while back do
      n = n + 1
      back = back.next
    end
    assert.are.equal(2500, n)
  end)

  it("refuses nesting too deep to decode safely, without crashing", function()
    local list
    for i = 1, 100000 do list = {next = list} end
    local msg = errmsg(lask.serialize, list)
    assert.matches("nesting deeper than", msg)
  end)
end)

describe("metatables registered by name", function()
  local Point = {}
  Point.__index = Point
  function Point.new(x, y) return setmetatable({x = x, y = y}, Point) end
  function Point:norm2() return self.x * self.x + self.y * self.y end
  lask.register_metatable("spec.Point", Point)

  it("are restored on decode", function()
    local back = rt({Point.new(3, 4), Point.new(1, 1)})
    assert.are.equal(Point, getmetatable(back[1]))
    assert.are.equal(25, back[1]:norm2())
    assert.are.equal(2, back[2]:norm2())
  end)

  it("travel to another thread's state that registers the same name",
     function()
    local norm = core.call_in_thread(function(p)
      local lask_ = require "lask"
      local P = {}
      P.__index = P
      function P:norm2() return self.x * self.x + self.y * self.y end
      lask_.register_metatable("spec.Point", P)
      return lask_.deserialize(p):norm2()
    end, lask.serialize(Point.new(6, 8)))
    assert.are.equal(100, norm)
  end)

  it("raise an error when unregistered, naming the path", function()
    local obj = setmetatable({}, {})
    local msg = errmsg(lask.serialize, {inner = {obj = obj}})
    assert.matches("metatable is not registered", msg, 1, true)
    assert.matches("field 'obj', in field 'inner'", msg, 1, true)
  end)

  it("refuse to decode a name this state has not registered", function()
    local msg = errmsg(core.call_in_thread, function(s)
      return require("lask").deserialize(s)
    end, lask.serialize(Point.new(1, 2)))
    assert.matches("metatable 'spec.Point' is not registered", msg, 1, true)
  end)

  it("refuse a name registered twice for different tables", function()
    local msg = errmsg(lask.register_metatable, "spec.Point", {})
    assert.matches("already registered", msg)
  end)
end)

describe("lask.serialize of functions", function()
  it("round-trips a closure with upvalues of every plain type", function()
    local n, s, t = 10, "x", {1, 2}
    local f = function(a) return a + n + #s + #t end
    assert.are.equal(14, rt(f)(1))
  end)

  it("round-trips nested closures", function()
    local function adder(k)
      return function(x)
        return function(y) return x + y + k end
      end
    end
    local g = rt(adder(100))
    assert.are.equal(103, g(1)(2))
  end)

  it("round-trips recursive local functions", function()
    local function fib(n)
      if n < 2 then return n end
      return fib(n - 1) + fib(n - 2)
    end
    assert.are.equal(6765, rt(fib)(20))
    local even, odd
    function even(n) if n == 0 then return true end return odd(n - 1) end
    function odd(n) if n == 0 then return false end return even(n - 1) end
    local back = rt({even, odd})
    assert.is_true(back[1](10))
    assert.is_true(back[2](7))
  end)

  it("keeps upvalues shared by two closures shared", function()
    local function counter()
      local n = 0
      return function() n = n + 1 return n end, function() return n end
    end
    local inc, get = counter()
    inc()
    local back = rt({inc = inc, get = get})
    back.inc()
    back.inc()
    assert.are.equal(3, back.get())
    assert.are.equal(1, get()) -- the original is untouched
  end)

  it("rebinds globals to the receiving state", function()
    _G.lask_spec_marker = "client"
    local f = function() return lask_spec_marker, type(print) end
    assert.are.equal("client", (rt(f)()))
    local marker, printtype = core.call_in_thread(f)
    assert.is_nil(marker)
    assert.are.equal("function", printtype)
    _G.lask_spec_marker = nil
  end)

  it("rebinds a custom function environment to the receiver's globals",
     function()
    _G.lask_spec_x = "global"
    local f
    if is54 then
      f = load("local _ENV = {lask_spec_x = 'custom'}; " ..
               "return function() return lask_spec_x end")()
    else
      f = setfenv(function() return lask_spec_x end, {lask_spec_x = "custom"})
    end
    assert.are.equal("custom", f())
    assert.are.equal("global", rt(f)())
    _G.lask_spec_x = nil
  end)

  it("keeps line information for tracebacks", function()
    local f = function() error("boom") end
    local msg = errmsg(rt(f))
    assert.matches("serialize_spec.lua:%d+: boom", msg)
  end)

  it("refuses bytecode when asked to", function()
    local s = lask.serialize(function() end)
    local msg = errmsg(lask.deserialize, s, {code = false})
    assert.matches("refusing bytecode from an untrusted source", msg, 1, true)
    assert.are.equal(5, lask.deserialize(lask.serialize(5), {code = false}))
  end)
end)

describe("module references", function()
  it("send standard tables and C functions by reference", function()
    assert.are.equal(string, rt(string))
    assert.are.equal(math.sqrt, rt(math.sqrt))
    assert.are.equal(print, rt(print))
    local back = rt({fmt = string.format, m = math})
    assert.are.equal(string.format, back.fmt)
    assert.are.equal(math, back.m)
  end)

  it("resolve in the receiver's own copy", function()
    local sqrt = math.sqrt
    local f = function(x) return sqrt(x) + #string.rep("a", 2) end
    assert.are.equal(5, core.call_in_thread(f, 9))
  end)

  it("send a user module by reference and require it on arrival", function()
    local mod = require "fixtures.lask_testmod"
    assert.are.equal(mod, rt(mod))
    assert.are.equal(mod.greet, rt(mod.greet))
    local f = function() return mod.greet("thread"), mod.state_id() end
    local greeting, id = core.call_in_thread(f)
    assert.are.equal("hello, thread", greeting)
    assert.are_not.equal(mod.state_id(), id) -- the worker's own copy
  end)

  it("name a module that cannot be loaded on arrival", function()
    package.loaded.lask_spec_gone = {f = function() end}
    local bytes = lask.serialize({package.loaded.lask_spec_gone})
    package.loaded.lask_spec_gone = nil
    local msg = errmsg(lask.deserialize, bytes)
    assert.matches("reference to module 'lask_spec_gone'", msg, 1, true)
  end)

  it("are refused, like the globals table, for untrusted input", function()
    local msg = errmsg(lask.deserialize, lask.serialize({os.execute}),
                       {code = false})
    assert.matches("refusing a module reference from an untrusted source",
                   msg, 1, true)
    msg = errmsg(lask.deserialize, lask.serialize({_G}), {code = false})
    assert.matches("refusing the globals table", msg, 1, true)
    assert.are.same({1, "a", {b = true}}, lask.deserialize(
      lask.serialize({1, "a", {b = true}}), {code = false}))
  end)

  it("travel by value once their module is unloaded", function()
    package.loaded.lask_spec_tmp = {f = function() return "tmp" end}
    local f = package.loaded.lask_spec_tmp.f
    assert.are.equal(f, rt(f)) -- a reference while loaded
    package.loaded.lask_spec_tmp = nil
    local back = rt(f)
    assert.are_not.equal(f, back)
    assert.are.equal("tmp", back())
  end)

  it("copies user global tables instead of referencing them", function()
    _G.lask_spec_config = {n = 1}
    local back = rt(_G.lask_spec_config)
    assert.are_not.equal(_G.lask_spec_config, back)
    assert.are.equal(1, back.n)
    _G.lask_spec_config = nil
  end)

  it("encodes the globals table as the receiver's globals", function()
    assert.are.equal(_G, rt(_G))
    local G = _G
    local f = function() return G.type(1) end
    assert.are.equal("number", core.call_in_thread(f))
  end)
end)

describe("values that cannot travel", function()
  it("name a file handle in an upvalue", function()
    local fh = io.tmpfile()
    local function job() return fh end
    local msg = errmsg(lask.serialize, job)
    assert.matches("cannot serialize a userdata (FILE*)", msg, 1, true)
    assert.matches("upvalue 'fh' of the function defined at ", msg, 1, true)
    assert.matches("serialize_spec.lua:%d+", msg)
    fh:close()
  end)

  it("name a coroutine inside a table inside an upvalue", function()
    local cfg = {co = coroutine.create(function() end)}
    local function job() return cfg end
    local msg = errmsg(lask.serialize, {job})
    assert.matches("cannot serialize a coroutine at field 'co', in " ..
                   "upvalue 'cfg' of the function defined at", msg, 1, true)
    assert.matches("in index 1", msg, 1, true)
  end)

  it("name foreign userdata", function()
    local ok, lfs = pcall(require, "lfs")
    if not ok then
      pending("needs lua-filesystem for a foreign userdata")
      return
    end
    local _, dir = lfs.dir(".")
    local msg = errmsg(lask.serialize, {d = dir})
    assert.matches("cannot serialize a userdata", msg, 1, true)
    assert.matches("at field 'd'", msg, 1, true)
    dir:close()
  end)

  it("name a C function that no module holds", function()
    local iter = string.gmatch("a b", "%a")
    local msg = errmsg(lask.serialize, function() return iter end)
    assert.matches("cannot serialize a C function", msg, 1, true)
    assert.matches("upvalue 'iter'", msg, 1, true)
  end)

  it("name the value itself at the top level", function()
    local msg = errmsg(lask.serialize, coroutine.create(print))
    assert.matches("coroutine (the value itself)", msg, 1, true)
  end)
end)

describe("encoding that reenters lask.serialize", function()
  it("from a __gc finalizer keeps both results intact", function()
    local inner = {}
    local ok_inner = 0
    local function finalizer()
      inner[#inner + 1] = lask.serialize({"inner", {1, 2, 3}})
    end
    local function make_garbage()
      for _ = 1, 200 do
        if newproxy then -- LuaJIT runs __gc on userdata only
          getmetatable(newproxy(true)).__gc = finalizer
        else
          setmetatable({}, {__gc = finalizer})
        end
      end
    end
    local big = {}
    for i = 1, 20000 do big[i] = {i, tostring(i)} end
    for _ = 1, 5 do
      make_garbage()
      local s = lask.serialize(big) -- allocations may run the finalizers
      local back = lask.deserialize(s)
      assert.are.equal(20000, #back)
      assert.are.equal("777", back[777][2])
    end
    collectgarbage()
    for _, s in ipairs(inner) do
      assert.are.same({"inner", {1, 2, 3}}, lask.deserialize(s))
      ok_inner = ok_inner + 1
    end
    assert.is_true(ok_inner > 0)
  end)

  it("does not call the global table.sort while indexing modules",
     function()
    local sort = table.sort
    table.sort = function() error("lask must not call table.sort") end
    package.loaded.lask_spec_new = {x = {}}
    local ok, err = pcall(lask.serialize, {print, {1}})
    table.sort = sort
    package.loaded.lask_spec_new = nil
    assert.is_true(ok, err)
  end)
end)

-- Seals 'body' in a valid header, as an encoder would: the checksum is
-- lask_hash64(body, seed = header bytes 0..7 read little-endian).
local function seal(body, flags)
  local flavour = is54 and 1 or 2
  local head = "lsk\1" .. string.char(flavour, flags or 0, 0, 0)
  local seed = 0
  for i = 7, 1, -1 do seed = seed * 256 + head:byte(i) end
  local hex = core.hash(body, seed)
  local sum = {}
  for i = 1, 8 do
    sum[i] = string.char(tonumber(hex:sub(17 - 2 * i, 18 - 2 * i), 16))
  end
  return head .. table.concat(sum) .. body
end

describe("lask.deserialize of hostile bodies behind a valid checksum", function()
  local function u32(n)
    return string.char(n % 256, math.floor(n / 256) % 256,
                       math.floor(n / 65536) % 256,
                       math.floor(n / 16777216) % 256)
  end

  it("accepts a body sealed the way the encoder does", function()
    assert.are.same({7}, lask.deserialize(seal("\6" .. u32(1) .. u32(0) ..
                                               "\3\14")))
  end)

  local cases = {
    {"a table claiming more entries than bytes", "\6" .. u32(1000000) ..
     u32(0) .. "\0"},
    {"a table claiming more pairs than bytes", "\6" .. u32(0) ..
     u32(4000000000) .. "\0\0"},
    {"a reference to nothing", "\8\5"},
    {"a reference before any table", "\8\1"},
    {"an unknown tag", "\99"},
    {"a truncated string", "\5\20abc"},
    {"a string length past the end", "\5\255\255\255\255\15x"},
    {"an overlong varint", "\3\255\255\255\255\255\255\255\255\255" ..
     "\255\1"},
    {"a nil table key", "\6" .. u32(0) .. u32(1) .. "\0\2"},
    {"a NaN table key", "\6" .. u32(0) .. u32(1) .. "\4" ..
     "\0\0\0\0\0\0\248\127\2"},
    {"a module path of no parts", "\10\0"},
    {"a module path too long", "\10\9"},
    {"a dependency outside a task", "\13\0"},
    {"trailing bytes", "\0\0"},
    {"a function in a data-only value", "\9\1x\0"},
    {"nesting past the limit", ("\6" .. u32(1) .. u32(0)):rep(20000)},
  }
  for _, case in ipairs(cases) do
    it("rejects " .. case[1], function()
      local msg = errmsg(lask.deserialize, seal(case[2]))
      assert.matches("^lask: ", msg)
    end)
  end

  it("rejects bad upvalue data around real bytecode", function()
    local code = string.dump(function() return 1 end)
    local function func(rest)
      local n = #code
      local len = ""
      repeat
        local b = n % 128
        n = math.floor(n / 128)
        len = len .. string.char(n > 0 and b + 128 or b)
      until n == 0
      return "\9" .. len .. code .. rest
    end
    local with_code = 1
    -- declares 3 upvalues, the function has none
    assert.matches("upvalue count", errmsg(lask.deserialize,
                   seal(func("\3"), with_code)))
    -- and untrusted callers never get that far
    assert.matches("refusing bytecode", errmsg(lask.deserialize,
                   seal(func("\0"), with_code), {code = false}))
  end)
end)

describe("lask.deserialize of bad input", function()
  local sample = lask.serialize({1, "two", {3}, f = function(x) return x end,
                                 m = math.sqrt})

  it("rejects every truncation", function()
    for n = 0, #sample - 1 do
      local msg = errmsg(lask.deserialize, sample:sub(1, n))
      assert.matches("^lask: corrupt serialized value", msg)
    end
  end)

  it("rejects every single-bit flip", function()
    for i = 1, #sample do
      for bit = 0, 7 do
        local b = sample:byte(i)
        local flipped = (math.floor(b / 2^bit) % 2 == 1) and b - 2^bit
                        or b + 2^bit
        local s = sample:sub(1, i - 1) .. string.char(flipped) ..
                  sample:sub(i + 1)
        local msg = errmsg(lask.deserialize, s)
        assert.matches("^lask: ", msg)
        assert.is_truthy(msg:find("corrupt", 1, true) or
                         msg:find("format version", 1, true))
      end
    end
  end)

  it("rejects random bytes and random bytes behind a valid magic", function()
    math.randomseed(7)
    for _ = 1, 2000 do
      local t = {}
      for j = 1, math.random(0, 64) do t[j] = string.char(math.random(0, 255)) end
      local junk = table.concat(t)
      assert.matches("^lask: corrupt", errmsg(lask.deserialize, junk))
      assert.matches("^lask: corrupt",
                     errmsg(lask.deserialize, "lsk\1\1\0\0\0" .. junk))
    end
  end)

  it("names the format version it does not know", function()
    local s = sample:sub(1, 3) .. "\99" .. sample:sub(5)
    assert.matches("made by format version 99", errmsg(lask.deserialize, s))
  end)

  it("rejects trailing bytes", function()
    local msg = errmsg(lask.deserialize, sample .. "x")
    assert.matches("^lask: corrupt", msg)
  end)

  it("rejects non-strings with an argument error", function()
    local msg = errmsg(lask.deserialize, {})
    assert.matches("bad argument #1", msg, 1, true)
  end)
end)

describe("values crossing states", function()
  it("decode in another OS thread's Lua state", function()
    local k = 7
    local data = {1, 2, 3, name = "x"}
    local r1, r2 = core.call_in_thread(function(d)
      local s = 0
      for _, v in ipairs(d) do s = s + v end
      return s * k, d.name .. "!"
    end, data)
    assert.are.equal(42, r1)
    assert.are.equal("x!", r2)
  end)

  it("report an error raised in the other thread", function()
    local msg = errmsg(core.call_in_thread, function() error("worker boom") end)
    assert.matches("lask: in thread: .*worker boom", msg)
    assert.matches("stack traceback", msg, 1, true)
  end)

  it("decode in another process", function()
    local cmd = os.getenv("LASK_LUA")
    if not cmd then
      pending("LASK_LUA is not set (run through make test)")
      return
    end
    local offset = 5
    local f = function(t) return t.a * 10 + offset end
    local path = os.tmpname()
    local fh = assert(io.open(path, "wb"))
    fh:write(lask.serialize({f = f, arg = {a = 3}}))
    fh:close()
    local script = ("local l = require 'lask'; local h = io.open(%q, 'rb'); " ..
                    "local v = l.deserialize(h:read('*a')); h:close(); " ..
                    "io.write(v.f(v.arg))"):format(path)
    local p = io.popen(cmd .. " -e " .. ("%q"):format(script) .. " 2>&1")
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.are.equal("35", out)
  end)

  it("refuse bytecode made by the other interpreter, saying so", function()
    local bytes = bytes_from_other("h:write(l.serialize({function() end, 1.5}))")
    if not bytes then
      pending("LASK_OTHER_LUA is not set (run through make test)")
      return
    end
    local msg = errmsg(lask.deserialize, bytes)
    assert.matches("cannot deserialize bytecode made by", msg, 1, true)
    assert.matches(is54 and "LuaJIT 2.1 in Lua 5.4" or
                   "Lua 5.4 in LuaJIT 2.1", msg, 1, true)
  end)

  it("accept plain data made by the other interpreter", function()
    local bytes = bytes_from_other(
      "h:write(l.serialize({1, 2.5, 'x', {y = true}}))")
    if not bytes then
      pending("LASK_OTHER_LUA is not set (run through make test)")
      return
    end
    assert.are.same({1, 2.5, "x", {y = true}}, lask.deserialize(bytes))
  end)

  it("name an integer LuaJIT cannot hold exactly", function()
    if is54 then
      pending("only LuaJIT has no 64-bit integers")
      return
    end
    local bytes = bytes_from_other("h:write(l.serialize(1 << 60))")
    if not bytes then
      pending("LASK_OTHER_LUA is not set (run through make test)")
      return
    end
    assert.matches("cannot deserialize integer 1152921504606846976",
                   errmsg(lask.deserialize, bytes), 1, true)
  end)
end)
