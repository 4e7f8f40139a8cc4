-- Specs for lask.bag_inline: on Lua 5.4 the small functions of a bag
-- pipeline (no upvalues, body `return <expression>`) are inlined in its
-- fused loop when a partition is long (bag.lua's LONG, 4096 elements).
-- Results and error messages must be those of the calls.
local bag = require "lask.bag"
local lask = require "lask"
local inline = require "lask.bag_inline"

local helpers = require("helpers")
local errmsg = helpers.errmsg

local N = 10000 -- two partitions of 5000: long enough to inline
local LUAJIT = "LuaJIT compiles the calls itself: inlining is for Lua 5.4"

-- Functions of the kinds the specs inline (each alone on its line).
local square = function(x) return x * x end
local even = function(x) return x % 2 == 0 end
local big = function(v) return v > 50000000 end
local uses_acc = function(acc) return acc + 1 end -- a name the loop uses
local second_x = function(a, x) return a * 10 + (x or 0) end -- x second
local affine = function(v, m, c) return v * m + c end
local seven = function() return 7 end
local function named(k)
  return k - 1
end
local multi = function(x)
  return x
    + 1
end
local with_end = function(s) return s .. " end " .. [[end]] end

-- Reviewed cases: a closure keeping its parameter, parameters named like
-- globals the loop calls, the same expression on two lines, division by
-- zero, a comment after the expression, two texts on one line that differ
-- only in names.
local keeps_x = function(x) return function() return x end end
local call_it = function(g) return g() end
local as_tostring = function(tostring) return {tostring} end
local as_error = function(error) return {error} end
local as_env = function(_ENV) return {_ENV} end
local key_a = function(x) return x.k end
local key_b = function(x) return x.k end
local idiv = load("return function(x)\n  return x // 0\nend") -- no // in LuaJIT
idiv = idiv and idiv()
local noted = function(x) return x.k --[[ a note
  ]] end
local name_a, name_b = function(a) return a.k end, function(b) return b.k end

-- Not inlined, for the same reasons each time.
local up = 3
local with_upvalue = function(x) return x + up end
local with_global = function(x) return math.floor(x) end
local two_statements = function(x) local y = x return y end
local two_values = function(x) return x, 1 end
local varargs = function(...) return ... end

describe("lask.bag_inline", function()
  it("inlines what it can and nothing else", function()
    if not inline.enabled then return pending(LUAJIT) end
    for _, f in ipairs{square, even, big, uses_acc, second_x, affine, seven,
                       named, multi, with_end} do
      assert.is_table(inline.info(f), debug.getinfo(f, "S").linedefined)
    end
    local i = inline.info(multi)
    assert.are.same({"x"}, i.params)
    assert.are.equal(debug.getinfo(multi, "S").linedefined + 1, i.line)
    assert.are.equal("x\n    + 1", i.expr:match("^%s*(.-)%s*$"))
    for _, f in ipairs{with_upvalue, with_global, two_statements, two_values,
                       varargs, string.upper,
                       load(string.dump(square, true))} do
      assert.is_nil(inline.info(f))
    end
    -- two on one line: each finds its own text
    local p, q = function(x) return x + 1 end, function(x) return x + 2 end
    assert.are.equal("x + 1", inline.info(p).expr)
    assert.are.equal("x + 2", inline.info(q).expr)
    -- a function loaded from a string is read from that string
    local g = load("return function(x)\n  return x - 2\nend")()
    assert.are.equal("x - 2", inline.info(g).expr:match("^%s*(.-)%s*$"))
  end)

  it("leaves a function whose file changed since it was loaded", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("return function(x) return x * 2 end\n")
    f:close()
    local double = dofile(path)
    f = assert(io.open(path, "w"))
    f:write("return function(x) return x * 3 end\n")
    f:close()
    assert.is_nil(inline.info(double))
    lask.config.set{scheduler = "sync"}
    local s = bag.range(N, {npartitions = 2}):map(double):sum():compute()
    lask.config.reset()
    os.remove(path)
    assert.are.equal(N * (N + 1), s)
  end)
end)

for _, sched in ipairs({"sync", "threads"}) do
  describe("inlined bag pipelines on " .. sched, function()
    setup(function() lask.config.set{scheduler = sched} end)
    teardown(function() lask.config.reset() end)

    local function range() return bag.range(N, {npartitions = 2}) end

    it("give the calls' results in every sink", function()
      local want_sum, want_count, want_list = 0, 0, {}
      local freq = {}
      for x = 1, N do
        local v = x * x
        if v % 2 == 0 then
          want_sum = want_sum + v
          want_count = want_count + 1
          want_list[#want_list + 1] = v
          freq[v % 7] = (freq[v % 7] or 0) + 1
        end
      end
      local b = range():map(square):filter(even)
      assert.are.equal(want_sum, b:sum():compute())
      assert.are.equal(want_count, b:count():compute())
      assert.are.same(want_list, b:compute())
      local got = {}
      for _, kv in ipairs(b:map(function(v) return v % 7 end)
                           :frequencies():compute()) do
        got[kv[1]] = kv[2]
      end
      assert.are.same(freq, got)
      -- remove, and list partitions (from_sequence) as well as ranges
      local list = {}
      for x = 1, N do list[x] = x end
      local kept = bag.from_sequence(list, {npartitions = 2})
        :remove(even):map(square):compute()
      local want = {}
      for x = 1, N, 2 do want[#want + 1] = x * x end
      assert.are.same(want, kept)
      local nbig = 0
      for _, v in ipairs(want) do if v > 50000000 then nbig = nbig + 1 end end
      assert.are.equal(nbig, bag.from_sequence(list, {npartitions = 2})
        :remove(even):map(square):filter(big):count():compute())
    end)

    it("bind parameters as the calls would, whatever their names", function()
      local want = {}
      for x = 1, N do
        local v = x + 1              -- uses_acc
        v = v * 10 + 5               -- second_x with 5
        v = v * 3 + 4                -- affine with 3, 4
        v = v - 1                    -- named
        v = v + 1                    -- multi
        want[x] = v + 7              -- seven, added
      end
      local got = range():map(uses_acc):map(second_x, 5):map(affine, 3, 4)
        :map(named):map(multi):map(function(v) return v end):compute()
      local sevens = range():map(seven):compute()
      for x = 1, N do got[x] = got[x] + sevens[x] end
      assert.are.same(want, got)
      assert.are.equal(N * (N + 1) / 2 + N,
                       range():map(uses_acc):sum():compute())
      -- a missing argument is nil, as in a call
      local partial = range():map(second_x):compute()
      for x = 1, N, 997 do assert.are.equal(x * 10, partial[x]) end
      -- functions that are not inlined still run, called
      assert.are.same(range():map(function(x) return x + 3 end):compute(),
                      range():map(with_upvalue):compute())
      assert.are.equal(range():map(math.floor):sum():compute(),
                       range():map(with_global):sum():compute())
      assert.are.equal(N, range():map(two_values):count():compute())
      local strs = {}
      for x = 1, N do strs[x] = tostring(x) end
      local ends = bag.from_sequence(strs, {npartitions = 2})
        :map(with_end):compute()
      assert.are.equal("17 end end", ends[17])
    end)

    it("keep what the reviews found", function()
      -- a closure made by an inlined expression keeps its own parameter
      assert.are.equal(N * (N + 1) / 2,
                       range():map(keeps_x):map(call_it):sum():compute())
      -- parameters named like the globals the loop's own code calls
      for _, f in ipairs{as_tostring, as_error, as_env} do
        local msg = errmsg(function()
          return range():map(f):pluck("k"):compute()
        end)
        assert.is_truthy(msg:find("bag.pluck: element has no key 'k'", 1,
                                  true), msg)
      end
      -- the same expression on two lines: each error at its own line
      for _, f in ipairs{key_a, key_b, key_a} do
        local _, want = pcall(f, 1)
        local msg = errmsg(function() return range():map(f):sum():compute() end)
        assert.is_truthy(msg:find(want, 1, true), msg)
      end
      -- two functions on one line differing only in names: the right one
      local want, msg
      for _, f in ipairs{name_b, name_a} do
        _, want = pcall(f, 1)
        msg = errmsg(function() return range():map(f):sum():compute() end)
        assert.is_truthy(msg:find(want, 1, true), msg)
      end
      assert.is_truthy(msg:find("'a'", 1, true))
      -- an integer division by zero is placed where the call places it, and
      -- a comment after the expression does not move an error's line
      for _, f in ipairs{noted, idiv} do -- (idiv is nil on LuaJIT)
        _, want = pcall(f, 1)
        msg = errmsg(function() return range():map(f):sum():compute() end)
        assert.is_truthy(msg:find(want, 1, true), msg)
      end
      -- one traceback, from where an error was raised: a called step's
      -- frame is kept
      local raises = function(x)
        if x > 5 then error("too big", 0) end
        return x
      end
      local line = debug.getinfo(raises, "S").linedefined + 1
      msg = errmsg(function()
        return range():map(square):map(raises):sum():compute()
      end)
      assert.is_truthy(msg:find("bag_inline_spec.lua:" .. line .. ":", 1, true),
                       msg)
      local _, n = msg:gsub("stack traceback:", "")
      assert.are.equal(1, n, msg)
    end)

    it("report an inlined expression's error at the user's line", function()
      local bad = function(x) return x.y end
      local _, want = pcall(bad, 1) -- what the call says, with its place
      assert.is_truthy(want:find("bag_inline_spec.lua:" ..
                                 debug.getinfo(bad, "S").linedefined, 1, true))
      -- inlined (long partitions) and called (short ones) say the same
      for _, n in ipairs{N, 10} do
        local msg = errmsg(function()
          return bag.range(n, {npartitions = 2}):map(square):map(bad)
            :sum():compute()
        end)
        assert.is_truthy(msg:find(want, 1, true), msg)
      end
      -- an error from a called step of an inlined pipeline is unchanged
      local called = function(x)
        if x > 3 then error("stop at " .. tostring(x), 0) end
        return x
      end
      local msg = errmsg(function()
        return range():map(square):map(called):sum():compute()
      end)
      assert.is_truthy(msg:find("\nstop at %d+\n"), msg)
      -- and the loop's own errors (a sum of strings) name the method
      msg = errmsg(function()
        return range():map(tostring):map(function(t) return t .. "a" end)
          :sum():compute()
      end)
      assert.is_truthy(msg:find("\nbag.sum: attempt to ", 1, true), msg)
      assert.is_truthy(msg:find("string", 1, true), msg)
    end)
  end)
end
