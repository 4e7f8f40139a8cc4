--- Lazy task graphs: `lask.delayed` and the Delayed value.
-- A Delayed stands for the result of one task. It is a table with a fixed
-- layout (read by the C graph builder, bindings/graph.c):
--   [1] key      string, unique in the graph (deterministic for pure calls),
--                or, for impure calls, a number: the key is then made on
--                demand as name .. "-" .. session .. number (M.key), so
--                that building a graph interns no strings
--   [7] session  the session prefix of a numeric key
--   [2] fn       the function to call, or nil for a literal
--   [3] args     {n = count, ...} for a call; {value} for a literal
--   [4] deps     list of the Delayed found in args (in first-seen order)
--   [5] name     the key prefix, for diagnostics
--   [6] nested   true when some Delayed is inside a table argument
-- Dependencies: `lask.core`.
-- @module lask.delayed
local core = require "lask.core"
local unpack = table.unpack or unpack -- LuaJIT has only the global

local M = {}

local Delayed = {}           -- metatable of every Delayed
local methods = {}
Delayed.__index = methods
Delayed.__name = "lask.Delayed"
M.Delayed = Delayed

local DelayedFunction = {}   -- metatable of lask.delayed(fn)
DelayedFunction.__index = DelayedFunction
DelayedFunction.__name = "lask.DelayedFunction"

local function is_delayed(v)
  return getmetatable(v) == Delayed
end
M.is_delayed = is_delayed

-- Impure keys: a per-process prefix and a counter.
local counter = 0
local session = core.hash(tostring({}) .. tostring(os.time()) ..
                          tostring(os.clock())):sub(1, 6)

local function fresh_key()
  counter = counter + 1
  return counter
end
M.session = session

--- The key of Delayed `d` as a string (made and kept on first use).
local function key_of(d)
  local k = d[1]
  if type(k) == "number" then
    k = d[5] .. "-" .. session .. ("%d"):format(k)
    d[1] = k
  end
  return k
end
M.key = key_of

-- No dependencies: one shared, read-only list.
local EMPTY = setmetatable({}, {__newindex = function()
  error("lask: internal: the empty dependency list is read-only", 2)
end})

-- Adds Delayed 'd' to 'deps' once. Lists stay short, so a scan is cheap;
-- past 8 entries 'set' (d -> true) keeps wide fan-ins linear.
local function add_dep(deps, set, d)
  if set then
    if set[d] then return set end
    set[d] = true
    deps[#deps + 1] = d
    return set
  end
  local n = #deps
  for i = 1, n do
    if deps[i] == d then return nil end
  end
  deps[n + 1] = d
  if n + 1 > 8 then
    set = {}
    for i = 1, n + 1 do set[deps[i]] = true end
  end
  return set
end

-- Looks for Delayed inside plain table 't' (each table once).
local function scan(t, deps, set, seen)
  seen[t] = true
  for k, v in next, t do
    if type(v) == "table" then
      local mt = getmetatable(v)
      if mt == Delayed then
        set = add_dep(deps, set, v)
        deps.nested = true
      elseif mt == nil and not seen[v] then
        set = scan(v, deps, set, seen)
      end
    end
    if getmetatable(k) == Delayed then
      error("lask.delayed: a Delayed cannot be a table key", 0)
    end
  end
  return set
end

-- Returns the list of Delayed found in args (EMPTY when none) and whether
-- one was nested inside a table argument.
local function find_deps(args)
  local deps, set
  for i = 1, args.n do
    local a = args[i]
    if type(a) == "table" then
      local mt = getmetatable(a)
      if mt == Delayed then
        deps = deps or {}
        set = add_dep(deps, set, a)
      elseif mt == nil then
        deps = deps or {}
        set = scan(a, deps, set, {})
      end
    end
  end
  if deps == nil or #deps == 0 then return EMPTY, false end
  local nested = deps.nested or false
  deps.nested = nil
  return deps, nested
end

local function function_name(fn)
  local info = debug.getinfo(fn, "S")
  if info.what == "C" then return "call" end
  local src = info.short_src:match("([^/\\]+)%.lua$") or "fn"
  return ("%s:%d"):format(src, info.linedefined)
end

-- The hash of a function's encoding (bytecode and upvalue values), once
-- per function object: pure keys hash it with the arguments. An upvalue
-- changed after the first pure call is not seen (as in Dask, which
-- tokenizes a function once).
local fn_hashes = setmetatable({}, {__mode = "k"})
local function function_hash(fn)
  if fn == nil then return "" end
  local h = fn_hashes[fn]
  if h == nil then
    h = core.task_hash(fn, {n = 0}, Delayed, {})
    fn_hashes[fn] = h
  end
  return h
end

-- Makes a Delayed for fn(args...). opts: pure, name.
local function make_call(fn, args, name, pure)
  local deps, nested = find_deps(args)
  local key
  if pure then
    local depkeys = {}
    for i = 1, #deps do depkeys[i] = key_of(deps[i]) end
    key = name .. "-" .. core.task_hash(function_hash(fn), args, Delayed,
                                        depkeys)
  else
    key = fresh_key()
  end
  return setmetatable({key, fn, args, deps, name, nested}, Delayed)
end
M.make_call = make_call

--- Wraps a function (calls build tasks) or a value (a literal task).
-- @param fn a function, or any value
-- @param[opt] opts `{pure = bool, nout = n, name = "prefix"}`
-- @return a DelayedFunction for a function, a Delayed for a value
function M.delayed(fn, opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("lask.delayed: argument 2 must be an options table", 2)
  end
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "pure" and k ~= "nout" and k ~= "name" then
      error(("lask.delayed: unknown option '%s'"):format(tostring(k)), 2)
    end
  end
  if opts.nout ~= nil and (type(opts.nout) ~= "number" or opts.nout < 0 or
                           opts.nout % 1 ~= 0) then
    error("lask.delayed: option 'nout' must be a non-negative integer", 2)
  end
  if opts.name ~= nil and type(opts.name) ~= "string" then
    error("lask.delayed: option 'name' must be a string", 2)
  end
  if is_delayed(fn) then return fn end
  local callable = type(fn) == "function" or
                   (getmetatable(fn) and getmetatable(fn).__call)
  if not callable then
    local name = opts.name or "literal"
    local k = opts.pure and name .. "-" ..
              core.task_hash(nil, {n = 1, fn}, Delayed, {}) or fresh_key()
    return setmetatable({k, nil, {fn}, find_deps({n = 1, fn}), name},
                        Delayed)
  end
  return setmetatable({fn = fn, pure = opts.pure and true or false,
                       nout = opts.nout, name = opts.name or
                       (type(fn) == "function" and function_name(fn) or "call")},
                      DelayedFunction)
end

local function getitem(x, k) return x[k] end
M.getitem = getitem

DelayedFunction.__call = function(self, ...)
  local args = {n = select("#", ...), ...}
  if self.nout == nil then
    return make_call(self.fn, args, self.name, self.pure)
  end
  -- nout: the task returns a packed table; each output is a getitem task.
  -- One wrapper per DelayedFunction, so the graph encodes it once.
  local packer = self.packer
  if packer == nil then
    local fn, call_packed = self.fn, M.call_packed
    packer = function(...) return call_packed(fn, ...) end
    self.packer = packer
  end
  local whole = make_call(packer, args, self.name, self.pure)
  local outs = {}
  for i = 1, self.nout do
    outs[i] = make_call(getitem, {n = 2, whole, i}, self.name .. "-get", true)
  end
  return unpack(outs, 1, self.nout)
end

--- Calls fn(...) and packs all its results (the task behind `nout`).
function M.call_packed(fn, ...)
  return {n = select("#", ...), fn(...)}
end

--- This Delayed's key.
function methods:key()
  return key_of(self)
end

--- A Delayed for self[k].
function methods:get(k)
  return make_call(getitem, {n = 2, self, k}, "getitem", true)
end

--- Computes this Delayed (see lask.compute for the options).
function methods:compute(opts)
  if opts == nil then return (require("lask").compute(self)) end
  require("lask.config").check(opts, "compute")
  if next(opts) == nil then return (require("lask").compute(self)) end
  return (require("lask").compute(self, opts))
end

--- The same as lask.persist(self, opts).
function methods:persist(opts)
  if opts == nil then return (require("lask").persist(self)) end
  require("lask.config").check(opts, "persist")
  if next(opts) == nil then return (require("lask").persist(self)) end
  return (require("lask").persist(self, opts))
end

function Delayed.__tostring(self)
  return ("Delayed('%s')"):format(key_of(self))
end

-- Operators build tasks that call lask.delayed's own functions, which
-- travel to executors as module references.
local ops = {}
M.ops = ops
function ops.add(a, b) return a + b end
function ops.sub(a, b) return a - b end
function ops.mul(a, b) return a * b end
function ops.div(a, b) return a / b end
function ops.mod(a, b) return a % b end
function ops.pow(a, b) return a ^ b end
function ops.concat(a, b) return a .. b end
function ops.unm(a) return -a end

for name, mm in pairs({add = "__add", sub = "__sub", mul = "__mul",
                       div = "__div", mod = "__mod", pow = "__pow",
                       concat = "__concat"}) do
  local f = ops[name]
  Delayed[mm] = function(a, b)
    return make_call(f, {n = 2, a, b}, name, true)
  end
end
Delayed.__unm = function(a)
  return make_call(ops.unm, {n = 1, a}, "unm", true)
end

return M
