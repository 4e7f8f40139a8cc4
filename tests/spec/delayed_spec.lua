-- Specs for lask.delayed, compute/persist/get, and the sync and threads
-- schedulers. Every behaviour is checked on both schedulers, and results
-- of random graphs must agree between them.
local lask = require "lask"
local core = require "lask.core"
local unpack = table.unpack or unpack
-- Under `make tsan` the TSan runtime is preloaded into every child
-- process too (ASan's runs these specs fine).
local SANITIZED = (os.getenv("LD_PRELOAD") or ""):find("libtsan") ~= nil

local SCHEDULERS = {
  {scheduler = "sync"},
  {scheduler = "threads", num_workers = 2},
  {scheduler = "threads", num_workers = 3, optimize_graph = false},
}

local function label(opts)
  return opts.scheduler .. (opts.num_workers and "/" .. opts.num_workers or "")
    .. (opts.optimize_graph == false and "/unfused" or "")
end

-- Runs Lua 'source' as a script in a child interpreter (LASK_BIN) under
-- 'prefix' (e.g. a timeout) and returns its output, or nil when no child
-- can run here (no LASK_BIN, or under TSan).
local function run_child(source, prefix)
  local bin = os.getenv("LASK_BIN")
  if not bin or SANITIZED then return nil end
  local script = os.tmpname()
  local f = io.open(script, "w")
  f:write(source)
  f:close()
  local p = io.popen(("%s %s %s 2>&1"):format(prefix, bin, script))
  local out = p:read("*a")
  p:close()
  os.remove(script)
  return out
end

local errmsg = require("helpers").errmsg

-- A log file that tasks on any thread append to: counts executions.
local function new_log()
  local path = os.tmpname()
  local log = {path = path}
  function log.read()
    local f = io.open(path, "r")
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    return lines
  end
  function log.count(word)
    local n = 0
    for _, l in ipairs(log.read()) do
      if l == word then n = n + 1 end
    end
    return n
  end
  return log
end

local function logging(path, word, fn)
  return function(...)
    local f = io.open(path, "a")
    f:write(word, "\n")
    f:close()
    return fn(...)
  end
end

local inc = lask.delayed(function(x) return x + 1 end)
local add = lask.delayed(function(a, b) return a + b end)

for _, opts in ipairs(SCHEDULERS) do
  describe("lask.compute with " .. label(opts), function()
    it("computes a small graph", function()
      assert.are.equal(5, add(inc(1), inc(2)):compute(opts))
    end)

    it("computes the Delayed inside a list or map argument", function()
      local list, map = lask.compute({inc(1), inc(2), "x"},
                                     {a = inc(10), b = 5}, opts)
      assert.are.same({2, 3, "x"}, list)
      assert.are.same({a = 11, b = 5}, map)
    end)

    it("computes several values together and passes others through",
       function()
      local a, b, c = lask.compute(inc(1), "plain", add(inc(1), 10), opts)
      assert.are.equal(2, a)
      assert.are.equal("plain", b)
      assert.are.equal(12, c)
    end)

    it("runs the shared task of a diamond once", function()
      local log = new_log()
      local top = lask.delayed(logging(log.path, "top", function() return 1 end))()
      local left = lask.delayed(function(x) return x + 1 end)(top)
      local right = lask.delayed(function(x) return x * 10 end)(top)
      assert.are.equal(12, add(left, right):compute(opts))
      assert.are.equal(1, log.count("top"))
      os.remove(log.path)
    end)

    it("runs only the tasks the outputs need", function()
      local log = new_log()
      local step = function(word)
        return lask.delayed(logging(log.path, word, function(x) return x end))
      end
      local a = step("a")(1)
      local b = step("b")(a)
      local _ = step("unneeded")(a)
      assert.are.equal(1, b:compute(opts))
      assert.are.equal(0, log.count("unneeded"))
      assert.are.equal(1, log.count("a"))
      os.remove(log.path)
    end)

    it("finds Delayed inside nested table arguments", function()
      local f = lask.delayed(function(t)
        return t.x + t.list[1] + t.list[2].y
      end)
      assert.are.equal(2 + 3 + 11, f({x = inc(1), list = {inc(2), {y = inc(10)}}})
                       :compute(opts))
    end)

    it("keeps nil and false results", function()
      local none = lask.delayed(function() return nil end)()
      local no = lask.delayed(function() return false end)()
      local both = lask.delayed(function(a, b) return a == nil and b == false end)
      local v1, v2, v3 = lask.compute(none, no, both(none, no), opts)
      assert.is_nil(v1)
      assert.is_false(v2)
      assert.is_true(v3)
    end)

    it("runs closures with upvalues and required modules in tasks", function()
      local offset = 1000
      local mod = require "fixtures.lask_testmod"
      local f = lask.delayed(function(x)
        return mod.greet(tostring(x + offset)) .. ("!"):rep(2)
      end)
      local g = lask.delayed(function(s)
        return require("fixtures.lask_testmod").greet(s)
      end)
      assert.are.equal("hello, hello, 1001!!", g(f(1)):compute(opts))
    end)

    it("computes a wide graph of 10k tasks", function()
      local parts = {}
      for i = 1, 10000 do parts[i] = inc(i) end
      local vals = lask.compute(parts, opts) -- a list in, a list out
      local s = 0
      for i = 1, 10000 do s = s + vals[i] end
      assert.are.equal(10000 * 10001 / 2 + 10000, s)
      local total = lask.delayed(function(list)
        local t = 0
        for i = 1, #list do t = t + list[i] end
        return t
      end)
      assert.are.equal(10000 * 10001 / 2 + 10000,
                       total(parts):compute(opts))
    end)

    it("computes a deep chain of 10k tasks", function()
      local x = inc(0)
      for _ = 2, 10000 do x = inc(x) end
      assert.are.equal(10000, x:compute(opts))
    end)

    it("raises a task's error naming its key, with the traceback", function()
      local bad = lask.delayed(function(x) error("broken " .. x) end,
                               {name = "faulty"})
      local d = bad(inc(1))
      local msg = errmsg(d.compute, d, opts)
      assert.matches("task '" .. d:key() .. "' raised an error", msg, 1, true)
      assert.matches("broken 2", msg, 1, true)
      assert.matches("stack traceback", msg, 1, true)
      -- ends at the task's function, as on the sync scheduler: not in
      -- the scheduler's C frame
      assert.matches("in function <[^\n]*>$", msg)
      local c = lask.delayed(error)("plain")
      msg = errmsg(c.compute, c, opts)
      -- one frame: error itself (LuaJIT names it [builtin#19])
      assert.matches("stack traceback:\n\t[^\n]*$", msg)
    end)

    it("names an error object that is not a string", function()
      local t = lask.delayed(function() error({code = 1}) end)()
      local msg = errmsg(t.compute, t, opts)
      assert.matches("(error object is a table value)", msg, 1, true)
      local o = lask.delayed(function()
        error(setmetatable({}, {__tostring = function() return "OBJ" end}))
      end)()
      msg = errmsg(o.compute, o, opts)
      assert.matches("raised an error:\nOBJ", msg, 1, true)
      assert.matches("stack traceback", msg, 1, true)
    end)

    it("never runs the dependents of a failed task", function()
      local log = new_log()
      local bad = lask.delayed(function() error("no") end)()
      local after = lask.delayed(logging(log.path, "after", function(x) return x end))
      local ok = inc(1)
      assert.has_error(function()
        lask.compute(after(after(bad)), ok, opts)
      end)
      assert.are.equal(0, log.count("after"))
      os.remove(log.path)
    end)

    it("stays usable after an error", function()
      for _ = 1, 3 do
        assert.has_error(function()
          lask.delayed(function() error("x") end)():compute(opts)
        end)
        assert.are.equal(3, inc(2):compute(opts))
      end
    end)

    it("computes lask.delayed(value) literals", function()
      local t = lask.delayed({1, 2, 3})
      local n = lask.delayed(function(list) return #list end)
      assert.are.equal(3, n(t):compute(opts))
      assert.are.same({1, 2, 3}, t:compute(opts))
    end)

    it("supports operators and get", function()
      local a, b = inc(1), inc(3)
      assert.are.equal(12, (a + 10):compute(opts))
      assert.are.equal(2, (b - a):compute(opts))
      assert.are.equal(8, (a * b):compute(opts))
      assert.are.equal(2, (b / a):compute(opts))
      assert.are.equal(1, (b % 3):compute(opts))
      assert.are.equal(16, (b ^ a):compute(opts))
      assert.are.equal("2x", (a .. "x"):compute(opts))
      assert.are.equal(-2, (-a):compute(opts))
      local t = lask.delayed(function() return {k = "v", 7} end)()
      assert.are.equal("v", t:get("k"):compute(opts))
      assert.are.equal(7, t:get(1):compute(opts))
    end)

    it("unpacks nout results", function()
      local divmod = lask.delayed(function(a, b)
        return math.floor(a / b), a % b
      end, {nout = 2})
      local q, r = divmod(17, 5)
      assert.are.equal(3, q:compute(opts))
      assert.are.equal(2, r:compute(opts))
    end)

    it("persists values that later graphs start from", function()
      local log = new_log()
      local once = lask.delayed(logging(log.path, "once", function() return 5 end))()
      local p = lask.persist(once, opts)
      assert.are.equal(once:key(), p:key())
      assert.are.equal(6, inc(p):compute(opts))
      assert.are.equal(7, add(p, 2):compute(opts))
      assert.are.equal(1, log.count("once"))
      os.remove(log.path)
    end)

    it("runs raw graphs with lask.get", function()
      local g = {
        x = 1,
        y = {function(a) return a + 1 end, "x"},
        z = {function(a, b) return a * b end, "y", 10},
        w = {function(t) return t[1] + t[2] end, {"x", "y"}},
      }
      assert.are.equal(20, lask.get(g, "z", opts))
      assert.are.same({2, 3}, lask.get(g, {"y", "w"}, opts))
    end)
  end)
end

describe("keys", function()
  it("are deterministic for pure calls, upvalues included", function()
    local function maker(k)
      return lask.delayed(function(x) return x + k end, {pure = true})
    end
    local f1, f2 = maker(1), maker(1)
    assert.are.equal(f1(5):key(), f1(5):key())
    assert.are.equal(f1(5):key(), f2(5):key())
    assert.are_not.equal(f1(5):key(), f1(6):key())
    assert.are_not.equal(f1(5):key(), maker(2)(5):key())
    assert.are.equal(f1(inc(1)):key() == f1(inc(1)):key(), false)
    local d = inc(1)
    assert.are.equal(f1(d):key(), f1(d):key())
  end)

  it("do not depend on the order tables were filled in", function()
    local f = lask.delayed(function(t) return t end, {pure = true})
    local a, b = {}, {}
    for i = 1, 50 do a["k" .. i] = i end
    for i = 50, 1, -1 do b["k" .. i] = i end
    assert.are.equal(f(a):key(), f(b):key())
  end)

  it("make equal pure calls one task", function()
    local log = new_log()
    local f = lask.delayed(logging(log.path, "ran", function(x) return x end),
                           {pure = true})
    local a, b = f(7), f(7)
    assert.are_not.equal(a, b)
    assert.are.same({7, 7}, {lask.compute(a, b, {num_workers = 2})})
    assert.are.equal(1, log.count("ran"))
    os.remove(log.path)
  end)

  it("are unique for impure calls and carry the name", function()
    local f = lask.delayed(function(x) return x end, {name = "load"})
    local a, b = f(1), f(1)
    assert.are_not.equal(a:key(), b:key())
    assert.matches("^load%-", a:key())
  end)
end)

describe("lask.compute options and errors", function()
  it("rejects unknown options and bad values", function()
    assert.matches("unknown option 'num_worker'", errmsg(lask.config.set,
      {num_worker = 2}))
    for _, n in ipairs{0, 1.5, 100000} do
      assert.matches("must be a whole number from 1 to 1024",
                     errmsg(lask.config.set, {num_workers = n}))
    end
    assert.matches("unknown option", errmsg(lask.delayed, print, {nouts = 1}))
    -- the method forms know their argument is options: a typo is named
    local d = lask.delayed(function() return 1 end)()
    assert.matches("compute: unknown option 'schedular'", errmsg(d.compute, d,
      {schedular = "sync"}))
    assert.matches("persist: unknown option", errmsg(d.persist, d, {x = 1}))
    local b = require("lask.bag").range(3)
    assert.matches("unknown option 'schedular'", errmsg(b.compute, b,
      {schedular = "sync"}))
    assert.matches("unknown option 'schedular'", errmsg(function()
      return b:sum():compute{schedular = "sync"}
    end))
    assert.are.equal(1, d:compute{})
  end)

  it("takes the scheduler from lask.config.set", function()
    lask.config.set{scheduler = "sync"}
    local caller = lask.delayed(function() return tostring(coroutine.running()) end)
    local main = tostring(coroutine.running())
    assert.are.equal(main, caller():compute())
    lask.config.reset()
  end)

  it("reports a raw graph that names a missing key", function()
    assert.matches("key 'nope' is not in the graph",
                   errmsg(lask.get, {a = 1}, "nope"))
  end)

  it("runs a raw graph that is a chain of 100000 keys", function()
    local g = {a0 = 0}
    local inc1 = function(x) return x + 1 end
    for i = 1, 100000 do g["a" .. i] = {inc1, "a" .. (i - 1)} end
    assert.are.equal(100000, lask.get(g, "a100000", {scheduler = "sync"}))
  end)

  it("leaves a Delayed used in a raw graph as it was", function()
    local d = lask.delayed(function() return 7 end)()
    local key = d:key()
    assert.are.equal(8, lask.get({x = d, y = {function(v) return v + 1 end,
                                              "x"}}, "y"))
    assert.are.equal(key, d:key())
    assert.are.equal(7, d:compute())
    assert.matches("keys must be strings or numbers, got a boolean",
                   errmsg(lask.get, {[true] = 1}, true))
    -- an alias (b = "a") does not rename a's task either
    assert.matches("task 'a' raised", errmsg(lask.get,
      {a = {function() error("boom", 0) end}, b = "a"}, {"a", "b"}))
  end)

  it("reports a cycle in a raw graph", function()
    local g = {a = {function(x) return x end, "b"},
               b = {function(x) return x end, "a"}}
    assert.matches("cycle", errmsg(lask.get, g, "a"))
  end)

  it("reports a task argument that cannot travel, on threads", function()
    local fh = io.tmpfile()
    local f = lask.delayed(function(h) return h end)
    local msg = errmsg(function() return f(fh):compute{num_workers = 2} end)
    assert.matches("cannot serialize a userdata (FILE*)", msg, 1, true)
    fh:close()
  end)

  it("names the task whose result cannot travel, on threads", function()
    local co = lask.delayed(function() return coroutine.create(print) end,
                            {name = "makes_co"})
    local d = co()
    local msg = errmsg(function() return d:compute{num_workers = 2} end)
    assert.matches("the result of task '" .. d:key() .. "' cannot be sent",
                   msg, 1, true)
    assert.matches("cannot serialize a coroutine", msg, 1, true)
    -- consumed on the same executor, it never needs to travel
    local n = lask.delayed(function(c) return type(c) end)
    assert.are.equal("thread", n(co()):compute{num_workers = 1})
  end)

  it("names the task that cannot be decoded in a worker", function()
    package.preload.lask_spec_clientonly = function() return {k = 3} end
    local m = require "lask_spec_clientonly"
    local use = lask.delayed(function(x) return x * m.k end, {name = "usemod"})
    local d = use(2)
    local msg = errmsg(function() return d:compute{num_workers = 2} end)
    assert.matches("task '" .. d:key() .. "' could not be decoded", msg, 1,
                   true)
    assert.matches("lask_spec_clientonly", msg, 1, true)
    package.loaded.lask_spec_clientonly = nil
    package.preload.lask_spec_clientonly = nil
  end)

  it("refuses compute from a progress callback of a running compute",
     function()
    local inner
    local remove = lask.add_callback({
      start = function() end,
      finish = function() end,
      task = function()
        if inner == nil then
          inner = select(2, pcall(inc(1).compute, inc(1), {num_workers = 2}))
        end
      end,
    })
    local slow = lask.delayed(function()
      local t = os.clock()
      while os.clock() - t < 0.3 do end
      return 1
    end)
    assert.are.equal(1, slow():compute{num_workers = 2})
    remove()
    assert.matches("while another threads computation", tostring(inner), 1,
                   true)
  end)

  it("does not leak threads across many computations", function()
    for _ = 1, 20 do
      assert.are.equal(2, inc(1):compute{num_workers = 2})
    end
    for _ = 1, 5 do -- changing the pool size restarts it
      assert.are.equal(2, inc(1):compute{num_workers = 3})
      assert.are.equal(2, inc(1):compute{num_workers = 2})
    end
    local f = io.open("/proc/self/status")
    if not f then
      pending("no /proc to count threads")
      return
    end
    local threads = tonumber(f:read("*a"):match("Threads:%s*(%d+)"))
    f:close()
    assert.is_true(threads <= 4, "threads: " .. tostring(threads))
  end)
end)

describe("memory on the threads scheduler", function()
  it("frees released intermediates on every executor", function()
    if (os.getenv("LD_PRELOAD") or ""):find("libasan") then
      pending("ASan keeps freed memory in quarantine: peaks mean nothing")
      return
    end
    if (os.getenv("LD_PRELOAD") or ""):find("libtsan") then
      -- (the unsanitized Lua 5.4 and LuaJIT runs check it)
      pending("TSan's shadow memory grows with the heap: peaks mean nothing")
      return
    end
    local f = io.open("/proc/self/status")
    if not f then
      pending("no /proc to read the peak memory")
      return
    end
    f:close()
    local function hwm()
      local s = io.open("/proc/self/status"):read("*a")
      return tonumber(s:match("VmHWM:%s*(%d+)")) / 1024
    end
    local make = lask.delayed(function(i)
      local t = {}
      for j = 1, 2e5 do t[j] = j + i + 0.5 end
      return t
    end)
    local comb = lask.delayed(function(a, b) return #a + #b end)
    local outs = {}
    for i = 1, 40 do outs[i] = comb(make(2 * i), make(2 * i + 1)) end
    local total = lask.delayed(function(t)
      local s = 0
      for _, v in ipairs(t) do s = s + v end
      return s
    end)(outs)
    local before = hwm()
    assert.are.equal(40 * 4e5, total:compute{num_workers = 2})
    -- 80 tables of 2e5 numbers are ~260 MB if nothing were freed; a few
    -- live at a time are ~30 MB.
    assert.is_true(hwm() - before < 120, ("peak grew by %.0f MB"):format(
                   hwm() - before))
  end)
end)

describe("schedulers agree", function()
  it("on random graphs", function()
    math.randomseed(1234)
    local function num(x) -- tables count by their first number
      while type(x) == "table" do x = x[1] end
      return x
    end
    local ops = {
      function(a, b) return num(a) + num(b) end,
      function(a, b) return num(a) * 2 - num(b) end,
      function(a) return -num(a) end,
      function(a, b) return {a, b} end,
      function(t) return type(t) == "table" and #t or t end,
    }
    local fs = {}
    for i, f in ipairs(ops) do fs[i] = lask.delayed(f) end
    for _ = 1, 20 do
      local nodes = {}
      for i = 1, math.random(5, 60) do
        local k = math.random(1, #fs)
        local a = #nodes > 0 and nodes[math.random(1, #nodes)] or i
        local b = #nodes > 0 and nodes[math.random(1, #nodes)] or i * 2
        if k == 5 then
          nodes[i] = fs[5](a)
        elseif k == 3 then
          nodes[i] = fs[3](math.random() < 0.5 and a or 7)
        else
          nodes[i] = fs[k](a, b)
        end
      end
      local last = nodes[#nodes]
      local mid = nodes[math.ceil(#nodes / 2)]
      local s1, s2 = lask.compute(last, mid, {scheduler = "sync"})
      local t1, t2 = lask.compute(last, mid, {num_workers = 2})
      local u1, u2 = lask.compute(last, mid, {num_workers = 3,
                                              optimize_graph = false})
      assert.are.same(s1, t1)
      assert.are.same(s2, t2)
      assert.are.same(s1, u1)
      assert.are.same(s2, u2)
    end
  end)
end)

describe("registered metatables", function()
  it("reach a worker before the module that registers them", function()
    local dir = os.tmpname()
    os.remove(dir)
    core.mkdirs(dir)
    local f = assert(io.open(dir .. "/lask_spec_mtmod.lua", "w"))
    f:write('local M = {mt = {}}\n',
            'require("lask").register_metatable("lask_spec_mtmod.P", M.mt)\n',
            'function M.new(x) return setmetatable({x = x}, M.mt) end\n',
            'return M\n')
    f:close()
    local path = package.path
    package.path = dir .. "/?.lua;" .. path
    local m = require "lask_spec_mtmod"
    -- the argument is decoded in the worker before anything requires the
    -- module there: the worker requires it to find the metatable
    local ok, got = pcall(function()
      return lask.delayed(function(q) return q.x end)(m.new(7))
        :compute{scheduler = "threads"}
    end)
    package.path = path
    os.execute("rm -rf '" .. dir .. "'")
    assert.is_true(ok, got)
    assert.are.equal(7, got)
  end)
end)

describe("lask.visualize", function()
  it("writes Graphviz output", function()
    local path = require("helpers").tmp_path(".dot")
    lask.visualize(add(inc(1), inc(2)), path)
    local text = io.open(path):read("*a")
    os.remove(path)
    assert.matches("digraph lask", text, 1, true)
    assert.matches("->", text, 1, true)
  end)

  it("draws collections and names what it cannot draw", function()
    local path = require("helpers").tmp_path(".dot")
    local bag = require "lask.bag"
    lask.visualize(bag.range(3, {npartitions = 2}):sum(), path)
    local text = io.open(path):read("*a")
    os.remove(path)
    assert.matches("->", text, 1, true) -- the reduction's edges
    assert.matches("element 2 is a number", errmsg(lask.visualize,
      {inc(1), 5}, path))
  end)

  it("passes file names to the shell quoted: no command runs", function()
    if SANITIZED then
      pending("dot fails with the TSan runtime preloaded")
      return
    end
    local marker = os.tmpname()
    os.remove(marker)
    local name = require("helpers").tmp_path() .. "$(touch " .. marker .. ")'`touch " ..
                 marker .. "`'.svg"
    pcall(lask.visualize, add(inc(1), inc(2)), name)
    assert.is_nil(io.open(marker), "a command in the file name ran")
    os.remove(name)
  end)

  it("renders svg with dot, or says how to get it", function()
    if SANITIZED then
      pending("dot fails with the TSan runtime preloaded")
      return
    end
    local path = require("helpers").tmp_path(".svg")
    local ok, err = pcall(lask.visualize, add(inc(1), inc(2)), path)
    if ok then
      assert.matches("<svg", io.open(path):read("*a"), 1, true)
      os.remove(path)
    else
      assert.matches("install Debian's graphviz package", err, 1, true)
    end
  end)
end)

describe("lask.visualize without Graphviz", function()
  it("says how to install it", function()
    local bin = os.getenv("LASK_BIN")
    if not bin or SANITIZED then
      pending("needs LASK_BIN, outside TSan (run through make test)")
      return
    end
    local script = "local l = require 'lask'; " ..
      "local d = l.delayed(function() end)(); " ..
      "local t = os.tmpname(); os.remove(t); " ..
      "local ok, e = pcall(l.visualize, d, t .. '.svg'); " ..
      "print(ok, e)"
    local p = io.popen(("env PATH=/nonexistent %s -e %q 2>&1"):format(bin,
                                                                    script))
    local out = p:read("*a")
    p:close()
    assert.matches("false", out, 1, true)
    assert.matches("Graphviz 'dot' was not found: install Debian's " ..
                   "graphviz package", out, 1, true)
  end)
end)

describe("diagnostics", function()
  local diag = require "lask.diagnostics"

  it("draws a progress bar on a terminal and nothing elsewhere", function()
    local path = os.tmpname()
    local f = io.open(path, "w")
    local bar = diag.ProgressBar{out = f, force = true}:register()
    local parts = {}
    for i = 1, 50 do parts[i] = inc(i) end
    lask.compute(unpack(parts, 1, 50))
    lask.compute(parts[1], {scheduler = "sync"})
    bar:unregister()
    f:close()
    local text = io.open(path):read("*a")
    assert.matches("100%% |", text)
    assert.matches("50/50 tasks", text, 1, true)
    f = io.open(path, "w")
    local quiet = diag.ProgressBar{out = f}:register() -- a file: no TTY
    lask.compute(parts[1])
    quiet:unregister()
    f:close()
    assert.are.equal("", io.open(path):read("*a"))
    os.remove(path)
  end)

  it("profiles every task with its executor", function()
    local prof = diag.Profiler():register()
    local parts = {}
    for i = 1, 20 do parts[i] = inc(i) end
    lask.compute(unpack(parts, 1, 20))
    prof:unregister()
    assert.are.equal(20, #prof.results)
    for _, r in ipairs(prof.results) do
      assert.is_true(r.finish >= r.start)
      assert.is_true(r.executor >= 1)
      assert.matches("%-", r.key)
    end
  end)
end)

describe("a failing task", function()
  it("cancels the run without waiting for a never-ending sibling", function()
    local out = run_child([[
local lask = require "lask"
local forever = lask.delayed(function()
  if jit then jit.off() end
  local s = 0
  while true do s = s + 1 end
end)
local fail = lask.delayed(function()
  local t = os.clock()
  while os.clock() - t < 0.2 do end
  error("boom")
end)
print(pcall(lask.compute, {forever(), fail()}, {num_workers = 2}))
]], "timeout -k 5 60")
    if not out then
      pending("needs LASK_BIN, outside TSan (run through make test)")
      return
    end
    assert.matches("false%s+lask: task '.-' raised an error", out)
    assert.matches("boom", out, 1, true)
  end)
end)

describe("Ctrl-C during compute", function()
  it("cancels running and queued tasks, then the pool works again",
     function()
    if SANITIZED then
      pending("ThreadSanitizer defers signals until a thread calls libc, " ..
              "so a pure Lua loop cannot be interrupted under it")
      return
    end
    local t0 = core.now()
    local out = run_child([[
local lask = require "lask"
local spin = lask.delayed(function()
  if jit then jit.off() end -- LuaJIT runs no hooks in compiled loops
  local s = 0
  while true do s = s + 1 end
end)
io.stdout:write("started\n") io.stdout:flush()
local ok, err = pcall(lask.compute, {spin(), spin(), spin()},
                      {num_workers = 2})
print(ok, err)
print("after", lask.delayed(function() return 42 end)():compute())
]], "timeout -k 20 -s INT 2")
    if not out then
      pending("LASK_BIN is not set (run through make test)")
      return
    end
    local elapsed = core.now() - t0
    assert.matches("false%s+lask: computation interrupted", out)
    assert.matches("after%s+42", out)
    assert.is_true(elapsed < 15, "took " .. elapsed .. " s")
  end)
end)
