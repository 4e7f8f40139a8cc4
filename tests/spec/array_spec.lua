-- Specs for lask.ndarray (eager in-memory arrays) and lask.array (chunked
-- lazy arrays on the task engine).
--
-- Results are checked two ways:
--   * against NumPy, when /usr/bin/python3 can import numpy: lask writes the
--     inputs as .npy files into a temporary directory, one python3 run
--     evaluates every NumPy expression and np.save's the results, and each
--     test loads them with lask.ndarray.load and compares (exact for
--     integers and booleans, relative 1e-12 for float64 and 1e-6 for
--     float32, NaN equal to NaN, dtypes equal). Without NumPy these tests
--     are pending, with the reason;
--   * against a naive Lua reference (loops over flat tables), always.
-- Documented deviations from NumPy (header of lask/ndarray.lua): `/` and
-- `^` always give floats, arithmetic on two bools gives int64, and a Lua
-- number beside an array is a weak scalar (NEP 50); those are tested as
-- documented. Axes and indexes are 1-based; argmin/argmax give 1-based
-- positions.
-- Chunked arrays run on the threads scheduler unless a test says otherwise;
-- the reference-checked chunked specs run on both "sync" and "threads".
local lask = require "lask"
local la = require "lask.array"
local N = require "lask.ndarray"
local errmsg = require("helpers").errmsg

local unpack = table.unpack or unpack
local NAN = 0 / 0
local INF = math.huge

----------------------------------------------------------------------------
-- Environment: shell, temporary files, NumPy
----------------------------------------------------------------------------

local PY = "/usr/bin/python3"

local function sh_ok(cmd)
  local a, _, c = os.execute(cmd)
  if type(a) == "number" then return a == 0 end -- LuaJIT without 5.2 compat
  return a == true and (c == nil or c == 0)
end

local function quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- ARRAY_SPEC_NO_NUMPY=1 runs the spec as on a machine without NumPy.
local HAVE_NUMPY = not os.getenv("ARRAY_SPEC_NO_NUMPY") and
  sh_ok(PY .. " -c 'import numpy' >/dev/null 2>&1")

-- One temporary directory for the whole file, removed at the end.
local TMP = os.tmpname()
os.remove(TMP)
assert(sh_ok("mkdir -p " .. quote(TMP)), "cannot make a temporary directory")
local tmp_count = 0
local function tmpfile(name)
  tmp_count = tmp_count + 1
  return ("%s/t%d_%s"):format(TMP, tmp_count, name or "x.npy")
end

----------------------------------------------------------------------------
-- Deterministic inputs (same sequence on Lua 5.4 and LuaJIT)
----------------------------------------------------------------------------

-- Park-Miller: every product stays below 2^53, exact in doubles.
local function Rng(seed)
  local x = seed % 2147483646 + 1
  local r = {}
  function r.next()
    x = (x * 16807) % 2147483647
    return x / 2147483647
  end
  function r.uniform(lo, hi) return lo + (hi - lo) * r.next() end
  function r.int(lo, hi) return lo + math.floor(r.next() * (hi - lo + 1)) end
  return r
end

local function prod(shape)
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  return n
end

-- An ndarray of 'shape' and 'dtype' from a flat list in C order.
local function make(flat, shape, dtype)
  local a = N.from_table(flat, dtype)
  return a:reshape(shape)
end

-- Random arrays: kind "float" (opts.lo, opts.hi, opts.nan = fraction of
-- NaNs), "int" (opts.lo..opts.hi, or opts.values to pick from), "bool".
local function rand(seed, shape, dtype, opts)
  opts = opts or {}
  local r = Rng(seed)
  local flat = {}
  for k = 1, prod(shape) do
    local v
    if dtype == "bool" then
      v = r.next() < (opts.p or 0.5)
    elseif opts.values then
      v = opts.values[r.int(1, #opts.values)]
    elseif dtype == "float64" or dtype == "float32" then
      v = r.uniform(opts.lo or -3, opts.hi or 3)
      if opts.nan and r.next() < opts.nan then v = NAN end
    else
      v = r.int(opts.lo or -9, opts.hi or 9)
    end
    flat[k] = v
  end
  if #flat == 0 then return N.zeros(shape, dtype) end
  return make(flat, shape, dtype)
end

-- A chunked copy of ndarray x (through the public constructors only).
local function lz(x, chunks)
  if x.size == 0 then
    return la.zeros(x.shape, {dtype = x.dtype, chunks = chunks})
  end
  return la.from_table(x:totable(), {dtype = x.dtype, chunks = chunks})
end

----------------------------------------------------------------------------
-- Comparison
----------------------------------------------------------------------------

local function shape_str(s) return "{" .. table.concat(s, ", ") .. "}" end

local function same_shape(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

local function as_num(v)
  if v == true then return 1 elseif v == false then return 0 end
  return v
end

-- shape, flat values and dtype of an ndarray, a reference array, a number
-- or a boolean.
local function parts(x)
  if N.is_ndarray(x) then return x.shape, x:flat(), x.dtype end
  if type(x) == "number" or type(x) == "boolean" then return {}, {x}, nil end
  if type(x) == "table" and x.data and x.shape then
    return x.shape, x.data, x.dtype
  end
  return nil
end

local function close(g, w, rtol, scale)
  if type(g) ~= type(w) then g, w = as_num(g), as_num(w) end
  if g == w then return true end
  if type(g) ~= "number" then return false end
  if g ~= g then return w ~= w end
  if w ~= w then return false end
  if rtol == 0 then return false end
  if math.abs(g) == INF or math.abs(w) == INF then return false end
  return math.abs(g - w) <= rtol * math.max(math.abs(w), scale)
end

local function fmt(v)
  if type(v) == "number" then return ("%.17g"):format(v) end
  return tostring(v)
end

--- compare(got, want [, opts]) -> ok, message. opts.dtype: the expected
-- dtype (default: want's, if it has one; false: not checked); opts.rtol;
-- opts.number: got must be a Lua number (a full reduction).
local function compare(got, want, opts)
  opts = opts or {}
  local gs, gv, gd = parts(got)
  if not gs then
    return false, "expected an ndarray or a number, got " .. type(got) ..
      " " .. tostring(got)
  end
  if opts.number and type(got) ~= "number" and type(got) ~= "boolean" then
    return false, "expected a Lua number (or boolean), got " .. tostring(got)
  end
  local ws, wv, wd = parts(want)
  if not same_shape(gs, ws) then
    return false, ("shape %s, expected %s"):format(shape_str(gs), shape_str(ws))
  end
  local edt = opts.dtype
  if edt == nil then edt = wd end
  if edt and gd and gd ~= edt then
    return false, ("dtype %s, expected %s"):format(gd, edt)
  end
  local rtol = opts.rtol
  if not rtol then
    if gd == "float32" or wd == "float32" or edt == "float32" then rtol = 1e-6
    elseif gd == "float64" or wd == "float64" or edt == "float64" then
      rtol = 1e-12
    elseif gd or wd or edt then rtol = 0 -- an integer or bool dtype: exact
    else rtol = 1e-12 end                -- plain numbers
  end
  local scale = 0
  for _, v in ipairs(wv) do
    v = as_num(v)
    if v == v and math.abs(v) ~= INF then
      scale = math.max(scale, math.abs(v))
    end
  end
  for k = 1, #wv do
    if not close(gv[k], wv[k], rtol, scale) then
      return false, ("at flat position %d: got %s, expected %s (shape %s)")
        :format(k, fmt(gv[k]), fmt(wv[k]), shape_str(ws))
    end
  end
  return true
end

local function assert_close(got, want, opts)
  local ok, msg = compare(got, want, opts)
  assert.is_true(ok, msg)
end

local function report(name, fails, total)
  if #fails == 0 then return end
  local shown = {}
  for i = 1, math.min(#fails, 25) do shown[i] = "  " .. fails[i] end
  if #fails > 25 then
    shown[#shown + 1] = ("  ... and %d more"):format(#fails - 25)
  end
  assert.is_true(false, ("%s: %d of %d checks failed:\n%s"):format(name,
    #fails, total, table.concat(shown, "\n")))
end

-- Calls f(...) and computes a lazy result.
local function value_of(f, ...)
  local r = f(...)
  if la.is_array(r) then r = r:compute() end
  return r
end

----------------------------------------------------------------------------
-- A naive Lua reference: arrays are {shape = {...}, data = flat C order}
----------------------------------------------------------------------------

local R = {}

local function cstrides(shape)
  local s, n = {}, 1
  for i = #shape, 1, -1 do
    s[i] = n
    n = n * shape[i]
  end
  return s
end

-- Calls f(idx, k) for every 1-based index list idx (reused) in C order.
local function each_index(shape, f)
  local n = prod(shape)
  if n == 0 then return end
  local idx = {}
  for i = 1, #shape do idx[i] = 1 end
  for k = 1, n do
    f(idx, k)
    for d = #shape, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] <= shape[d] then break end
      idx[d] = 1
    end
  end
end

function R.of(x)
  if la.is_array(x) then x = x:compute() end
  if N.is_ndarray(x) then return {shape = x.shape, data = x:flat()} end
  return {shape = {}, data = {x}}
end

local function bshape(list)
  local nd = 0
  for _, A in ipairs(list) do nd = math.max(nd, #A.shape) end
  local out = {}
  for i = 1, nd do
    local d = 1
    for _, A in ipairs(list) do
      local e = A.shape[#A.shape - nd + i]
      if e and e ~= 1 then
        assert(d == 1 or d == e, "reference: shapes do not broadcast")
        d = e
      end
    end
    out[i] = d
  end
  return out
end

-- Broadcasting n-ary map; scalars are allowed among the arguments.
function R.map(f, ...)
  local args = {...}
  for i, A in ipairs(args) do
    if type(A) ~= "table" then args[i] = {shape = {}, data = {A}} end
  end
  local shape = bshape(args)
  local st = {}
  for i, A in ipairs(args) do st[i] = cstrides(A.shape) end
  local data = {}
  each_index(shape, function(idx, k)
    local v = {}
    for i, A in ipairs(args) do
      local off, pos = #shape - #A.shape, 1
      for j = 1, #A.shape do
        if A.shape[j] ~= 1 then pos = pos + (idx[j + off] - 1) * st[i][j] end
      end
      v[i] = A.data[pos]
    end
    data[k] = f(unpack(v, 1, #args))
  end)
  return {shape = shape, data = data}
end

local function norm_axes(axis, nd)
  local red = {}
  if axis == nil then
    for i = 1, nd do red[i] = true end
  elseif type(axis) == "number" then
    red[axis < 0 and nd + axis + 1 or axis] = true
  else
    for _, a in ipairs(axis) do red[a < 0 and nd + a + 1 or a] = true end
  end
  return red
end

-- Reduction of the values of each slice (listed in C order) with f.
function R.reduce(A, axis, keepdims, f)
  local nd = #A.shape
  local red = norm_axes(axis, nd)
  local kshape = {}
  for i = 1, nd do kshape[i] = red[i] and 1 or A.shape[i] end
  local ost = cstrides(kshape)
  local groups = {}
  for o = 1, prod(kshape) do groups[o] = {} end
  each_index(A.shape, function(idx, k)
    local o = 1
    for i = 1, nd do if not red[i] then o = o + (idx[i] - 1) * ost[i] end end
    local g = groups[o]
    g[#g + 1] = A.data[k]
  end)
  local data = {}
  for o = 1, #groups do data[o] = f(groups[o]) end
  local shape = {}
  for i = 1, nd do
    if keepdims then shape[i] = kshape[i]
    elseif not red[i] then shape[#shape + 1] = A.shape[i] end
  end
  return {shape = shape, data = data}
end

local function isnan(v) return v ~= v end
local function nonan(l)
  local out = {}
  for _, v in ipairs(l) do if not isnan(v) then out[#out + 1] = v end end
  return out
end

local RED = {}
function RED.sum(l)
  local s = 0
  for _, v in ipairs(l) do s = s + as_num(v) end
  return s
end
function RED.prod(l)
  local s = 1
  for _, v in ipairs(l) do s = s * as_num(v) end
  return s
end
function RED.mean(l) return RED.sum(l) / #l end
function RED.var(l, ddof)
  local n = #l
  local m = RED.sum(l) / n
  local q = 0
  for _, v in ipairs(l) do q = q + (as_num(v) - m) ^ 2 end
  -- NumPy divides by max(n - ddof, 0): NaN or inf when ddof >= n
  return q / math.max(n - (ddof or 0), 0)
end
function RED.std(l, ddof) return math.sqrt(RED.var(l, ddof)) end
local function extreme(less)
  return function(l)
    if #l == 0 then error("reference: empty", 0) end
    local m = l[1]
    for _, v in ipairs(l) do
      if isnan(as_num(v)) then return v end
      if less(as_num(v), as_num(m)) then m = v end
    end
    return m
  end
end
RED.min = extreme(function(a, b) return a < b end)
RED.max = extreme(function(a, b) return a > b end)
local function argextreme(less)
  return function(l)
    if #l == 0 then error("reference: empty", 0) end
    local best = 1
    for i, v in ipairs(l) do
      v = as_num(v)
      if isnan(v) then return i end
      if less(v, as_num(l[best])) then best = i end
    end
    return best
  end
end
RED.argmin = argextreme(function(a, b) return a < b end)
RED.argmax = argextreme(function(a, b) return a > b end)
function RED.any(l)
  for _, v in ipairs(l) do if as_num(v) ~= 0 then return true end end
  return false
end
function RED.all(l)
  for _, v in ipairs(l) do if as_num(v) == 0 then return false end end
  return true
end
for _, op in ipairs{"sum", "prod", "mean", "var", "std"} do
  RED["nan" .. op] = function(l, ddof)
    local k = nonan(l)
    -- np.nanvar and np.nanstd give NaN when n - ddof <= 0 (np.var: inf)
    if (op == "var" or op == "std") and #k - (ddof or 0) <= 0 then
      return NAN
    end
    return RED[op](k, ddof)
  end
end
for _, op in ipairs{"min", "max"} do
  RED["nan" .. op] = function(l)
    if #l == 0 then error("reference: empty", 0) end
    local k = nonan(l)
    if #k == 0 then return NAN end
    return RED[op](k)
  end
end
for _, op in ipairs{"argmin", "argmax"} do
  local less = op == "argmin" and function(a, b) return a < b end or
    function(a, b) return a > b end
  RED["nan" .. op] = function(l)
    if #l == 0 then error("reference: empty", 0) end
    local best
    for i, v in ipairs(l) do
      if not isnan(v) and (best == nil or less(v, l[best])) then best = i end
    end
    if not best then error("reference: all-NaN slice", 0) end
    return best
  end
end

-- {start, stop [, step]} inclusive, 1-based, negatives from the end,
-- clipped to the axis like NumPy's slices; a number picks one index.
function R.slice(A, spec)
  local nd = #A.shape
  local picks, keep = {}, {}
  for i = 1, nd do
    local d, s, p = A.shape[i], spec[i], {}
    keep[i] = type(s) ~= "number"
    if s == nil then
      for j = 1, d do p[j] = j end
    elseif type(s) == "number" then
      p[1] = s < 0 and d + s + 1 or s
    else
      local step = s[3] or 1
      local function norm(v) return v < 0 and d + v + 1 or v end
      local start, stop
      if step > 0 then
        start = math.max(s[1] and norm(s[1]) or 1, 1)
        stop = math.min(s[2] and norm(s[2]) or d, d)
      else
        start = math.min(s[1] and norm(s[1]) or d, d)
        stop = math.max(s[2] and norm(s[2]) or 1, 1)
      end
      for j = start, stop, step do p[#p + 1] = j end
    end
    picks[i] = p
  end
  local full = {}
  for i = 1, nd do full[i] = #picks[i] end
  local st = cstrides(A.shape)
  local data = {}
  each_index(full, function(idx, k)
    local pos = 1
    for i = 1, nd do pos = pos + (picks[i][idx[i]] - 1) * st[i] end
    data[k] = A.data[pos]
  end)
  local shape = {}
  for i = 1, nd do if keep[i] then shape[#shape + 1] = full[i] end end
  return {shape = shape, data = data}
end

-- perm: 1-based, output axis i is input axis perm[i].
function R.transpose(A, perm)
  local nd = #A.shape
  if not perm then
    perm = {}
    for i = 1, nd do perm[i] = nd - i + 1 end
  end
  local shape = {}
  for i = 1, nd do shape[i] = A.shape[perm[i]] end
  local st = cstrides(A.shape)
  local data = {}
  each_index(shape, function(idx, k)
    local pos = 1
    for i = 1, nd do pos = pos + (idx[i] - 1) * st[perm[i]] end
    data[k] = A.data[pos]
  end)
  return {shape = shape, data = data}
end

function R.reshape(A, shape) return {shape = shape, data = A.data} end

function R.matmul(A, B)
  local a1, b1 = #A.shape == 1, #B.shape == 1
  local as = a1 and {1, A.shape[1]} or A.shape
  local bs = b1 and {B.shape[1], 1} or B.shape
  local n, k, m = as[1], as[2], bs[2]
  assert(k == bs[1], "reference: inner dimensions differ")
  local data = {}
  for i = 1, n do
    for j = 1, m do
      local s = 0
      for p = 1, k do
        s = s + as_num(A.data[(i - 1) * k + p]) *
          as_num(B.data[(p - 1) * m + j])
      end
      data[(i - 1) * m + j] = s
    end
  end
  local shape = {n, m}
  if a1 and b1 then shape = {}
  elseif a1 then shape = {m}
  elseif b1 then shape = {n} end
  return {shape = shape, data = data}
end

function R.concatenate(list, axis)
  local nd = #list[1].shape
  local shape = {unpack(list[1].shape)}
  shape[axis] = 0
  for _, A in ipairs(list) do shape[axis] = shape[axis] + A.shape[axis] end
  local data = {}
  each_index(shape, function(idx, k)
    local i, at = idx[axis], 1
    while i > list[at].shape[axis] do
      i = i - list[at].shape[axis]
      at = at + 1
    end
    local A = list[at]
    local st = cstrides(A.shape)
    local pos = 1
    for d = 1, nd do pos = pos + ((d == axis and i or idx[d]) - 1) * st[d] end
    data[k] = A.data[pos]
  end)
  return {shape = shape, data = data}
end

----------------------------------------------------------------------------
-- The NumPy harness: cases are registered at load time; the setup of the
-- NumPy describe writes every input, runs python3 once, and each test
-- compares its checks.
-- A check: {label, py = "NumPy expression over a[0], a[1], ...",
--   lua = function(a, paths) -> lask result (a is 1-based; lazy results
--   are computed), ref = function(r) -> reference array (r: inputs as
--   reference arrays), dtype = expected dtype when lask deviates from
--   NumPy by design (deviates = true) or for the reference variant,
--   raises = Lua pattern (NumPy must raise too), rtol,
--   file = function(path, loaded) for checks of NumPy-written files}.
----------------------------------------------------------------------------

local NP = {cases = {}}

local function py_str(s)
  s = s:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("\n", "\\n")
  return '"' .. s .. '"'
end

local PRELUDE = [[
import io, sys, warnings
import numpy as np
warnings.simplefilter('ignore')
D = sys.argv[1]
def same(x, y):
    nan = x.dtype.kind == 'f' and y.dtype.kind == 'f'
    return bool(x.dtype == y.dtype and x.shape == y.shape and
                np.array_equal(x, y, equal_nan=nan))
def npy_bytes(x):
    b = io.BytesIO()
    np.save(b, x)
    return b.getvalue()
def file_bytes(p):
    with open(p, 'rb') as f:
        return f.read()
]]

local MAIN = [[
for ci, nin, exprs in CASES:
    err = None
    try:
        a = [np.load('%s/c%d_in%d.npy' % (D, ci, k)) for k in range(nin)]
    except Exception as e:
        a, err = None, 'NumPy cannot load the inputs lask wrote: %s: %s' % (
            type(e).__name__, e)
    P = (lambda ci: lambda k: '%s/c%d_in%d.npy' % (D, ci, k))(ci)
    for j, e in enumerate(exprs):
        base = '%s/c%d_o%d' % (D, ci, j)
        try:
            if err:
                raise RuntimeError(err)
            r = np.asarray(eval(e, {'np': np, 'a': a, 'P': P, 'same': same,
                                    'npy_bytes': npy_bytes,
                                    'file_bytes': file_bytes}))
            if r.dtype.kind == 'u' and r.dtype.itemsize > 1:
                r = r.astype(np.int64)  # lask has no uint64: sums of uint8
            np.save(base + '.npy', r)
        except Exception as ex:
            with open(base + '.err', 'w') as f:
                f.write('%s: %s' % (type(ex).__name__, ex))
]]

-- Busted runs a describe's body when it reaches it, so cases register
-- group by group: each run prepares every case registered and not yet
-- prepared, in one python3 run.
local function np_prepare()
  NP.dir = TMP .. "/np"
  assert(sh_ok("mkdir -p " .. quote(NP.dir)))
  NP.batches = (NP.batches or 0) + 1
  local batch = {ok = false, log = ""}
  local entries = {}
  for _, c in ipairs(NP.cases) do
   if not c.batch then
    c.batch = batch
    local ok, ins = pcall(c.inputs)
    if not ok then
      c.err = "building the inputs: " .. tostring(ins)
      ins = {}
    end
    c.a, c.paths = ins, {}
    for k, x in ipairs(ins) do
      local path = ("%s/c%d_in%d.npy"):format(NP.dir, c.index, k - 1)
      c.paths[k] = path
      local ok2, e = pcall(function() x:to_npy(path) end)
      if not ok2 and not c.err then
        c.err = ("writing input %d with to_npy: %s"):format(k, tostring(e))
      end
    end
    local ex = {}
    for j, chk in ipairs(c.checks) do ex[j] = py_str(chk.py) end
    entries[#entries + 1] = ("  (%d, %d, [%s]),"):format(c.index, #ins,
      table.concat(ex, ", "))
   end
  end
  local script = ("%s/run%d.py"):format(NP.dir, NP.batches)
  local log = ("%s/log%d"):format(NP.dir, NP.batches)
  write_file(script, PRELUDE .. "CASES = [\n" .. table.concat(entries, "\n") ..
    "\n]\n" .. MAIN)
  batch.ok = sh_ok(PY .. " " .. quote(script) .. " " .. quote(NP.dir) ..
    " >" .. quote(log) .. " 2>&1")
  batch.log = read_file(log) or ""
end

local function np_check(c, j, chk)
  local base = ("%s/c%d_o%d"):format(NP.dir, c.index, j - 1)
  local nperr = read_file(base .. ".err")
  if chk.raises then
    if not nperr then return "(test bug) NumPy did not raise" end
    local ok, e = pcall(value_of, chk.lua, c.a, c.paths)
    if ok then
      return ("expected an error matching '%s' (NumPy: %s), got %s"):format(
        chk.raises, nperr, tostring(e))
    end
    if not tostring(e):find(chk.raises) then
      return ("error '%s' does not match '%s'"):format(tostring(e), chk.raises)
    end
    return nil
  end
  if nperr then return "(test bug?) NumPy raised " .. nperr end
  local ok, want = pcall(N.load, base .. ".npy")
  if not ok then
    return "lask cannot load NumPy's result: " .. tostring(want)
  end
  if chk.file then
    local ok2, e = pcall(chk.file, base .. ".npy", want)
    return (not ok2) and tostring(e) or nil
  end
  local ok3, got = pcall(value_of, chk.lua, c.a, c.paths)
  if not ok3 then return "lask raised: " .. tostring(got) end
  local good, msg = compare(got, want, {
    dtype = chk.deviates and chk.dtype or nil, rtol = chk.rtol,
    number = chk.number})
  return (not good) and msg or nil
end

local function np_run(c)
  if not c.batch then np_prepare() end
  assert.is_true(c.batch.ok, "the NumPy helper failed:\n" .. c.batch.log)
  assert.is_nil(c.err, c.err)
  local fails = {}
  for j, chk in ipairs(c.checks) do
    local msg = np_check(c, j, chk)
    if msg then fails[#fails + 1] = (chk.label or chk.py) .. ": " .. msg end
  end
  report(c.name, fails, #c.checks)
end

--- np_case(name, inputs, checks): one test comparing with NumPy.
local function np_case(name, inputs, checks)
  if not HAVE_NUMPY then
    pending("python3-numpy not installed: " .. name .. " (compared with NumPy)")
    return
  end
  local c = {name = name, inputs = inputs, checks = checks}
  NP.cases[#NP.cases + 1] = c
  c.index = #NP.cases
  it(name .. " (as NumPy)", function() np_run(c) end)
end

--- ref_case(name, inputs, checks): the checks that have a 'ref' against
-- the naive Lua reference.
local function ref_case(name, inputs, checks)
  local n = 0
  for _, chk in ipairs(checks) do if chk.ref then n = n + 1 end end
  if n == 0 then return end
  it(name .. " (as the Lua reference)", function()
    local a = inputs()
    local r = {}
    for k, x in ipairs(a) do r[k] = R.of(x) end
    local fails = {}
    for _, chk in ipairs(checks) do
      if chk.ref then
        local label = chk.label or chk.py
        local rok, want = pcall(chk.ref, r)
        local ok, got = pcall(value_of, chk.lua, a, {})
        local msg
        if not rok then
          if ok then
            msg = ("expected an error (reference: %s), got %s"):format(
              tostring(want), tostring(got))
          elseif chk.raises and not tostring(got):find(chk.raises) then
            msg = ("error '%s' does not match '%s'"):format(tostring(got),
                                                            chk.raises)
          end
        elseif not ok then
          msg = "lask raised: " .. tostring(got)
        else
          local good, m = compare(got, want, {dtype = chk.dtype or false,
                                              rtol = chk.rtol,
                                              number = chk.number})
          if not good then msg = m end
        end
        if msg then fails[#fails + 1] = label .. ": " .. msg end
      end
    end
    report(name, fails, n)
  end)
end

local function both(name, inputs, checks)
  np_case(name, inputs, checks)
  ref_case(name, inputs, checks)
end

----------------------------------------------------------------------------
-- Check generators
----------------------------------------------------------------------------

local function axis_str(axis)
  if axis == nil then return "nil" end
  if type(axis) == "number" then return tostring(axis) end
  return "{" .. table.concat(axis, ",") .. "}"
end

local function py_axis(axis)
  if axis == nil then return "None" end
  local function one(a) return tostring(a < 0 and a or a - 1) end
  if type(axis) == "number" then return one(axis) end
  local t = {}
  for i, a in ipairs(axis) do t[i] = one(a) end
  return "(" .. table.concat(t, ", ") .. ",)"
end

local ALL_OPS = {"sum", "prod", "mean", "min", "max", "std", "var", "argmin",
                 "argmax", "any", "all", "nansum", "nanprod", "nanmean",
                 "nanmin", "nanmax", "nanstd", "nanvar", "nanargmin",
                 "nanargmax"}
local PLAIN_OPS = {"sum", "prod", "mean", "min", "max", "std", "var", "argmin",
                   "argmax", "any", "all"}
local AXES3 = {{nil}, {1}, {2}, {3}, {-1}, {-3}, {{1, 3}}, {{3, 1}},
               {{1, 2, 3}}}

--- Reduction checks of input 1 (shape 'shape'), eagerly or, with
-- 'chunks', on a chunked copy with split_every = 2.
local function reduction_checks(ops, axes, shape, chunks, extra)
  extra = extra or {}
  local checks = {}
  local prep = chunks and function(x) return lz(x, chunks) end or
    function(x) return x end
  for _, op in ipairs(ops) do
    local base = op:gsub("^nan", "")
    local isarg = base == "argmin" or base == "argmax"
    for _, ax in ipairs(axes) do
      local axis = ax[1]
      for _, kd in ipairs{false, true} do
        local ddofs = (base == "std" or base == "var") and {0, 1} or {0}
        for _, ddof in ipairs(ddofs) do
          if not (isarg and (type(axis) == "table" or (axis == nil and kd)))
             and not (ddof == 1 and kd) then
            local o = {axis = axis, keepdims = kd or nil,
                       ddof = ddof > 0 and ddof or nil,
                       split_every = chunks and (extra.split_every or 2) or nil}
            local py = ("np.%s(a[0], axis=%s%s%s)%s"):format(op, py_axis(axis),
              kd and ", keepdims=True" or "",
              ddof > 0 and (", ddof=" .. ddof) or "", isarg and " + 1" or "")
            -- does the reduction run over an empty axis with no identity?
            local raises
            if base == "min" or base == "max" or isarg then
              local red = norm_axes(axis, #shape)
              for i = 1, #shape do
                if red[i] and shape[i] == 0 then raises = "empty" end
              end
            end
            local f = RED[op]
            checks[#checks + 1] = {
              label = ("%s{axis=%s, keepdims=%s%s}"):format(op, axis_str(axis),
                tostring(kd), ddof > 0 and ", ddof=1" or ""),
              py = py,
              raises = raises,
              number = (axis == nil and not kd) or nil,
              rtol = extra.rtol,
              lua = function(a)
                local x = prep(a[1])
                local oo = {}
                for k, v in pairs(o) do oo[k] = v end
                return x[op](x, oo)
              end,
              ref = function(r)
                local res = R.reduce(r[1], axis, kd, function(l)
                  return f(l, ddof)
                end)
                if axis == nil and not kd then return res.data[1] end
                return res
              end,
            }
          end
        end
      end
    end
  end
  return checks
end

local function reduction_suite(name, make_input, ops, axes, shape, chunks,
                               extra)
  local function inputs() return {make_input()} end
  both(name .. ", eager", inputs,
       reduction_checks(ops, axes, shape, nil, extra))
  both(name .. ", chunked", inputs,
       reduction_checks(ops, axes, shape, chunks, extra))
end

----------------------------------------------------------------------------
-- The specs
----------------------------------------------------------------------------

describe("lask arrays", function()
  teardown(function()
    if not os.getenv("ARRAY_SPEC_KEEP") then
      os.execute("rm -rf " .. quote(TMP))
    end
  end)

  --------------------------------------------------------------------------
  describe("ndarray basics", function()
    it("makes arrays of the six dtypes with C-order byte strides", function()
      assert.are.same({"float64", "float32", "int64", "int32", "uint8", "bool"},
                      N.dtypes)
      local sizes = {float64 = 8, float32 = 4, int64 = 8, int32 = 4, uint8 = 1,
                     bool = 1}
      for dt, sz in pairs(sizes) do
        local a = N.zeros({2, 3, 4}, dt)
        assert.are.equal(dt, a.dtype)
        assert.are.same({2, 3, 4}, a.shape)
        assert.are.equal(3, a.ndim)
        assert.are.equal(24, a.size)
        assert.are.same({12 * sz, 4 * sz, sz}, a.strides)
      end
      assert.are.equal("float64", N.zeros({2}).dtype)
      assert.are.equal("float64", N.ones(3).dtype)
      assert.are.same({3}, N.ones(3).shape)
      assert.are.equal("int64", N.full({2}, 7).dtype)
      assert.are.equal("float64", N.full({2}, 7.5).dtype)
      assert.are.equal("bool", N.full({2}, true).dtype)
      assert.are.equal("int32", N.full({2}, 7, "int32").dtype)
      local z = N.zeros({})
      assert.are.same({}, z.shape)
      assert.are.equal(1, z.size)
      assert.are.equal(0, z.ndim)
      assert.matches("unknown dtype complex", errmsg(N.zeros, {2}, "complex"))
    end)

    it("converts nested tables both ways, inferring the dtype", function()
      local t = {{1, 2, 3}, {4, 5, 6}}
      local a = N.from_table(t)
      assert.are.equal("int64", a.dtype)
      assert.are.same({2, 3}, a.shape)
      assert.are.same(t, a:totable())
      assert.are.equal("float64", N.from_table({1, 2.5}).dtype)
      local b = N.from_table({{true, false}, {false, true}})
      assert.are.equal("bool", b.dtype)
      assert.are.same({{true, false}, {false, true}}, b:totable())
      assert.are.equal("uint8", N.from_table({1, 2}, "uint8").dtype)
      assert.are.same({1.5, -2}, N.from_table({1.5, -2}, "float32"):totable())
      local c = N.from_table({{{1}, {2}}, {{3}, {4}}})
      assert.are.same({2, 2, 1}, c.shape)
      assert.are.equal(4, c:get(2, 2, 1))
      assert.matches("ragged", errmsg(N.from_table, {{1, 2}, {3}}))
      assert.matches("numbers or booleans", errmsg(N.from_table, {"x"}))
    end)

    it("gets and sets with 1-based and negative indexes", function()
      local a = N.arange(12):reshape{3, 4}
      assert.are.equal(0, a:get(1, 1))
      assert.are.equal(11, a:get(3, 4))
      assert.are.equal(11, a:get(-1, -1))
      assert.are.equal(8, a:get(-1, 1))
      assert.are.equal(3, a:get(1, -1))
      a:set(-1, -2, 100)
      assert.are.equal(100, a:get(3, 3))
      a:set(2, 1, -5)
      assert.are.same({{0, 1, 2, 3}, {-5, 5, 6, 7}, {8, 9, 100, 11}},
                      a:totable())
      local b = N.zeros({2}, "bool")
      b:set(2, true)
      assert.are.same({false, true}, b:totable())
      -- storing converts to the dtype as NumPy does: truncation, wrapping
      local i = N.zeros({2}, "int32")
      i:set(1, 3.7)
      i:set(2, -3.7)
      assert.are.same({3, -3}, i:totable())
    end)

    it("rejects out-of-range and malformed indexes", function()
      local a = N.zeros({3, 4})
      assert.matches("index 0 out of range", errmsg(a.get, a, 0, 1))
      assert.matches("index 4 out of range", errmsg(a.get, a, 4, 1))
      assert.matches("index 5 out of range", errmsg(a.get, a, 1, 5))
      assert.matches("index %-4 out of range", errmsg(a.get, a, -4, 1))
      assert.matches("index %-5 out of range", errmsg(a.set, a, 1, -5, 0))
      assert.matches("needs 2 indexes", errmsg(a.get, a, 1))
      assert.matches("must be an integer", errmsg(a.get, a, 1.5, 1))
      assert.matches("out of range", errmsg(a.set, a, 4, 4, 1))
      assert.matches("out of range", errmsg(N.zeros({0}).get, N.zeros({0}), 1))
    end)

    it("makes views that share memory: slices, transposes, reshapes", function()
      local a = N.arange(12):reshape{3, 4}
      local v = a:slice{{-1, 1, -1}, {2, 4, 2}} -- rows 3,2,1; cols 2,4
      assert.are.same({3, 2}, v.shape)
      assert.are.same({{9, 11}, {5, 7}, {1, 3}}, v:totable())
      v:set(1, 2, -11)
      assert.are.equal(-11, a:get(3, 4))
      a:set(1, 2, -1)
      assert.are.equal(-1, v:get(3, 1))
      assert.are.same({-32, 16}, v.strides)
      -- the offset, in bytes, of element (3, 2) of a 3x4 int64 array
      assert.are.equal(0, a.offset)
      assert.are.equal((2 * 4 + 1) * 8, v.offset)
      local t = a:T()
      assert.are.same({4, 3}, t.shape)
      assert.are.same({8, 32}, t.strides)
      t:set(2, 3, 99)
      assert.are.equal(99, a:get(3, 2))
      local r = a:reshape{12}
      r:set(1, 42)
      assert.are.equal(42, a:get(1, 1))
      -- a view of a view, with a negative step on a negative step
      local w = v:slice{{-1, 1, -1}}
      assert.are.same({{-1, 3}, {5, 7}, {99, -11}}, w:totable())
      w:set(1, 1, 7)
      assert.are.equal(7, a:get(1, 2))
      -- copies and astype do not share
      local c = a:copy()
      c:set(1, 1, 1000)
      assert.are.equal(42, a:get(1, 1))
      local f = a:astype("float64")
      f:set(1, 1, 1000)
      assert.are.equal(42, a:get(1, 1))
      assert.is_true(a:is_contiguous())
      assert.is_false(t:is_contiguous())
    end)

    it("picks one index with a number, dropping the axis", function()
      local a = N.arange(24):reshape{2, 3, 4}
      local v = a:slice{2, {}, -1}
      assert.are.same({3}, v.shape)
      assert.are.same({15, 19, 23}, v:totable())
      v:set(1, -15)
      assert.are.equal(-15, a:get(2, 1, 4))
      local s = a:slice{1, 1, 1}
      assert.are.same({}, s.shape)
      assert.are.equal(0, s:totable())
    end)

    it("slices zero-length axes and empty ranges", function()
      local z = N.zeros({0, 3})
      assert.are.same({0, 3}, z:slice{{1, 2}}.shape)
      assert.are.same({0, 2}, z:slice{{}, {-1, 2, -1}}.shape)
      local a = N.arange(6)
      assert.are.same({0}, a:slice{{4, 2}}.shape)
      assert.are.same({0}, a:slice{{2, 4, -1}}.shape)
      assert.are.same({0}, a:slice{{7, 9}}.shape)
      assert.are.same({5, 4, 3, 2, 1, 0}, a:slice{{nil, nil, -1}}:totable())
      assert.are.same({0, 1, 2, 3, 4, 5}, a:slice{{-100, 100}}:totable())
      assert.are.same({5}, a:slice{{100, 6, -1}}:totable())
    end)

    it("rejects bad slices with messages naming the axis", function()
      local a = N.zeros({3, 4})
      assert.matches("index 9 out of range on axis 2",
                     errmsg(a.slice, a, {{1, 2}, 9}))
      assert.matches("index %-4 out of range on axis 1",
                     errmsg(a.slice, a, {-4}))
      assert.matches("axis 1: step must be a nonzero integer",
                     errmsg(a.slice, a, {{1, 2, 0}}))
      assert.matches("3 axes given for an array of 2",
                     errmsg(a.slice, a, {{1, 2}, {1, 2}, {1, 1}}))
      assert.matches("axis 2: start and stop must be integers",
                     errmsg(a.slice, a, {{}, {1.5, 2}}))
    end)

    it("casts with astype like NumPy", function()
      local f = N.from_table({-2.7, -0.5, 0, 0.5, 2.7, 300.9})
      assert.are.same({-2, 0, 0, 0, 2, 300}, f:astype("int64"):totable())
      assert.are.same({-2, 0, 0, 0, 2, 300}, f:astype("int32"):totable())
      assert.are.same({true, true, false, true, true, true},
                      f:astype("bool"):totable())
      assert.are.same({true}, N.from_table({NAN}):astype("bool"):totable())
      local i = N.from_table({-1, 0, 255, 256, 300})
      assert.are.same({255, 0, 255, 0, 44}, i:astype("uint8"):totable())
      assert.are.same({1, 0},
                      N.from_table({true, false}):astype("float64"):totable())
      assert.are.equal("float32", f:astype("float32").dtype)
      assert.are.same({2147483647, -2147483648},
        N.from_table({2147483647, 2147483648}):astype("int32"):totable())
      assert.matches("unknown dtype", errmsg(f.astype, f, "float16"))
    end)

    it("transposes with 1-based permutations and reshapes with -1", function()
      local a = N.arange(24):reshape{2, 3, 4}
      local t = a:transpose{2, 3, 1}
      assert.are.same({3, 4, 2}, t.shape)
      assert.are.equal(a:get(2, 1, 3), t:get(1, 3, 2))
      assert.are.same({4, 3, 2}, a:T().shape)
      assert.are.same({4, 3, 2}, a:transpose().shape)
      assert.are.same({4, 2, 3}, a:transpose{-1, 1, 2}.shape)
      assert.are.same({6, 4}, a:reshape{-1, 4}.shape)
      assert.are.same({24}, a:reshape{-1}.shape)
      assert.are.same({0, 1, 2, 3, 4, 5},
                      N.arange(6):reshape{2, 3}:reshape{-1}:totable())
      -- a non-contiguous array reshapes in logical C order
      assert.are.same({0, 3, 1, 4, 2, 5},
                      N.arange(6):reshape{2, 3}:T():reshape{6}:totable())
      assert.are.same({2, 0, 3}, N.zeros({0, 6}):reshape{2, -1, 3}.shape)
      assert.matches("cannot reshape", errmsg(a.reshape, a, {5, 5}))
      assert.matches("cannot infer %-1", errmsg(a.reshape, a, {5, -1}))
      assert.matches("not a permutation", errmsg(a.transpose, a, {1, 1, 2}))
      assert.matches("axis 4 is out of range",
                     errmsg(a.transpose, a, {1, 2, 4}))
    end)
  end)

  --------------------------------------------------------------------------
  describe("dtype promotion", function()
    local DT = {"bool", "uint8", "int32", "int64", "float32", "float64"}
    -- NumPy's np.result_type for arrays of these dtypes
    local TABLE = {
      bool = {bool = "bool", uint8 = "uint8", int32 = "int32",
              int64 = "int64", float32 = "float32", float64 = "float64"},
      uint8 = {uint8 = "uint8", int32 = "int32", int64 = "int64",
               float32 = "float32", float64 = "float64"},
      int32 = {int32 = "int32", int64 = "int64", float32 = "float64",
               float64 = "float64"},
      int64 = {int64 = "int64", float32 = "float64", float64 = "float64"},
      float32 = {float32 = "float32", float64 = "float64"},
      float64 = {float64 = "float64"},
    }
    local function result_type(a, b)
      return TABLE[a][b] or TABLE[b][a]
    end
    local VALUES = {
      bool = {true, false, true, false, true, true},
      uint8 = {1, 2, 3, 0, 7, 200},
      int32 = {1, -2, 3, 0, 7, 100},
      int64 = {4, -2, 3, 0, -7, 100},
      float32 = {1.5, -2.25, 3, 0, 7.5, 100.25},
      float64 = {0.5, -2.125, 3, 0, 7.25, -100.5},
    }
    local function inputs()
      local t = {}
      for i, dt in ipairs(DT) do t[i] = make(VALUES[dt], {2, 3}, dt) end
      return t
    end

    it("gives NumPy's result dtype for + - * of every pair (bool with " ..
       "bool: int64, as documented)", function()
      local a = inputs()
      for i, x in ipairs(DT) do
        for j, y in ipairs(DT) do
          local want = result_type(x, y)
          if x == "bool" and y == "bool" then want = "int64" end
          assert.are.equal(want, (a[i] + a[j]).dtype, x .. " + " .. y)
          assert.are.equal(want, (a[i] * a[j]).dtype, x .. " * " .. y)
          assert.are.equal(want, (a[i] - a[j]).dtype, x .. " - " .. y)
        end
      end
    end)

    it("gives floats for / and ^ always (float32 when the promoted type " ..
       "is float32)", function()
      local a = inputs()
      for i, x in ipairs(DT) do
        for j, y in ipairs(DT) do
          local want = result_type(x, y) == "float32" and "float32" or "float64"
          assert.are.equal(want, (a[i] / a[j]).dtype, x .. " / " .. y)
          assert.are.equal(want, (a[i] ^ a[j]).dtype, x .. " ^ " .. y)
        end
      end
    end)

    it("treats Lua numbers as weak scalars (NEP 50)", function()
      local i32 = N.full({2}, 3, "int32")
      local u8 = N.full({2}, 255, "uint8")
      local f32 = N.full({2}, 1.5, "float32")
      local b = N.full({2}, true)
      assert.are.equal("int32", (i32 + 1).dtype)
      assert.are.equal("int32", (2 * i32).dtype)
      assert.are.equal("uint8", (u8 + 1).dtype)
      assert.are.same({0, 0}, (u8 + 1):totable()) -- wraps like NumPy's uint8
      assert.are.equal("int64", (b + 1).dtype)
      assert.are.equal("float64", (i32 + 0.5).dtype)
      assert.are.equal("float64", (u8 * 2.5).dtype)
      assert.are.equal("float32", (f32 + 0.5).dtype)
      assert.are.equal("float32", (f32 * 2).dtype)
      assert.are.equal("float64", (N.full({2}, 1, "int64") + 0.25).dtype)
      assert.are.equal("bool", i32:lt(5).dtype)
      assert.are.equal("bool", f32:eq(1.5).dtype)
      assert.are.same({true, true}, f32:eq(1.5):totable())
    end)

    it("wraps integer overflow in the narrow types", function()
      local u = N.from_table({200, 255, 0}, "uint8")
      assert.are.same({144, 254, 0}, (u + u):totable())
      local d = N.from_table({1, 0, 0}, "uint8") -
        N.from_table({0, 0, 1}, "uint8")
      assert.are.same({1, 0, 255}, d:totable())
      assert.are.same({56, 1, 0}, (-u):totable())
      local i = N.from_table({2147483647}, "int32")
      assert.are.same({-2147483648}, (i + N.from_table({1}, "int32")):totable())
    end)

    local checks = {}
    for i, x in ipairs(DT) do
      for j, y in ipairs(DT) do
        local bb = x == "bool" and y == "bool"
        local ai, aj = ("a[%d]"):format(i - 1), ("a[%d]"):format(j - 1)
        local ii, jj = i, j
        checks[#checks + 1] = {
          label = x .. " + " .. y,
          py = bb and (ai .. ".astype(np.int64) + " .. aj ..
                       ".astype(np.int64)") or (ai .. " + " .. aj),
          deviates = bb, dtype = bb and "int64" or nil,
          lua = function(a) return a[ii] + a[jj] end,
        }
        checks[#checks + 1] = {
          label = x .. " * " .. y,
          py = bb and (ai .. ".astype(np.int64) * " .. aj ..
                       ".astype(np.int64)") or (ai .. " * " .. aj),
          deviates = bb, dtype = bb and "int64" or nil,
          lua = function(a) return a[ii] * a[jj] end,
        }
        checks[#checks + 1] = {
          label = x .. " / " .. y,
          py = ai .. " / " .. aj,
          lua = function(a) return a[ii] / a[jj] end,
        }
        local ft = result_type(x, y) == "float32" and "float32" or "float64"
        checks[#checks + 1] = {
          label = x .. " ^ " .. y,
          py = ("np.power(%s.astype('%s'), %s.astype('%s'))"):format(ai, ft,
                                                                      aj, ft),
          deviates = true, dtype = ft,
          lua = function(a) return a[ii] ^ a[jj] end,
        }
        checks[#checks + 1] = {
          label = x .. " < " .. y,
          py = ai .. " < " .. aj,
          lua = function(a) return a[ii]:lt(a[jj]) end,
        }
      end
    end
    np_case("promotes every dtype pair in + * / ^ <", inputs, checks)
  end)

  --------------------------------------------------------------------------
  describe("against NumPy and the Lua reference", function()
    ------------------------------------------------------------------------
    describe("elementwise", function()
      local SPECIALS = {0, -0.0, 1, -1, 0.5, 2.5, -2.5, 1e300, -1e-300, INF,
                        -INF, NAN}
      local function inputs()
        local A = rand(11, {3, 4, 5}, "float64", {nan = 0.05})
        A:set(1, 1, 1, NAN)
        return {
          A,                                                  -- a[0]
          rand(12, {5}, "float64", {lo = 0.5, hi = 3}),       -- B a[1]
          rand(13, {4, 1}, "float64"),                        -- C a[2]
          rand(14, {1, 5}, "float64"),                        -- D a[3]
          rand(15, {3, 4, 5}, "int64", {lo = -20, hi = 20}),  -- I a[4]
          rand(16, {5}, "int32", {lo = 1, hi = 7}),           -- J a[5]
          rand(17, {4, 5}, "uint8", {lo = 0, hi = 255}),      -- U a[6]
          N.from_table(SPECIALS),                             -- S a[7]
          rand(18, {3, 4}, "float32"),                        -- F a[8]
          rand(19, {3, 4}, "int32", {lo = -5, hi = 5}),       -- K a[9]
          rand(20, {4, 5}, "bool"),                           -- Bo a[10]
        }
      end
      local CHUNKS = {
        {{1, 2}, {3, 1}, {2, 3}}, {{2, 3}}, {{3, 1}, {1}}, {{1}, {1, 4}},
        {2, {2, 2}, -1}, {{4, 1}}, {{1, 3}, {2, 3}}, {5}, {{2, 1}, {1, 3}},
        {{1, 2}, {4}}, {{4}, {2, 3}},
      }
      local NAMES = {"A", "B", "C", "D", "I", "J", "U", "S", "F", "K", "Bo"}
      local IX = {}
      for i, n in ipairs(NAMES) do IX[n] = i end

      local function isnanv(v) return v ~= v end
      local function pmax(x, y)
        if isnanv(x) or isnanv(y) then return NAN end
        return math.max(x, y)
      end
      local function pmin(x, y)
        if isnanv(x) or isnanv(y) then return NAN end
        return math.min(x, y)
      end
      local function fmax(x, y)
        if isnanv(x) then return y elseif isnanv(y) then return x end
        return math.max(x, y)
      end
      local function fmin(x, y)
        if isnanv(x) then return y elseif isnanv(y) then return x end
        return math.min(x, y)
      end
      local function lfloor(v)
        if v ~= v or math.abs(v) == INF then return v end
        return math.floor(v)
      end
      local function lceil(v)
        if v ~= v or math.abs(v) == INF then return v end
        return math.ceil(v)
      end
      local function tanh(v)
        if v ~= v then return v end
        if v > 20 then return 1 elseif v < -20 then return -1 end
        local e = math.exp(2 * v)
        return (e - 1) / (e + 1)
      end

      -- {label, lua(x...) over named inputs, py, ref over named refs,
      --  dtype (documented lask dtype), deviates}
      -- E: {label, lask function, NumPy expression, reference function,
      --     dtype, deviates, args = names of the inputs}
      local E = {}
      -- entry(label, operands, lua, py, elem, dtype, deviates): operands are
      -- input names or Lua numbers; lua gets arrays (and the numbers); the
      -- reference maps elem over the elements with broadcasting (uint8
      -- results wrap).
      local function entry(label, ops, lf, py, elem, dt, dev)
        local names = {}
        for _, v in ipairs(ops) do
          if type(v) == "string" then names[#names + 1] = v end
        end
        local function fill(vals)
          local out, i = {}, 0
          for k, v in ipairs(ops) do
            if type(v) == "string" then
              i = i + 1
              out[k] = vals[i]
            else
              out[k] = v
            end
          end
          return unpack(out, 1, #ops)
        end
        local rf
        if elem then
          rf = function(...)
            return R.map(function(...)
              local r = elem(...)
              if dt == "uint8" then r = r % 256 end
              return r
            end, fill({...}))
          end
        end
        E[#E + 1] = {label, function(...) return lf(fill({...})) end, py, rf,
                     dt, dev, args = names}
      end
      local ARITH = {
        ["+"] = function(x, y) return x + y end,
        ["-"] = function(x, y) return x - y end,
        ["*"] = function(x, y) return x * y end,
        ["/"] = function(x, y) return x / y end,
        ["%"] = function(x, y) return x % y end,
        ["^"] = function(x, y) return x ^ y end,
      }
      -- the same Lua operator runs on arrays and on the reference's numbers
      local function bin(x, op, y, dt, py, dev)
        local f = ARITH[op]
        local pyop = op == "^" and "**" or op
        entry(("%s %s %s"):format(x, op, y), {x, y}, f,
              py or ("%s %s %s"):format(x, pyop, y),
              function(u, v) return f(as_num(u), as_num(v)) end, dt, dev)
      end
      local CMP = {eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">",
                   ge = ">="}
      local CMPF = {
        eq = function(u, v) return u == v end,
        ne = function(u, v) return u ~= v end,
        lt = function(u, v) return u < v end,
        le = function(u, v) return u <= v end,
        gt = function(u, v) return u > v end,
        ge = function(u, v) return u >= v end,
      }
      local function cmp(x, m, y)
        entry(("%s:%s(%s)"):format(x, m, y), {x, y},
              function(p, q) return p[m](p, q) end,
              ("%s %s %s"):format(x, CMP[m], y), CMPF[m], "bool")
      end

      for _, op in ipairs{"+", "-", "*", "/", "%", "^"} do
        bin("A", op, "B", "float64")
      end
      bin("C", "+", "D", "float64")
      bin("C", "*", "D", "float64")
      bin("D", "/", "C", "float64")
      bin("D", "-", "C", "float64")
      for _, op in ipairs{"+", "-", "*", "%"} do bin("I", op, "J", "int64") end
      bin("I", "/", "J", "float64")
      bin("I", "^", "J", "float64",
          "np.power(I.astype(np.float64), J.astype(np.float64))", true)
      bin("A", "+", "J", "float64")
      bin("I", "*", "B", "float64")
      bin("U", "+", "U", "uint8")
      bin("U", "*", "U", "uint8")
      bin("F", "+", "K", "float64")
      bin("F", "/", "K", "float64")
      bin("F", "*", "F", "float32")
      bin("A", "+", 1, "float64")
      bin(2, "-", "I", "int64")
      bin("I", "*", 3, "int64")
      bin("I", "+", 0.5, "float64")
      bin("U", "+", 1, "uint8")
      bin("F", "+", 1.5, "float32", "F + np.float32(1.5)")
      bin("F", "*", 2, "float32", "F * np.float32(2)")
      bin(1, "/", "I", "float64")
      bin("Bo", "+", 1, "int64")
      entry("Bo + Bo", {"Bo", "Bo"}, ARITH["+"],
            "Bo.astype(np.int64) + Bo.astype(np.int64)",
            function(u, v) return as_num(u) + as_num(v) end, "int64", true)
      entry("I % 0", {"I"}, function(p) return p % 0 end, "I % 0",
            function() return 0 end, "int64")
      entry("A % 0", {"A"}, function(p) return p % 0 end, "A % 0.0",
            function() return NAN end, "float64")
      entry("-A", {"A"}, function(p) return -p end, "-A",
            function(u) return -u end, "float64")
      entry("-I", {"I"}, function(p) return -p end, "-I",
            function(u) return -u end, "int64")
      entry("-U", {"U"}, function(p) return -p end, "-U",
            function(u) return -u end, "uint8")
      cmp("A", "eq", "B")
      cmp("A", "ne", "A")
      cmp("A", "eq", "A")
      for _, m in ipairs{"lt", "le", "gt", "ge"} do cmp("A", m, "B") end
      cmp("I", "lt", "J")
      cmp("C", "ge", "D")
      cmp("I", "eq", 2)
      entry("maximum(A, B)", {"A", "B"}, la.maximum, "np.maximum(A, B)",
            pmax, "float64")
      entry("minimum(A, B)", {"A", "B"}, la.minimum, "np.minimum(A, B)",
            pmin, "float64")
      entry("fmax(A, B)", {"A", "B"}, la.fmax, "np.fmax(A, B)", fmax,
            "float64")
      entry("fmin(A, B)", {"A", "B"}, la.fmin, "np.fmin(A, B)", fmin,
            "float64")
      entry("maximum(I, J)", {"I", "J"}, la.maximum, "np.maximum(I, J)",
            math.max, "int64")
      entry("minimum(C, D)", {"C", "D"}, la.minimum, "np.minimum(C, D)",
            pmin, "float64")
      entry("where(A > 0, A, B)", {"A", "B"},
            function(p, q) return la.where(p:gt(0), p, q) end,
            "np.where(A > 0, A, B)",
            function(u, v) if u > 0 then return u end return v end, "float64")
      entry("where(Bo, U, 7)", {"Bo", "U"},
            function(c, u) return la.where(c, u, 7) end,
            "np.where(Bo, U, np.uint8(7))",
            function(c, u) if c then return u end return 7 end, "uint8")
      entry("where(I > 0, 1, 0)", {"I"},
            function(p) return la.where(p:gt(0), 1, 0) end,
            "np.where(I > 0, 1, 0)",
            function(u) return u > 0 and 1 or 0 end, "int64")
      entry("where(Bo, U, 0.5)", {"Bo", "U"},
            function(c, u) return la.where(c, u, 0.5) end,
            "np.where(Bo, U, 0.5)",
            function(c, u) if c then return u end return 0.5 end, "float64")
      entry("sin(A)^2 + cos(A)^2", {"A"},
            function(p) return la.sin(p) ^ 2 + la.cos(p) ^ 2 end,
            "np.sin(A) ** 2 + np.cos(A) ** 2",
            function(u) return math.sin(u) ^ 2 + math.cos(u) ^ 2 end,
            "float64")
      entry("abs(I)", {"I"}, la.abs, "np.abs(I)", math.abs, "int64")
      entry("abs(A - B)", {"A", "B"},
            function(p, q) return la.abs(p - q) end, "np.abs(A - B)",
            function(u, v) return math.abs(u - v) end, "float64")
      entry("sqrt(I)", {"I"}, la.sqrt, "np.sqrt(I)", math.sqrt, "float64")
      entry("floor(I)", {"I"}, la.floor, "np.floor(I)", lfloor, "float64")
      local FUNCS = {
        {"sin", math.sin}, {"cos", math.cos}, {"exp", math.exp},
        {"log", math.log}, {"sqrt", math.sqrt}, {"abs", math.abs},
        {"floor", lfloor}, {"ceil", lceil}, {"tanh", tanh},
      }
      for _, f in ipairs(FUNCS) do
        local name, lf = f[1], f[2]
        for _, arg in ipairs{"A", "S", "F"} do
          entry(name .. "(" .. arg .. ")", {arg}, la[name],
                ("np.%s(%s)"):format(name, arg), lf,
                arg == "F" and "float32" or "float64")
        end
      end
      local function args_of(e) return assert(e.args, e[1]) end
      local function checks_for(chunked)
        local checks = {}
        for _, e in ipairs(E) do
          local names = args_of(e)
          local py = e[3]
          for _, n in ipairs(NAMES) do
            py = py:gsub("%f[%w]" .. n .. "%f[^%w]",
                         ("a[%d]"):format(IX[n] - 1))
          end
          local lf, rf = e[2], e[4]
          checks[#checks + 1] = {
            label = e[1], py = py, dtype = e[5], deviates = e[6],
            rtol = (e[5] == "float32") and 1e-6 or nil,
            lua = function(a)
              local xs = {}
              for k, n in ipairs(names) do
                local x = a[IX[n]]
                if chunked then x = lz(x, CHUNKS[IX[n]]) end
                xs[k] = x
              end
              local r = lf(unpack(xs, 1, #names))
              if chunked then
                assert(la.is_array(r), "not a lazy array: " .. tostring(r))
                assert(r.dtype == e[5], ("lazy dtype %s, expected %s"):format(
                  r.dtype, e[5]))
              end
              return r
            end,
            ref = rf and function(r)
              local xs = {}
              for k, n in ipairs(names) do xs[k] = r[IX[n]] end
              return rf(unpack(xs, 1, #names))
            end or nil,
          }
        end
        return checks
      end
      both("binary operators, comparisons, where and math functions with " ..
           "broadcasting, eager", inputs, checks_for(false))
      both("binary operators, comparisons, where and math functions with " ..
           "broadcasting, chunked differently per operand", inputs,
           checks_for(true))
    end)

    ------------------------------------------------------------------------
    describe("reductions", function()
      local S3 = {4, 5, 6}
      local C3 = {{1, 3}, {2, 2, 1}, {4, 2}}
      reduction_suite("every reduction of float64 with NaNs", function()
        local x = rand(21, S3, "float64", {nan = 0.08})
        x:set(1, 1, 1, NAN)
        return x
      end, ALL_OPS, AXES3, S3, C3)
      reduction_suite("plain reductions of float64", function()
        return rand(22, S3, "float64")
      end, PLAIN_OPS, AXES3, S3, C3)
      reduction_suite("reductions of int32 (ties for argmin/argmax)", function()
        return rand(23, S3, "int32", {lo = -4, hi = 4})
      end, {"sum", "mean", "min", "max", "std", "var", "argmin", "argmax",
            "any", "all", "nansum", "nanmin", "nanmax", "nanmean", "nanargmax"},
        AXES3, S3, C3)
      reduction_suite("prod of int64", function()
        return rand(24, S3, "int64", {values = {-1, 1, 1, -1, 2, 1, -1}})
      end, {"prod", "nanprod"}, AXES3, S3, C3)
      reduction_suite("reductions of float32", function()
        return rand(25, S3, "float32", {nan = 0.05})
      end, {"sum", "mean", "min", "max", "std", "var", "argmax", "nansum",
            "nanmean", "nanmax", "nanvar", "nanargmin"},
        {{nil}, {2}, {{1, 3}}}, S3, C3, {rtol = 1e-5})
      reduction_suite("reductions of bool", function()
        return rand(26, S3, "bool", {p = 0.85})
      end, {"any", "all", "sum", "mean", "min", "max", "argmax", "argmin"},
        {{nil}, {1}, {3}, {{1, 2}}}, S3, C3)
      reduction_suite("reductions of uint8", function()
        return rand(27, S3, "uint8", {lo = 0, hi = 255})
      end, {"sum", "mean", "min", "max", "argmin", "std"},
        {{nil}, {2}, {{2, 3}}}, S3, C3)
      reduction_suite("reductions over a zero-length axis (0, 4)", function()
        return N.zeros({0, 4})
      end, {"sum", "prod", "mean", "min", "max", "argmin", "any", "all",
            "var", "nansum", "nanmax"},
        {{nil}, {1}, {2}, {-1}}, {0, 4}, {2, {1, 3}})
      reduction_suite("reductions of a (3, 0, 2) array", function()
        return N.zeros({3, 0, 2}, "int32")
      end, {"sum", "prod", "mean", "min", "max", "argmax", "any", "all", "std"},
        {{nil}, {1}, {2}, {3}, {{1, 3}}}, {3, 0, 2}, {{2, 1}, 1, {1, 1}})
      reduction_suite("reductions with many blocks and split_every = 3",
        function() return rand(28, {40, 3}, "float64", {nan = 0.1}) end,
        {"sum", "mean", "var", "min", "max", "argmin", "argmax", "nanmean",
         "nanstd", "nanargmax", "nanmin"},
        {{nil}, {1}, {2}}, {40, 3}, {3, {1, 2}}, {split_every = 3})

      -- NaN-only slices: what NumPy gives, or its error
      local function W()
        local w = make({1, NAN, 3, -2,
                        NAN, NAN, NAN, NAN,
                        -1, 5, NAN, 0}, {3, 4}, "float64")
        return w
      end
      local WCH = {{2, 1}, {1, 3}}
      local wchecks = {}
      for _, chunked in ipairs{false, true} do
        local function prep(x) return chunked and lz(x, WCH) or x end
        local tag = chunked and " chunked" or ""
        local function add(label, py, f, raises)
          wchecks[#wchecks + 1] = {label = label .. tag, py = py, lua = f,
                                   raises = raises}
        end
        add("nanmin{axis=2}", "np.nanmin(a[0], axis=1)",
            function(a) return prep(a[1]):nanmin{axis = 2} end)
        add("nanmax{axis=2}", "np.nanmax(a[0], axis=1)",
            function(a) return prep(a[1]):nanmax{axis = 2} end)
        add("nansum{axis=2}", "np.nansum(a[0], axis=1)",
            function(a) return prep(a[1]):nansum{axis = 2} end)
        add("nanmean{axis=2}", "np.nanmean(a[0], axis=1)",
            function(a) return prep(a[1]):nanmean{axis = 2} end)
        add("nanvar{axis=2}", "np.nanvar(a[0], axis=1)",
            function(a) return prep(a[1]):nanvar{axis = 2} end)
        add("nanargmin{axis=1}", "np.nanargmin(a[0], axis=0) + 1",
            function(a) return prep(a[1]):nanargmin{axis = 1} end)
        add("nanargmin{axis=2} (a row of NaNs)", "np.nanargmin(a[0], axis=1)",
            function(a) return prep(a[1]):nanargmin{axis = 2} end, "NaN")
        add("nanargmax{axis=2} (a row of NaNs)", "np.nanargmax(a[0], axis=1)",
            function(a) return prep(a[1]):nanargmax{axis = 2} end, "NaN")
        add("argmin{axis=2}", "np.argmin(a[0], axis=1) + 1",
            function(a) return prep(a[1]):argmin{axis = 2} end)
        add("argmax{axis=1}", "np.argmax(a[0], axis=0) + 1",
            function(a) return prep(a[1]):argmax{axis = 1} end)
        add("argmin()", "np.argmin(a[0]) + 1",
            function(a) return prep(a[1]):argmin() end)
        add("nanargmin()", "np.nanargmin(a[0]) + 1",
            function(a) return prep(a[1]):nanargmin() end)
        add("min{axis=1}", "np.min(a[0], axis=0)",
            function(a) return prep(a[1]):min{axis = 1} end)
        add("max()", "np.max(a[0])", function(a) return prep(a[1]):max() end)
        add("sum()", "np.sum(a[0])", function(a) return prep(a[1]):sum() end)
        add("nansum()", "np.nansum(a[0])",
            function(a) return prep(a[1]):nansum() end)
        add("nanstd()", "np.nanstd(a[0])",
            function(a) return prep(a[1]):nanstd() end)
        add("all-NaN row: nanmin()", "np.nanmin(a[0][1])",
            function(a) return prep(a[1]):slice{2}:nanmin() end)
        add("all-NaN row: nansum()", "np.nansum(a[0][1])",
            function(a) return prep(a[1]):slice{2}:nansum() end)
        add("all-NaN row: nanmean()", "np.nanmean(a[0][1])",
            function(a) return prep(a[1]):slice{2}:nanmean() end)
        add("all-NaN row: nanargmin()", "np.nanargmin(a[0][1])",
            function(a) return prep(a[1]):slice{2}:nanargmin() end, "NaN")
        add("all-NaN row: nanargmax()", "np.nanargmax(a[0][1])",
            function(a) return prep(a[1]):slice{2}:nanargmax() end, "NaN")
        add("empty: min()", "np.min(a[0][:0])",
            function(a) return prep(a[1]):slice{{1, 0}}:min() end, "empty")
        add("empty: nanargmax()", "np.nanargmax(a[0][:0])",
            function(a) return prep(a[1]):slice{{1, 0}}:nanargmax() end,
            "empty")
      end
      np_case("NaN-only slices and empty reductions",
              function() return {W()} end, wchecks)

      -- var and std divide by max(n - ddof, 0), as NumPy does
      local dchecks = {}
      for _, chunked in ipairs{false, true} do
        for _, c in ipairs{{"var", 1, 1}, {"var", 1, 2}, {"var", 2, 2},
                           {"var", 3, 2}, {"std", 3, 2}, {"nanvar", 2, 2},
                           {"var", 1, 3}, {"std", 2, 1}, {"var", 1, 4}} do
          local op, ddof, k = c[1], c[2], c[3]
          dchecks[#dchecks + 1] = {
            label = ("%s%s{ddof=%d} of input %d"):format(
              chunked and "chunked " or "", op, ddof, k),
            py = ("np.%s(a[%d], ddof=%d)"):format(op, k - 1, ddof),
            number = true,
            lua = function(a)
              local x = chunked and lz(a[k], 1) or a[k]
              return x[op](x, {ddof = ddof})
            end,
            ref = function(r)
              return RED[op](r[k].data, ddof)
            end,
          }
        end
      end
      both("var and std with ddof >= n", function()
        return {make({1, 2}, {2}, "float64"), make({1, 2.5}, {2}, "float64"),
                N.zeros({0}), make({3, 5, 4, 7}, {2, 2}, "int32")}
      end, dchecks)

      it("propagates NaN in min/max and skips it in nanmin/nanmax (reference)",
         function()
        for _, chunked in ipairs{false, true} do
          local w = W()
          local x = chunked and lz(w, WCH) or w
          local function v(r) return value_of(function() return r end) end
          local mn = v(x:min())
          assert.is_true(mn ~= mn)
          assert.are.equal(-2, v(x:nanmin()))
          assert.are.equal(5, v(x:nanmax()))
          assert.are.equal(2, v(x:argmin()))        -- the first NaN
          assert.are.equal(4, v(x:nanargmin()))     -- -2 at (1, 4)
          assert.are.equal(10, v(x:nanargmax()))    -- 5 at (3, 2)
          assert.are.equal(6, v(x:nansum()))
          assert.are.equal(1, v(x:nanmean()))
          local rmin = v(x:nanmin{axis = 2})
          assert.are.equal(-2, rmin:get(1))
          assert.is_true(rmin:get(2) ~= rmin:get(2))
          assert.are.equal(-1, rmin:get(3))
          assert.are.equal(0, v(x:nansum{axis = 2}):get(2))
          assert.matches("NaN", errmsg(function()
            return v(x:nanargmin{axis = 2})
          end))
          assert.matches("NaN", errmsg(function()
            return v(x:slice{2}:nanargmax())
          end))
        end
      end)
    end)

    ------------------------------------------------------------------------
    describe("slicing", function()
      -- {lask spec, NumPy index}
      local S2 = {
        {{}, "[...]"},
        {{{2, 5}}, "[1:5]"},
        {{{2, 5}, {2, -2}}, "[1:5, 1:-1]"},
        {{{-1, 1, -1}}, "[::-1]"},
        {{{nil, nil, -1}, {nil, nil, -2}}, "[::-1, ::-2]"},
        {{{6, 2, -2}, {1, 6, 3}}, "[5:0:-2, 0:6:3]"},
        {{{-2, -5, -1}}, "[5:1:-1]"},
        {{{4, 2}}, "[3:1]"},
        {{{2, 4, -1}}, "[1:4:-1]"},
        {{{}, {5, 2}}, "[:, 4:1]"},
        {{{1, 100}, {-100, 3}}, "[0:100, -100:3]"},
        {{{100, 1, -3}, {-100, 100, 4}}, "[100::-3, -100:100:4]"},
        {{{1, -1, 10}}, "[0::10]"},
        {{3, {2, 4}}, "[2, 1:4]"},
        {{-1}, "[-1]"},
        {{{}, -2}, "[:, -2]"},
        {{-7, -6}, "[0, 0]"},
        {{{7, 7}, {6, 1, -5}}, "[6:7, 5::-5]"},
        {{{-7, -7}}, "[0:1]"},
        {{{3, 3, -1}}, "[2:1:-1]"},
        {{{5, 1, -1}, {}}, "[4::-1, :]"},
        {{{2, 7, 2}, {-1, 1, -1}}, "[1:7:2, ::-1]"},
      }
      local S3 = {
        {{{2, 4}, {-1, 1, -2}, 3}, "[1:4, ::-2, 2]"},
        {{2, 3, {2, 6, 2}}, "[1, 2, 1:6:2]"},
        {{{4, 4}, {}, {1, 1}}, "[3:4, :, 0:1]"},
        {{{-1, 1, -3}, {5, 1, -4}, {-2, -6, -2}}, "[::-3, 4::-4, 4::-2]"},
        {{{3, 1}, {}, {}}, "[2:0, :, :]"},
      }
      local Z = {
        {{{1, 2}}, "[0:2]"},
        {{{}, {-1, 1, -1}}, "[:, ::-1]"},
        {{{-1, 1, -1}, 2}, "[::-1, 1]"},
      }
      local function inputs()
        return {N.arange(42):reshape{7, 6}, rand(31, {4, 5, 6}, "float64"),
                N.zeros({0, 3}, "int32"),
                N.arange(42):reshape{7, 6}:astype("uint8")}
      end
      local CH = {{{3, 1, 3}, {2, 4}}, {{1, 3}, {2, 2, 1}, {4, 2}}, {2, {1, 2}},
                  {{7}, {1, 1, 4}}}
      local function checks_for(chunked)
        local checks = {}
        local function add(k, spec, py, spec2, py2)
          checks[#checks + 1] = {
            label = ("input %d slice%s"):format(k, py .. (py2 or "")),
            py = ("a[%d]%s%s"):format(k - 1, py, py2 or ""),
            lua = function(a)
              local x = a[k]
              if chunked then x = lz(x, CH[k]) end
              local r = x:slice(spec)
              if spec2 then r = r:slice(spec2) end
              return r
            end,
            ref = function(r)
              local v = R.slice(r[k], spec)
              if spec2 then v = R.slice(v, spec2) end
              return v
            end,
          }
        end
        for _, s in ipairs(S2) do add(1, s[1], s[2]) end
        for _, s in ipairs(S3) do add(2, s[1], s[2]) end
        for _, s in ipairs(Z) do add(3, s[1], s[2]) end
        add(4, {{-2, 2, -2}, {-1, 1, -2}}, "[5:0:-2, ::-2]")
        -- slices of slices
        add(1, {{-1, 1, -1}, {2, 6}}, "[::-1, 1:6]", {{2, 6, 2}, {-1, 1, -2}},
            "[1:6:2, ::-2]")
        add(1, {{2, 6, 2}}, "[1:6:2]", {{-1, 1, -1}, 3}, "[::-1, 2]")
        add(2, {{}, {-1, 1, -1}}, "[:, ::-1]", {2, {2, 4}, {-1, 1, -3}},
            "[1, 1:4, ::-3]")
        return checks
      end
      both("slices with steps, negative steps, negative indexes and empty " ..
           "ranges, eager", inputs, checks_for(false))
      both("slices with steps, negative steps, negative indexes and empty " ..
           "ranges, chunked unevenly", inputs, checks_for(true))
    end)

    ------------------------------------------------------------------------
    describe("structure", function()
      local function inputs()
        return {rand(41, {2, 3, 4}, "float64", {nan = 0.1}),
                rand(42, {4, 6}, "int32", {lo = 0, hi = 250}),
                rand(43, {3, 5}, "float64", {lo = 0, hi = 250})}
      end
      local CH = {{1, {2, 1}, {3, 1}}, {{1, 3}, {4, 2}}, {{2, 1}, {2, 3}}}
      local function checks_for(chunked)
        local checks = {}
        local function prep(a, k)
          return chunked and lz(a[k], CH[k]) or a[k]
        end
        local function add(label, py, f, ref, dtype)
          checks[#checks + 1] = {label = label, py = py, dtype = dtype,
            lua = function(a) return f(function(k) return prep(a, k) end) end,
            ref = ref}
        end
        add("T()", "a[0].T", function(x) return x(1):T() end,
            function(r) return R.transpose(r[1]) end)
        add("transpose{2, 3, 1}", "np.transpose(a[0], (1, 2, 0))",
            function(x) return x(1):transpose{2, 3, 1} end,
            function(r) return R.transpose(r[1], {2, 3, 1}) end)
        add("transpose{-1, 1, 2}", "np.transpose(a[0], (2, 0, 1))",
            function(x) return x(1):transpose{-1, 1, 2} end,
            function(r) return R.transpose(r[1], {3, 1, 2}) end)
        add("reshape{6, 4}", "a[0].reshape(6, 4)",
            function(x) return x(1):reshape{6, 4} end,
            function(r) return R.reshape(r[1], {6, 4}) end)
        add("reshape{-1}", "a[0].reshape(-1)",
            function(x) return x(1):reshape{-1} end,
            function(r) return R.reshape(r[1], {24}) end)
        add("reshape{4, -1, 3}", "a[0].reshape(4, -1, 3)",
            function(x) return x(1):reshape{4, -1, 3} end,
            function(r) return R.reshape(r[1], {4, 2, 3}) end)
        add("reshape{3, 8}", "a[0].reshape(3, 8)",
            function(x) return x(1):reshape{3, 8} end,
            function(r) return R.reshape(r[1], {3, 8}) end)
        add("T():reshape{4, 6}", "a[0].T.reshape(4, 6)",
            function(x) return x(1):T():reshape{4, 6} end,
            function(r) return R.reshape(R.transpose(r[1]), {4, 6}) end)
        add("slice():reshape{-1}", "a[0][:, ::-1].reshape(-1)",
            function(x) return x(1):slice{{}, {-1, 1, -1}}:reshape{-1} end,
            function(r)
              return R.reshape(R.slice(r[1], {{}, {-1, 1, -1}}), {24})
            end)
        add("int32 reshape{2, 12}:T()", "a[1].reshape(2, 12).T",
            function(x) return x(2):reshape{2, 12}:T() end,
            function(r) return R.transpose(R.reshape(r[2], {2, 12})) end)
        for _, dt in ipairs(N.dtypes) do
          add("int32 astype " .. dt, ("a[1].astype('%s')"):format(dt),
              function(x) return x(2):astype(dt) end, nil, dt)
          add("float64 astype " .. dt, ("a[2].astype('%s')"):format(dt),
              function(x) return x(3):astype(dt) end, nil, dt)
        end
        add("float64 with NaN astype bool", "a[0].astype(bool)",
            function(x) return x(1):astype("bool") end,
            function(r) return R.map(function(v) return v ~= 0 end, r[1]) end,
            "bool")
        add("float64 astype int32 (truncates)",
            "a[0][a[0] == a[0]].astype(np.int32)",
            function(x)
              local v = x(1)
              -- the non-NaN values, in C order
              local flat = {}
              for _, e in ipairs(value_of(function() return v end):flat()) do
                if e == e then flat[#flat + 1] = e end
              end
              local f = N.from_table(flat)
              if chunked then f = lz(f, {5}) end
              return f:astype("int32")
            end, nil, "int32")
        return checks
      end
      both("transposes, reshapes and casts, eager", inputs, checks_for(false))
      both("transposes, reshapes and casts, chunked", inputs, checks_for(true))

      local function cinputs()
        return {rand(44, {3, 4}, "int32", {lo = -50, hi = 50}),
                rand(45, {2, 4}, "float32"),
                rand(46, {3, 2}, "int64"), rand(47, {3, 4}, "float64")}
      end
      local function cchecks(chunked)
        local CCH = {{{2, 1}, {1, 3}}, {{1, 1}, {4}}, {{1, 2}, 1}, {2, {3, 1}}}
        local function x(a, k) return chunked and lz(a[k], CCH[k]) or a[k] end
        local M = chunked and la or N
        return {
          {label = "concatenate rows int32 + float32", py =
             "np.concatenate([a[0], a[1]], axis=0)",
           lua = function(a) return M.concatenate({x(a, 1), x(a, 2)}, 1) end,
           ref = function(r) return R.concatenate({r[1], r[2]}, 1) end,
           dtype = "float64"},
          {label = "concatenate columns int32 + int64", py =
             "np.concatenate([a[0], a[2]], axis=1)",
           lua = function(a) return M.concatenate({x(a, 1), x(a, 3)}, 2) end,
           ref = function(r) return R.concatenate({r[1], r[3]}, 2) end,
           dtype = "int64"},
          {label = "concatenate axis -1, three arrays", py =
             "np.concatenate([a[0], a[2], a[3]], axis=-1)",
           lua = function(a)
             return M.concatenate({x(a, 1), x(a, 3), x(a, 4)}, -1)
           end,
           ref = function(r) return R.concatenate({r[1], r[3], r[4]}, 2) end,
           dtype = "float64"},
          {label = "concatenate default axis",
           py = "np.concatenate([a[3], a[0]])",
           lua = function(a) return M.concatenate({x(a, 4), x(a, 1)}) end,
           ref = function(r) return R.concatenate({r[4], r[1]}, 1) end,
           dtype = "float64"},
          {label = "concatenate with an empty part", py =
             "np.concatenate([a[0], a[3][:0]], axis=0)",
           lua = function(a)
             return M.concatenate({x(a, 1), x(a, 4):slice{{1, 0}}}, 1)
           end,
           ref = function(r)
             return R.concatenate({r[1], R.slice(r[4], {{1, 0}})}, 1)
           end,
           dtype = "float64"},
          {label = "stack axis 1", py = "np.stack([a[0], a[3]])",
           lua = function(a) return M.stack({x(a, 1), x(a, 4)}) end,
           dtype = "float64"},
          {label = "stack axis 2", py = "np.stack([a[0], a[3], a[0]], axis=1)",
           lua = function(a) return M.stack({x(a, 1), x(a, 4), x(a, 1)}, 2) end,
           dtype = "float64"},
          {label = "stack axis 3", py = "np.stack([a[0], a[0]], axis=2)",
           lua = function(a) return M.stack({x(a, 1), x(a, 1)}, 3) end,
           dtype = "int32"},
          {label = "stack axis -1", py = "np.stack([a[3], a[3]], axis=-1)",
           lua = function(a) return M.stack({x(a, 4), x(a, 4)}, -1) end,
           dtype = "float64"},
        }
      end
      both("concatenates and stacks, eager", cinputs, cchecks(false))
      both("concatenates and stacks, chunked", cinputs, cchecks(true))
    end)

    ------------------------------------------------------------------------
    describe("linear algebra", function()
      local function inputs()
        return {
          rand(51, {4, 5}, "float64"),                        -- P a[0]
          rand(52, {5, 3}, "float64"),                        -- Q a[1]
          rand(53, {4, 5}, "int64"),                          -- IP a[2]
          rand(54, {5, 3}, "int64"),                          -- IQ a[3]
          rand(55, {5, 3}, "float32"),                        -- F a[4]
          rand(56, {4, 5}, "int32"),                          -- K a[5]
          rand(57, {5}, "float64"),                           -- v a[6]
          rand(58, {5}, "float64"),                           -- w a[7]
          rand(59, {2, 3, 4}, "float64"),                     -- T3 a[8]
          rand(60, {3, 4}, "float64"),                        -- T2 a[9]
          rand(61, {4, 3, 2}, "float64"),                     -- T4 a[10]
          rand(62, {5}, "int64"),                             -- iv a[11]
          rand(63, {4, 5}, "uint8", {lo = 0, hi = 20}),       -- U a[12]
          rand(64, {5, 3}, "uint8", {lo = 0, hi = 20}),       -- UQ a[13]
        }
      end
      local CH = {{{1, 3}, {2, 3}}, {{3, 2}, {2, 1}}, {2, 2}, {{4, 1}, 3},
                  {{1, 4}, {1, 2}}, {{4}, {3, 2}}, {{2, 3}}, {{4, 1}},
                  {1, {1, 2}, {3, 1}}, {{2, 1}, {1, 3}}, {{1, 3}, 2, 1}, {2},
                  {{2, 2}, {1, 4}}, {{5}, {2, 1}}}
      local function checks_for(chunked)
        local function x(a, k) return chunked and lz(a[k], CH[k]) or a[k] end
        local function mm(i, j, label, dtype)
          return {label = label, py = ("a[%d] @ a[%d]"):format(i - 1, j - 1),
                  dtype = dtype,
                  lua = function(a) return x(a, i):matmul(x(a, j)) end,
                  ref = function(r)
                    local m = R.matmul(r[i], r[j])
                    if dtype == "uint8" then
                      for k, v in ipairs(m.data) do m.data[k] = v % 256 end
                    end
                    return m
                  end}
        end
        local checks = {
          mm(1, 2, "P @ Q float64", "float64"),
          mm(3, 4, "IP @ IQ int64", "int64"),
          mm(6, 5, "K(int32) @ F(float32)", "float64"),
          mm(3, 2, "IP(int64) @ Q(float64)", "float64"),
          mm(13, 14, "U @ UQ uint8", "uint8"),
          mm(7, 8, "v @ w (1-d @ 1-d)", "float64"),
          mm(12, 12, "iv @ iv int64 (1-d @ 1-d)", "int64"),
          mm(7, 2, "v @ Q (1-d @ 2-d)", "float64"),
          mm(1, 7, "P @ v (2-d @ 1-d)", "float64"),
          mm(3, 12, "IP @ iv (2-d @ 1-d)", "int64"),
          {label = "dot(P, Q)", py = "np.dot(a[0], a[1])",
           lua = function(a) return la.dot(x(a, 1), x(a, 2)) end,
           ref = function(r) return R.matmul(r[1], r[2]) end},
          {label = "dot(P:T(), P)", py = "np.dot(a[0].T, a[0])",
           lua = function(a) return la.dot(x(a, 1):T(), x(a, 1)) end,
           ref = function(r) return R.matmul(R.transpose(r[1]), r[1]) end},
          {label = "tensordot(T3, T2, 2)", py = "np.tensordot(a[8], a[9], 2)",
           lua = function(a) return la.tensordot(x(a, 9), x(a, 10), 2) end},
          {label = "tensordot(T3, T4, 1)", py = "np.tensordot(a[8], a[10], 1)",
           lua = function(a) return la.tensordot(x(a, 9), x(a, 11), 1) end},
          {label = "tensordot(T3, T4, {{2, 3}, {2, 1}})",
           py = "np.tensordot(a[8], a[10], axes=([1, 2], [1, 0]))",
           lua = function(a)
             return la.tensordot(x(a, 9), x(a, 11), {{2, 3}, {2, 1}})
           end},
          {label = "tensordot(T3, T4, {1, 3})",
           py = "np.tensordot(a[8], a[10], axes=(0, 2))",
           lua = function(a)
             return la.tensordot(x(a, 9), x(a, 11), {1, 3})
           end},
          {label = "tensordot(P, Q, 1)", py = "np.tensordot(a[0], a[1], 1)",
           lua = function(a) return la.tensordot(x(a, 1), x(a, 2), 1) end,
           ref = function(r) return R.matmul(r[1], r[2]) end},
          {label = "tensordot(v, w, 0) (outer)",
           py = "np.tensordot(a[6], a[7], 0)",
           lua = function(a) return la.tensordot(x(a, 7), x(a, 8), 0) end,
           ref = function(r)
             return R.matmul(R.reshape(r[7], {5, 1}), R.reshape(r[8], {1, 5}))
           end},
        }
        return checks
      end
      both("matmul, dot and tensordot, eager", inputs, checks_for(false))
      both("matmul, dot and tensordot, chunked unevenly", inputs,
           checks_for(true))

      it("rejects mismatched inner dimensions", function()
        local a, b = N.zeros({3, 4}), N.zeros({3, 4})
        local msg = errmsg(a.matmul, a, b)
        assert.matches("matmul: inner dimensions differ (4 and 3)", msg, 1,
                       true)
        assert.is_nil(msg:find("matmul: matmul", 1, true))
        -- no position inside lask's own modules (messages start "lask:")
        assert.matches("^lask: matmul", msg)
        local x, y = la.zeros({3, 4}, {chunks = 2}), la.zeros({3, 4})
        assert.matches("inner dimensions differ %(4 and 3%)",
                       errmsg(x.matmul, x, y))
        assert.matches("differ", errmsg(la.tensordot, x, y, {{1}, {2}}))
      end)
    end)

    ------------------------------------------------------------------------
    describe("constructors", function()
      local function C(label, py, f, dtype)
        return {label = label, py = py, lua = f, dtype = dtype}
      end
      np_case("constructors give NumPy's values", function() return {} end, {
        C("la.arange(0, 10, 3)", "np.arange(0, 10, 3)",
          function() return la.arange(0, 10, 3, {chunks = 2}) end),
        C("la.arange(5)", "np.arange(5)", function() return la.arange(5) end),
        C("la.arange(2.5, 10, 0.7)", "np.arange(2.5, 10, 0.7)",
          function() return la.arange(2.5, 10, 0.7, {chunks = 4}) end),
        C("la.arange(10, 0, -3)", "np.arange(10, 0, -3)",
          function() return la.arange(10, 0, -3, {chunks = 1}) end),
        C("la.arange(1, 2.2, 0.4)", "np.arange(1, 2.2, 0.4)",
          function() return la.arange(1, 2.2, 0.4, {chunks = 2}) end),
        C("la.arange(0, 0.3, 0.1)", "np.arange(0, 0.3, 0.1)",
          function() return la.arange(0, 0.3, 0.1) end),
        C("la.arange(3, 3)", "np.arange(3, 3)",
          function() return la.arange(3, 3) end),
        C("la.arange(0, 7, {dtype=int32})", "np.arange(0, 7, dtype=np.int32)",
          function() return la.arange(0, 7, {dtype = "int32", chunks = 3}) end),
        C("la.linspace(-1, 2, 7)", "np.linspace(-1, 2, 7)",
          function() return la.linspace(-1, 2, 7, {chunks = 3}) end),
        C("la.linspace(0, 1, 1)", "np.linspace(0, 1, 1)",
          function() return la.linspace(0, 1, 1) end),
        C("la.linspace(0.1, 0.7, 13)", "np.linspace(0.1, 0.7, 13)",
          function() return la.linspace(0.1, 0.7, 13, {chunks = 5}) end),
        C("la.linspace(2, 3, 0)", "np.linspace(2, 3, 0)",
          function() return la.linspace(2, 3, 0) end),
        C("la.eye(4)", "np.eye(4)",
          function() return la.eye(4, {chunks = 3}) end),
        C("la.eye(3, {m = 5})", "np.eye(3, 5)",
          function() return la.eye(3, {m = 5, chunks = {2, 2}}) end),
        C("la.eye(5, {m = 2, dtype = int32})", "np.eye(5, 2, dtype=np.int32)",
          function()
            return la.eye(5, {m = 2, dtype = "int32", chunks = 2})
          end),
        C("la.full({3, 4}, 2.5)", "np.full((3, 4), 2.5)",
          function() return la.full({3, 4}, 2.5, {chunks = 2}) end),
        C("la.full({2, 2}, 7)", "np.full((2, 2), 7)",
          function() return la.full({2, 2}, 7) end),
        C("la.full({3}, true)", "np.full(3, True)",
          function() return la.full({3}, true, {chunks = 2}) end),
        C("la.zeros int32", "np.zeros((2, 3), dtype=np.int32)",
          function()
            return la.zeros({2, 3}, {dtype = "int32", chunks = {1, 2}})
          end),
        C("la.ones({0, 3})", "np.ones((0, 3))",
          function() return la.ones({0, 3}, {chunks = 2}) end),
        C("la.ones uint8", "np.ones((3, 2), dtype=np.uint8)",
          function() return la.ones({3, 2}, {dtype = "uint8"}) end),
        C("la.from_table", "np.array([[1, 2, 3], [4, 5, 6]])",
          function()
            return la.from_table({{1, 2, 3}, {4, 5, 6}}, {chunks = {1, {2, 1}}})
          end),
        C("la.from_table float32",
          "np.array([0.5, 1.25, -2], dtype=np.float32)",
          function()
            return la.from_table({0.5, 1.25, -2}, {dtype = "float32"})
          end),
        C("N.arange(2, 11, 3)", "np.arange(2, 11, 3)",
          function() return N.arange(2, 11, 3) end),
        C("N.arange(0.5, 2, 0.5)", "np.arange(0.5, 2, 0.5)",
          function() return N.arange(0.5, 2, 0.5) end),
        C("N.linspace(-1, 1, 5)", "np.linspace(-1, 1, 5)",
          function() return N.linspace(-1, 1, 5) end),
        C("N.eye(3, 4)", "np.eye(3, 4)", function() return N.eye(3, 4) end),
        C("N.full({2}, 3, int32)", "np.full(2, 3, dtype=np.int32)",
          function() return N.full({2}, 3, "int32") end),
      })
    end)

    ------------------------------------------------------------------------
    describe(".npy files", function()
      local DT = N.dtypes
      local function base24(dt)
        return N.arange(24):reshape{2, 3, 4}:astype(dt)
      end
      -- lask writes these (eager writer, views, chunked writer)
      local function inputs()
        local t = {}
        for i, dt in ipairs(DT) do t[i] = base24(dt) end        -- a[0..5]
        t[7] = N.arange(24):reshape{2, 3, 4}:T()                -- a[6]
        t[8] = N.arange(42):reshape{7, 6}:slice{{-1, 1, -2}, {2, 6, 3}} -- a[7]
        t[9] = N.full({}, 7.25)                                 -- a[8]
        t[10] = N.zeros({0, 3}, "int32")                        -- a[9]
        t[11] = lz(N.arange(56):reshape{8, 7}:astype("float32"),
                   {{3, 1, 4}, {2, 5}})                         -- a[10]
        t[12] = lz(base24("int64"), {{1, 1}, {2, 1}, {1, 3}}):T() -- a[11]
        t[13] = la.ones({5}, {dtype = "bool", chunks = 2})      -- a[12]
        t[14] = make({NAN, INF, -INF, -0.0, 1e-310, 1.5}, {6},
                     "float64")                                 -- a[13]
        return t
      end
      local checks = {}
      for i, dt in ipairs(DT) do
        checks[#checks + 1] = {
          label = "lask writes " .. dt,
          py = ("same(a[%d], np.arange(24).reshape(2, 3, 4).astype('%s'))")
            :format(i - 1, dt),
          lua = function() return true end,
        }
        checks[#checks + 1] = {
          label = "lask writes " .. dt .. " byte for byte as np.save",
          py = ("file_bytes(P(%d)) == npy_bytes(np.arange(24)" ..
                ".reshape(2, 3, 4).astype('%s'))"):format(i - 1, dt),
          lua = function() return true end,
        }
      end
      local function T(label, py)
        checks[#checks + 1] = {label = label, py = py,
                               lua = function() return true end}
      end
      T("a transposed view", "same(a[6], np.arange(24).reshape(2, 3, 4).T)")
      T("a view with negative steps",
        "same(a[7], np.arange(42).reshape(7, 6)[::-2, 1:6:3])")
      T("a 0-d array", "same(a[8], np.asarray(7.25))")
      T("a 0-d array byte for byte",
        "file_bytes(P(8)) == npy_bytes(np.asarray(7.25))")
      T("an empty array", "same(a[9], np.zeros((0, 3), dtype=np.int32))")
      T("a chunked array, written by chunk",
        "same(a[10], np.arange(56).reshape(8, 7).astype(np.float32))")
      T("a chunked transposed array",
        "same(a[11], np.arange(24).reshape(2, 3, 4).T)")
      T("a chunked bool array", "same(a[12], np.ones(5, dtype=bool))")
      T("special floats", "same(a[13], np.array([np.nan, np.inf, -np.inf, " ..
        "-0.0, 1e-310, 1.5]))")
      T("negative zero keeps its sign", "bool(np.signbit(a[13][3]))")

      -- NumPy writes these; lask reads them whole and by chunk
      local function reads(label, py, expect, chunks)
        checks[#checks + 1] = {
          label = label, py = py,
          file = function(path, loaded)
            assert_close(loaded, expect())
            local x = la.from_npy(path, {chunks = chunks})
            assert(la.is_array(x), "from_npy did not give a lask array")
            local want = expect()
            assert(same_shape(x.shape, want.shape), "from_npy: shape")
            assert(x.dtype == want.dtype, "from_npy: dtype " .. x.dtype)
            local ok, msg = compare(x:compute(), want)
            if not ok then error("from_npy by chunk: " .. msg, 0) end
            -- a slice of the lazily read file
            if #want.shape >= 2 then
              local s = {{-1, 1, -1}, {2, want.shape[2]}}
              ok, msg = compare(x:slice(s):compute(), want:slice(s))
              if not ok then error("from_npy then slice: " .. msg, 0) end
            end
          end,
        }
      end
      reads("a Fortran-order float64 file",
            "np.asfortranarray(np.arange(24, dtype=np.float64)" ..
            ".reshape(2, 3, 4))",
            function() return base24("float64") end, {{1, 1}, {2, 1}, {3, 1}})
      reads("a Fortran-order int32 file",
            "np.asfortranarray(np.arange(42, dtype=np.int32).reshape(7, 6))",
            function() return N.arange(42):reshape{7, 6}:astype("int32") end,
            {{3, 1, 3}, {2, 4}})
      reads("a big-endian float64 file",
            "np.arange(24, dtype='>f8').reshape(2, 3, 4)",
            function() return base24("float64") end, {{1, 1}, 2, {3, 1}})
      reads("a big-endian int32 file",
            "np.arange(24, dtype='>i4').reshape(4, 6)",
            function() return N.arange(24):reshape{4, 6}:astype("int32") end,
            {{3, 1}, {5, 1}})
      reads("a big-endian int64 file",
            "np.arange(-12, 12, dtype='>i8').reshape(4, 6)",
            function() return (N.arange(24) - 12):reshape{4, 6} end, {3, 4})
      reads("a big-endian float32 file",
            "np.linspace(0, 1, 12).astype('>f4').reshape(3, 4)",
            function()
              return N.linspace(0, 1, 12):astype("float32"):reshape{3, 4}
            end,
            {{2, 1}, {1, 3}})
      reads("a big-endian Fortran-order file",
            "np.asfortranarray(np.arange(30, dtype='>f8').reshape(5, 6))",
            function() return N.arange(30):astype("float64"):reshape{5, 6} end,
            {{2, 3}, {4, 2}})
      reads("a bool file", "np.arange(12).reshape(3, 4) % 3 == 0",
            function() return (N.arange(12) % 3):eq(0):reshape{3, 4} end,
            {{2, 1}, 3})
      reads("a uint8 file",
            "(np.arange(20) * 13 % 256).astype(np.uint8).reshape(4, 5)",
            function()
              return ((N.arange(20) * 13) % 256):astype("uint8"):reshape{4, 5}
            end,
            {3, {1, 4}})
      reads("a 1-d file", "np.arange(10, dtype=np.int64)",
            function() return N.arange(10) end, {{3, 3, 4}})
      reads("an empty file", "np.zeros((0, 5), dtype=np.float32)",
            function() return N.zeros({0, 5}, "float32") end, {2, 2})
      np_case("reads and writes .npy files compatible with NumPy", inputs,
              checks)

      -- the fused path reading the same file NumPy reads
      np_case("fused lazy expressions over from_npy equal NumPy", function()
        return {rand(71, {6, 6}, "float64"), rand(72, {5, 7}, "int32")}
      end, {
        {label = "(x + x:T()):sum()", py = "np.sum(a[0] + a[0].T)",
         number = true,
         lua = function(_, p)
           local x = la.from_npy(p[1], {chunks = {{4, 2}, {3, 3}}})
           return (x + x:T()):sum()
         end},
        {label = "(x * 2 - x:T()):max{axis = 2}",
         py = "np.max(a[0] * 2 - a[0].T, axis=1)",
         lua = function(_, p)
           local x = la.from_npy(p[1], {chunks = {{4, 2}, {3, 3}}})
           return (x * 2 - x:T()):max{axis = 2}
         end},
        {label = "sqrt(abs(x)) + 1, then mean",
         py = "np.mean(np.sqrt(np.abs(a[0])) + 1)",
         number = true,
         lua = function(_, p)
           local x = la.from_npy(p[1], {chunks = 4})
           return (la.sqrt(la.abs(x)) + 1):mean()
         end},
        {label = "int32 file: (i % 3):eq(0):sum{axis = 1}",
         py = "np.sum(a[1] % 3 == 0, axis=0)",
         lua = function(_, p)
           local i = la.from_npy(p[2], {chunks = {2, {3, 4}}})
           return (i % 3):eq(0):sum{axis = 1}
         end},
        {label = "int32 file: where(i > 0, i, -i) * 1.5",
         py = "np.where(a[1] > 0, a[1], -a[1]) * 1.5",
         lua = function(_, p)
           local i = la.from_npy(p[2], {chunks = 3})
           return la.where(i:gt(0), i, -i) * 1.5
         end},
        {label = "from_npy(...):matmul(x:T())", py = "a[0] @ a[0].T",
         lua = function(_, p)
           local x = la.from_npy(p[1], {chunks = {{1, 5}, {2, 4}}})
           return x:matmul(x:T())
         end},
      })
    end)
  end)

  --------------------------------------------------------------------------
  describe(".npy files (without NumPy)", function()
    local function header(path)
      local s = assert(read_file(path))
      local hl = s:byte(9) + 256 * s:byte(10)
      return s:sub(1, 6), s:byte(7), s:byte(8), s:sub(11, 10 + hl), 10 + hl, s
    end

    it("writes NumPy's version 1.0 header, 64-byte aligned", function()
      local function dict(descr, shape)
        return ("'descr': '%s', 'fortran_order': False, 'shape': %s, }")
          :format(descr, shape)
      end
      local cases = {
        {N.zeros({2, 3}), dict("<f8", "(2, 3)")},
        {N.zeros({5}, "int32"), dict("<i4", "(5,)")},
        {N.zeros({}, "uint8"), dict("|u1", "()")},
        {N.zeros({0, 2}, "bool"), dict("|b1", "(0, 2)")},
        {N.zeros({1, 1, 1}, "float32"), dict("<f4", "(1, 1, 1)")},
        {N.zeros({3}, "int64"), dict("<i8", "(3,)")},
      }
      for _, c in ipairs(cases) do
        local path = tmpfile()
        c[1]:to_npy(path)
        local magic, major, minor, hdr, total, s = header(path)
        assert.are.equal("\147NUMPY", magic)
        assert.are.equal(1, major)
        assert.are.equal(0, minor)
        assert.are.equal(0, total % 64)
        assert.are.equal("{" .. c[2], hdr:match("^(.-)%s*\n$"))
        assert.are.equal(total + c[1].size * c[1].itemsize, #s)
      end
    end)

    it("round-trips every dtype, views, 0-d and empty arrays", function()
      local list = {}
      for _, dt in ipairs(N.dtypes) do
        list[#list + 1] = rand(81, {3, 4, 2}, dt, {lo = 0, hi = 100})
      end
      list[#list + 1] = rand(82, {5, 6}, "float64")
        :slice{{-1, 1, -2}, {2, 6, 2}}
      list[#list + 1] = rand(83, {3, 4}, "int32"):T()
      list[#list + 1] = N.full({}, -3.5)
      list[#list + 1] = N.zeros({2, 0, 3}, "uint8")
      list[#list + 1] = make({NAN, INF, -INF, 0, -1e-310}, {5}, "float64")
      for _, a in ipairs(list) do
        local path = tmpfile()
        a:to_npy(path)
        local b = N.load(path)
        assert_close(b, a, {rtol = 0})
        assert.is_true(b:is_contiguous())
        local x = la.from_npy(path, {chunks = 2})
        assert_close(x:compute(), a, {rtol = 0})
      end
    end)

    -- Builds a .npy file by hand: big-endian int32, Fortran order.
    local function be32(v)
      if v < 0 then v = v + 4294967296 end
      local b = {}
      for i = 4, 1, -1 do
        b[i] = string.char(v % 256)
        v = math.floor(v / 256)
      end
      return table.concat(b)
    end
    local function npy_by_hand(path, descr, fortran, shape, data)
      local sh = #shape == 1 and ("(%d,)"):format(shape[1]) or
        "(" .. table.concat(shape, ", ") .. ")"
      local dict = ("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }")
        :format(descr, fortran and "True" or "False", sh)
      local pad = 64 - (10 + #dict + 1) % 64
      if pad == 64 then pad = 0 end
      dict = dict .. string.rep(" ", pad) .. "\n"
      local n = #dict
      write_file(path, "\147NUMPY\1\0" ..
        string.char(n % 256, math.floor(n / 256)) .. dict .. data)
    end

    it("reads Fortran-order and big-endian files (made by hand), whole and " ..
       "by chunk", function()
      -- a[i][j] = 10 * i + j - 25 for i = 1..3, j = 1..4; Fortran order
      local data = {}
      for j = 1, 4 do
        for i = 1, 3 do data[#data + 1] = be32(10 * i + j - 25) end
      end
      local path = tmpfile()
      npy_by_hand(path, ">i4", true, {3, 4}, table.concat(data))
      local want = {}
      for i = 1, 3 do
        want[i] = {}
        for j = 1, 4 do want[i][j] = 10 * i + j - 25 end
      end
      local a = N.load(path)
      assert.are.equal("int32", a.dtype)
      assert.are.same(want, a:totable())
      local x = la.from_npy(path, {chunks = {{2, 1}, {1, 3}}})
      assert.are.same({{2, 1}, {1, 3}}, x.chunks)
      assert.are.same(want, x:compute():totable())
      assert.are.same({want[3][4], want[3][2]},
                      x:slice{3, {-1, 2, -2}}:compute():totable())
      -- little-endian uint8 in Fortran order
      local p2 = tmpfile()
      npy_by_hand(p2, "|u1", true, {2, 3}, string.char(1, 4, 2, 5, 3, 6))
      assert.are.same({{1, 2, 3}, {4, 5, 6}}, N.load(p2):totable())
      assert.are.same({{1, 2, 3}, {4, 5, 6}},
                      la.from_npy(p2, {chunks = {1, 2}}):compute():totable())
    end)

    it("rejects files it cannot read, naming the problem", function()
      local p = tmpfile()
      write_file(p, "not an npy file at all, just text\n")
      assert.matches("not an .npy file", errmsg(N.load, p))
      assert.matches("cannot open", errmsg(N.load, TMP .. "/missing.npy"))
      local p2 = tmpfile()
      npy_by_hand(p2, "<c16", false, {2}, string.rep("\0", 32))
      assert.matches("unsupported dtype", errmsg(N.load, p2))
      assert.matches("unsupported dtype", errmsg(la.from_npy, p2))
      local p3 = tmpfile()
      npy_by_hand(p3, "<f8", false, {4}, string.rep("\0", 16)) -- truncated
      assert.has_error(function() N.load(p3) end)
    end)
  end)

  --------------------------------------------------------------------------
  describe("integers, overlaps and files", function()
    it("adds int64 means and variances in floats, as NumPy", function()
      local big = 4611686018427387904 -- 2^62
      local a = N.full({3}, big, "int64")
      assert.are.equal(big + 0.0, a:mean())
      assert.are.equal(0, a:var())
      assert.are.equal(0, a:std())
      assert.are.same({big + 0.0, big + 0.0},
        N.full({2, 2}, big, "int64"):mean{axis = 1}:totable())
      for _, c in ipairs{1, 2, 3} do
        local x = la.full({3}, big, {dtype = "int64", chunks = c})
        assert.are.equal(big + 0.0, x:mean():compute())
        assert.are.equal(0, x:var():compute())
        assert.are.equal(big + 0.0, (x + 0):mean():compute())
      end
    end)

    it("assigns from a view of the same array as from a copy", function()
      local a = N.arange(0, 6)
      a:slice{{2, 6}}:assign(a:slice{{1, 5}})
      assert.are.same({0, 0, 1, 2, 3, 4}, a:totable())
      local m = N.arange(0, 9):reshape{3, 3}
      m:assign(m:T())
      assert.are.same({{0, 3, 6}, {1, 4, 7}, {2, 5, 8}}, m:totable())
      local r = N.arange(0, 5)
      r:assign(r:slice{{-1, 1, -1}})
      assert.are.same({4, 3, 2, 1, 0}, r:totable())
    end)

    it("writes .npy over its own input, and keeps the file on failure",
       function()
      local path = tmpfile("self.npy")
      N.arange(0, 6):to_npy(path)
      local x = la.from_npy(path, {chunks = 2})
      ;(x + 1):to_npy(path)
      assert.are.same({1, 2, 3, 4, 5, 6}, N.load(path):totable())
      local bad = la.ones({6}, {chunks = 2}):map_blocks(function()
        error("no block today")
      end)
      assert.matches("no block today", errmsg(bad.to_npy, bad, path))
      assert.are.same({1, 2, 3, 4, 5, 6}, N.load(path):totable())
    end)

    it("writes .npy through links, with long names, naming bad paths",
       function()
      local x = la.arange(0, 10, 1, {chunks = 3})
      local long = tmpfile(("L"):rep(200) .. ".npy")
      x:to_npy(long)
      assert.are.same(x:compute():totable(), N.load(long):totable())
      local real, link = tmpfile("real.npy"), tmpfile("link.npy")
      write_file(real, "")
      assert(sh_ok("chmod 640 " .. quote(real) .. " && ln -s " ..
                   quote(real) .. " " .. quote(link)))
      x:to_npy(link)
      assert.are.same(x:compute():totable(), N.load(real):totable())
      assert.is_true(sh_ok("test -L " .. quote(link)), "the link stays")
      local p = io.popen("stat -c %a " .. quote(real))
      assert.are.equal("640", p:read("l"))
      p:close()
      assert.matches("to_npy: cannot write /nonexistent_lask_dir/a.npy: ",
                     errmsg(x.to_npy, x, "/nonexistent_lask_dir/a.npy"))
      local left = io.popen("ls -a " .. quote(TMP) .. " | grep -c lask-")
      assert.are.equal("0", left:read("l"))
      left:close()
    end)

    it("names the culprit in stack and tensordot", function()
      local a, b = la.ones({2, 3}, {chunks = 1}), la.ones({2, 4}, {chunks = 1})
      assert.matches("stack: item 2 has shape {2, 4}, item 1 {2, 3}",
                     errmsg(la.stack, {a, b}))
      local x = la.ones({2, 2}, {chunks = 1})
      assert.matches("tensordot: axis 1 of x is listed twice",
                     errmsg(la.tensordot, x, x, {{1, 1}, {1, 2}}))
    end)

    it("refuses an integer scalar that does not fit the array's dtype",
       function()
      local u = N.from_table({0, 50, 200, 255}, "uint8")
      for _, f in ipairs{function() return u + 300 end,
                         function() return u - (-1) end,
                         function() return N.maximum(u, 300) end,
                         function() return N.where(u:gt(100), u, 300) end,
                         function() return N.from_table({1}, "int32") *
                                           4294967296 end} do
        assert.matches("does not fit", errmsg(f))
      end
      -- comparisons and in-range scalars are fine; floats promote
      assert.are.same({true, true, true, true}, u:lt(300):totable())
      assert.are.same({5, 55, 205, 4}, (u + 5):totable())
      assert.are.equal("float64", (u * 2.5).dtype)
      assert.matches("does not fit", errmsg(function()
        return (la.ones({2}, {dtype = "uint8", chunks = 1}) + 256):compute()
      end))
      -- and where values are stored
      assert.matches("assign: 300 does not fit uint8", errmsg(u.assign, u, 300))
      assert.matches("set: %-1 does not fit uint8", errmsg(u.set, u, 1, -1))
      assert.matches("full: 300 does not fit uint8",
                     errmsg(N.full, {2}, 300, "uint8"))
      assert.matches("full: 300 does not fit uint8",
                     errmsg(la.full, {2}, 300, {dtype = "uint8"}))
      u:set(1, 7)
      assert.are.equal(7, u:get(1))
    end)
  end)

  describe("axes and errors", function()
    local function eager() return N.zeros({2, 3, 4}) end
    local function chunked() return la.zeros({2, 3, 4}, {chunks = 2}) end
    for _, kind in ipairs{"eager", "chunked"} do
      local mk = kind == "eager" and eager or chunked
      it("rejects out-of-range axes in every reduction, naming the axis (" ..
         kind .. ")", function()
        for _, op in ipairs(ALL_OPS) do
          local x = mk()
          local f = x[op]
          for _, bad in ipairs{4, 0, -4, 10} do
            local msg = errmsg(function()
              return value_of(f, x, {axis = bad})
            end)
            assert.matches(op .. ": axis " .. bad .. " is out of range " ..
                           "for an array of 3 dimensions", msg, 1, true)
          end
          if op ~= "argmin" and op ~= "argmax" and op ~= "nanargmin" and
             op ~= "nanargmax" then
            local msg = errmsg(function()
              return value_of(f, x, {axis = {1, 5}})
            end)
            assert.matches("axis 5 is out of range", msg, 1, true)
            msg = errmsg(function() return value_of(f, x, {axis = {2, -2}}) end)
            assert.matches("repeated", msg, 1, true)
          else
            assert.matches("takes one axis", errmsg(function()
              return value_of(f, x, {axis = {1, 2}})
            end), 1, true)
          end
          assert.matches("axis must be an integer", errmsg(function()
            return value_of(f, x, {axis = 1.5})
          end), 1, true)
        end
      end)

      it("rejects broadcasting mismatches and bad transposes (" .. kind .. ")",
         function()
        local x = mk()
        assert.matches("broadcast",
                       errmsg(function() return x + N.zeros({5}) end))
        if kind == "eager" then
          assert.matches("shapes {2, 3, 4}, {5} do not broadcast", errmsg(
            function() return x + N.zeros({5}) end))
        end
        assert.matches("broadcast", errmsg(function() return x * mk():T() end))
        assert.matches("not a permutation", errmsg(function()
          return value_of(x.transpose, x, {1, 1, 2})
        end))
        assert.matches("cannot reshape", errmsg(function()
          return value_of(x.reshape, x, {5, 5})
        end))
        assert.matches("index 5 out of range on axis 3", errmsg(function()
          return value_of(x.slice, x, {{}, {}, 5})
        end))
        assert.matches("3 axes given for an array of 2", errmsg(function()
          local y = kind == "eager" and N.zeros({2, 2}) or la.zeros({2, 2})
          return value_of(y.slice, y, {{}, {}, {}})
        end))
        assert.matches("unknown dtype", errmsg(function()
          return value_of(x.astype, x, "complex128")
        end))
      end)

      it("rejects out-of-range axes of concatenate, stack and tensordot (" ..
         kind .. ")", function()
        local M = kind == "eager" and N or la
        local x, y = mk(), mk()
        assert.matches("concatenate: axis 4 is out of range", errmsg(function()
          return value_of(M.concatenate, {x, y}, 4)
        end))
        assert.matches("concatenate: axis %-4 is out of range",
          errmsg(function() return value_of(M.concatenate, {x, y}, -4) end))
        assert.matches("stack: axis 5 is out of range", errmsg(function()
          return value_of(M.stack, {x, y}, 5)
        end))
        assert.matches("concatenate: item 2", errmsg(function()
          return value_of(M.concatenate, {x, mk():T()}, 1)
        end))
        assert.matches("tensordot: axis 4 is out of range", errmsg(function()
          return value_of(la.tensordot, x, y, {{4}, {1}})
        end))
      end)
    end

    it("rejects bad chunks, shapes and options of chunked constructors",
       function()
      assert.matches("chunks: axis 1: lengths add up to 3, the axis has 4",
                     errmsg(la.zeros, {4}, {chunks = {{1, 2}}}))
      assert.matches("one entry per axis",
                     errmsg(la.zeros, {4, 4}, {chunks = {2}}))
      assert.matches("bad chunk length", errmsg(la.zeros, {4}, {chunks = {0}}))
      assert.matches("shape entry 2", errmsg(la.ones, {4, -1}))
      assert.matches("unknown option 'chunk'",
                     errmsg(la.ones, {4}, {chunk = 2}))
      assert.matches("unknown dtype", errmsg(la.ones, {4}, {dtype = "int16"}))
      assert.matches("seed", errmsg(la.random.random, {4}, {seed = -1}))
      assert.matches("step must not be 0", errmsg(la.arange, 0, 5, 0))
      assert.matches("split_every", errmsg(function()
        return la.ones({4}):sum{split_every = 1}
      end))
    end)
  end)

  --------------------------------------------------------------------------
  for _, sched in ipairs{"sync", "threads"} do
    describe("chunked arrays on " .. sched, function()
      setup(function() lask.config.set{scheduler = sched} end)
      teardown(function() lask.config.reset() end)

      it("normalizes chunks: sizes per axis, -1, auto and explicit lists",
         function()
        local x = la.zeros({10, 7}, {chunks = 3})
        assert.are.same({{3, 3, 3, 1}, {3, 3, 1}}, x.chunks)
        assert.are.same({10, 7}, x.shape)
        assert.are.equal(2, x.ndim)
        assert.are.equal(70, x.size)
        assert.are.equal("float64", x.dtype)
        assert.are.same({{4, 4, 2}, {7}},
                        la.zeros({10, 7}, {chunks = {4, -1}}).chunks)
        assert.are.same({{10}, {2, 2, 2, 1}},
                        la.zeros({10, 7}, {chunks = {"auto", 2}}).chunks)
        assert.are.same({{10}, {7}},
                        la.zeros({10, 7}, {chunks = "auto"}).chunks)
        assert.are.same({{10}, {7}}, la.zeros({10, 7}).chunks)
        assert.are.same({{3, 1, 6}, {2, 5}},
          la.zeros({10, 7}, {chunks = {{3, 1, 6}, {2, 5}}}).chunks)
        assert.are.same({{0}, {2, 1}}, la.zeros({0, 3}, {chunks = 2}).chunks)
        -- "auto" splits arrays too large for one block, covering the shape
        local big = la.zeros({4096, 8192}, {chunks = "auto"})
        local total, n = 0, 0
        for _, c in ipairs(big.chunks[1]) do total = total + c; n = n + 1 end
        assert.are.equal(4096, total)
        local t2 = 0
        for _, c in ipairs(big.chunks[2]) do t2 = t2 + c; n = n + 1 end
        assert.are.equal(8192, t2)
        assert.is_true(n > 2, "a 256 MB array should be split")
        -- a memory_limit makes smaller blocks, until cleared with false
        local blocks = function()
          local z = la.zeros({4096, 8192}, {chunks = "auto"})
          return #z.chunks[1] * #z.chunks[2]
        end
        lask.config.set{memory_limit = "256MB", num_workers = 2}
        local plain = #big.chunks[1] * #big.chunks[2]
        assert.is_true(blocks() > plain, "smaller blocks under a limit")
        lask.config.set{memory_limit = false}
        assert.are.equal(plain, blocks())
        lask.config.reset()
        local ints = la.arange(10, {chunks = 4})
        assert.are.equal("int64", ints.dtype)
        assert.are.same({{4, 4, 2}}, ints.chunks)
      end)

      it("computes constructors (reference values)", function()
        assert_close(la.zeros({3, 4}, {chunks = 2}):compute(),
                     {shape = {3, 4}, data = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                              0, 0}}, {dtype = "float64"})
        local o = la.ones({2, 3}, {chunks = {1, 2}, dtype = "int32"}):compute()
        assert_close(o, {shape = {2, 3}, data = {1, 1, 1, 1, 1, 1}},
                     {dtype = "int32"})
        local f = la.full({2, 2}, 2.5, {chunks = 1}):compute()
        assert_close(f, {shape = {2, 2}, data = {2.5, 2.5, 2.5, 2.5}},
                     {dtype = "float64"})
        local ar = la.arange(3, 20, 4, {chunks = 2}):compute()
        assert_close(ar, {shape = {5}, data = {3, 7, 11, 15, 19}},
                     {dtype = "int64"})
        local ls = la.linspace(0, 1, 5, {chunks = 2}):compute()
        assert_close(ls, {shape = {5}, data = {0, 0.25, 0.5, 0.75, 1}},
                     {dtype = "float64"})
        local ls2 = la.linspace(0, 1, 7, {chunks = 3}):compute()
        assert.are.equal(1, ls2:get(7)) -- the end point exactly
        local e = la.eye(3, {chunks = 2, m = 4}):compute()
        assert.are.same({{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}}, e:totable())
        local t = la.from_table({{1, 2}, {3, 4}, {5, 6}},
                                {chunks = {{2, 1}, 1}})
        assert.are.same({{2, 1}, {1, 1}}, t.chunks)
        assert.are.equal("int64", t.dtype)
        assert.are.same({{1, 2}, {3, 4}, {5, 6}}, t:compute():totable())
      end)

      it("makes random arrays reproducible for the same seed and chunks",
         function()
        local function r(seed, chunks, kind)
          return la.random[kind or "random"]({7, 5},
                                             {seed = seed, chunks = chunks})
        end
        local a = r(42, {{3, 4}, {2, 3}}):compute()
        local b = r(42, {{3, 4}, {2, 3}}):compute()
        assert_close(a, b, {rtol = 0})
        local c = r(43, {{3, 4}, {2, 3}}):compute()
        local differ = 0
        local cf = c:flat()
        for k, v in ipairs(a:flat()) do
          if v ~= cf[k] then differ = differ + 1 end
        end
        assert.is_true(differ >= 30, "seeds 42 and 43 give the same numbers")
        -- every value in [0, 1), not all equal
        local lo, hi = 1, 0
        for _, v in ipairs(a:flat()) do
          assert.is_true(v >= 0 and v < 1)
          lo, hi = math.min(lo, v), math.max(hi, v)
        end
        assert.is_true(hi - lo > 0.5)
        -- blocks are not copies of each other
        local blk = a:slice{{1, 3}, {1, 2}}:flat()
        local blk2 = a:slice{{4, 6}, {1, 2}}:flat()
        assert.are_not.same(blk, blk2)
        -- normal: reproducible; with a fixed seed the moments are close
        local n1 = la.random.normal({20000}, {seed = 7, chunks = 3000})
        local n2 = la.random.normal({20000}, {seed = 7, chunks = 3000})
        assert_close(n1:compute(), n2:compute(), {rtol = 0})
        local m, s = n1:mean():compute(), n1:std():compute()
        assert.is_true(math.abs(m) < 0.05, "mean " .. m)
        assert.is_true(math.abs(s - 1) < 0.05, "std " .. s)
        assert.are_not.equal(n1:sum():compute(),
          la.random.normal({20000}, {seed = 8, chunks = 3000}):sum():compute())
        -- loc and scale (NumPy's names): the same draws, moved and scaled
        local n3 = la.random.normal({20000}, {seed = 7, chunks = 3000,
                                              loc = 10, scale = 2})
        local a1, a3 = n1:compute(), n3:compute()
        for i = 1, 20000, 1999 do
          assert.is_true(math.abs(a3:get(i) - (10 + 2 * a1:get(i))) < 1e-12)
        end
        assert.matches("scale must be >= 0", errmsg(function()
          return la.random.normal({3}, {scale = -1})
        end), 1, true)
        assert.matches("loc must be a finite number", errmsg(function()
          return la.random.normal({3}, {loc = "x"})
        end), 1, true)
        assert.matches("unknown option 'loc'", errmsg(function()
          return la.random.random({3}, {loc = 1})
        end), 1, true)
        -- without a seed, two arrays differ (like NumPy's default generator)
        local u1 = la.random.random({8}, {chunks = 3}):compute()
        local u2 = la.random.random({8}, {chunks = 3}):compute()
        assert.are_not.same(u1:totable(), u2:totable())
        local f32 = la.random.random({4}, {seed = 1, dtype = "float32"})
        assert.are.equal("float32", f32.dtype)
        assert.are.equal("float32", f32:compute().dtype)
      end)

      it("adds differently chunked operands with broadcasting (reference)",
         function()
        local a = rand(91, {8, 7}, "float64")
        local b = rand(92, {8, 7}, "int32")
        local c = rand(93, {7}, "float64")
        local d = rand(94, {8, 1}, "int64")
        local x = lz(a, {{3, 1, 4}, {2, 5}})
        local y = lz(b, {4, 3})
        local z = lz(c, {{1, 6}})
        local w = lz(d, {{5, 3}, 1})
        local e = x + y * z - w
        assert.are.equal("float64", e.dtype)
        assert.are.same({8, 7}, e.shape)
        local want = R.map(function(p, q, r, s) return p + q * r - s end,
                           R.of(a), R.of(b), R.of(c), R.of(d))
        assert_close(e:compute(), want)
        -- the same with eager operands mixed in: the lazy side wins
        local e2 = x + b * c - d
        assert.is_true(la.is_array(e2))
        assert_close(e2:compute(), want)
        -- (4, 1) with (1, 5), chunked differently
        local p = rand(95, {4, 1}, "float64")
        local q = rand(96, {1, 5}, "float64")
        local pq = lz(p, {{1, 3}, 1}) * lz(q, {1, {2, 3}})
        assert.are.same({4, 5}, pq.shape)
        assert_close(pq:compute(), R.map(function(u, v) return u * v end,
                                         R.of(p), R.of(q)))
        -- a 3-d with a 1-d
        local t3 = rand(97, {2, 3, 4}, "float64")
        local v1 = rand(98, {4}, "float64")
        assert_close((lz(t3, {1, 2, 3}) / lz(v1, {{1, 3}})):compute(),
                     R.map(function(u, v) return u / v end, R.of(t3), R.of(v1)))
      end)

      it("fuses elementwise chains, equal to the eager path", function()
        local a = rand(101, {9, 8}, "float64", {lo = -10, hi = 10})
        local x = lz(a, {{4, 5}, {3, 3, 2}})
        local one = (la.sin(x) ^ 2 + la.cos(x) ^ 2):mean()
        assert.is_true(la.is_array(one))
        local v = one:compute()
        assert.are.equal("number", type(v))
        assert.is_true(math.abs(v - 1) < 1e-12, "mean " .. v)
        local lazy = (la.exp(x / 10) * 2 - la.abs(x)):compute()
        local eager = N.exp(a / 10) * 2 - N.abs(a)
        assert_close(lazy, eager)
        local s1 = (x + x:T():T()):sum():compute()
        assert.are.equal("number", type(s1))
        local s0 = a:sum()
        assert.is_true(math.abs(s1 - 2 * s0) <= 1e-12 * math.abs(s0) + 1e-9)
        -- the same lazy array computed twice gives the same result
        local y = la.tanh(x) * 3
        assert_close(y:compute(), y:compute(), {rtol = 0})
        -- la.sin on an ndarray is eager, on a number a number
        assert.is_true(N.is_ndarray(la.sin(a)))
        assert.are.equal(math.sin(0.5), la.sin(0.5))
      end)

      it("reduces blocks (i, j) and (j, i) of x and x:T() in one task, " ..
         "with the eager result", function()
        local diag = require "lask.diagnostics"
        -- partial tasks of one computation (the profiler names them)
        local function partials(arr)
          local p = diag.Profiler()
          p:register()
          local ok, v = pcall(function() return arr:compute() end)
          p:unregister()
          assert(ok, v)
          local n = 0
          for _, r in ipairs(p.results) do
            if tostring(r.key):match("partial") then n = n + 1 end
          end
          return n, v
        end
        local a = rand(141, {9, 9}, "float64", {nan = 0.1})
        local b = rand(142, {9, 9}, "float64", {lo = 0.5, hi = 1.5})
        local sym = {{4, 2, 3}, {4, 2, 3}} -- uneven, the same on both axes
        local x, y = lz(a, sym), lz(b, sym)
        local at, bt = a:T(), b:T()
        local cases = {
          {x + x:T(), a + at}, {x:T() - x * 2, at - a * 2},
          {y * y:T() + y, b * bt + b}, {la.sin(y:T()) / y, N.sin(bt) / b},
          -- two transposes made apart: both pair with x
          {x:T() + x - x:T() * 3, at + a - at * 3},
        }
        local ops = {"sum", "prod", "mean", "var", "std", "min", "max", "any",
                     "all", "nansum", "nanmean", "nanvar", "nanmin", "nanmax"}
        for ci, c in ipairs(cases) do
          for _, op in ipairs(ops) do
            local n, got = partials(c[1][op](c[1]))
            -- 3 diagonal blocks and 3 pairs instead of 9 blocks
            assert.are.equal(6, n, op .. " of case " .. ci)
            assert_close(got, c[2][op](c[2]), {rtol = 1e-12})
          end
          -- argmin/argmax need each block's positions: no pairs
          local n, got = partials(c[1]:nanargmax())
          assert.are.equal(9, n)
          assert.are.equal(c[2]:nanargmax(), got)
        end
        -- no pairs: another array's transpose, or chunks that differ by axis
        local n, got = partials((x + y:T()):sum())
        assert.are.equal(9, n)
        assert_close(got, (a + bt):sum(), {rtol = 1e-12})
        local z = lz(b, {{4, 5}, {3, 6}})
        n, got = partials((z + z:T()):nansum())
        assert.are.equal(4, n)
        assert_close(got, (b + bt):nansum(), {rtol = 1e-12})
        -- blocks deep enough for the C kernels' transposed tiles
        local big = rand(144, {100, 100}, "float64")
        local xb = lz(big, {40, 40})
        n, got = partials((xb - xb:T() * 3):sum())
        assert.are.equal(6, n)
        assert_close(got, (big - big:T() * 3):sum(), {rtol = 1e-12})
        -- reductions along an axis keep their blocks
        assert_close((x + x:T()):nansum{axis = 1}:compute(),
                     (a + at):nansum{axis = 1})
        -- int64 and bool, on the sync scheduler too
        local i = rand(143, {9, 9}, "int64")
        local xi = lz(i, sym)
        for _, sc in ipairs{"threads", "sync"} do
          assert.are.equal((i - i:T() * 3):sum(),
                           (xi - xi:T() * 3):sum():compute{scheduler = sc})
          assert.are.equal(i:T():gt(i):any(),
                           xi:T():gt(xi):any():compute{scheduler = sc})
          assert.are.equal(i:T():ge(i - 20):all(),
                           xi:T():ge(xi - 20):all():compute{scheduler = sc})
          assert.are.equal((i - i:T()):min(),
                           (xi - xi:T()):min():compute{scheduler = sc})
        end
      end)

      it("reduces with split_every 2, 3 and 8 to the same values", function()
        local a = rand(111, {50}, "float64")
        local x = lz(a, {3})
        local want = RED.sum(a:flat())
        for _, se in ipairs{2, 3, 8} do
          local s = x:sum{split_every = se}:compute()
          assert.is_true(math.abs(s - want) <= 1e-12 * 50 * 3,
                         "split_every " .. se)
          assert.are.equal(RED.argmax(a:flat()),
                           x:argmax{split_every = se}:compute())
          local v = x:var{split_every = se}:compute()
          assert.is_true(math.abs(v - RED.var(a:flat())) <= 1e-12 * v)
        end
        assert.are.equal(4950, la.arange(100, {chunks = 7})
          :sum{split_every = 2}:compute())
        assert.are.equal(4950, la.arange(100, {chunks = 7}):sum():compute())
        -- ties across blocks: the first position wins
        local t = la.from_table({3, 1, 5, 1, 5, 0, 0}, {chunks = 2})
        assert.are.equal(6, t:argmin{split_every = 2}:compute())
        assert.are.equal(3, t:argmax{split_every = 2}:compute())
        -- ... the first in C order, also when the blocks split the columns
        local t2 = la.from_table({{5, 0}, {0, 5}}, {chunks = {2, 1}})
        assert.are.equal(2, t2:argmin():compute())
        assert.are.equal(1, t2:argmax():compute())
        local t3 = la.from_table({{1, NAN}, {NAN, 1}}, {chunks = {2, 1}})
        assert.are.equal(2, t3:argmin():compute())
        assert.are.equal(2, t3:argmax():compute())
        assert.are.same({2}, {la.from_table({{1, 2}, {9, 9}}, {chunks = 1})
          :argmax{axis = 1, split_every = 2}:compute():get(1)})
      end)

      it("returns a number for a full reduction and an ndarray otherwise",
         function()
        local x = la.arange(12, {chunks = 5}):reshape{3, 4}
        for _, op in ipairs{"sum", "prod", "mean", "min", "max", "std", "var",
                            "argmin", "argmax", "nansum", "nanmean"} do
          assert.are.equal("number", type(x[op](x):compute()), op)
          assert.is_true(N.is_ndarray(x[op](x, {axis = 1}):compute()), op)
          if op ~= "argmin" and op ~= "argmax" then
            local kd = x[op](x, {axis = {1, 2}, keepdims = true})
            local r = kd:compute()
            assert.is_true(N.is_ndarray(r), op)
            assert.are.same({1, 1}, r.shape)
          end
        end
        assert.are.equal("boolean", type(x:any():compute()))
        assert.are.equal(66, x:sum():compute())
        assert.are.equal(12, x:argmax():compute())
        local r = x:sum{axis = 2}
        assert.are.same({3}, r.shape)
        assert.are.equal("int64", r.dtype)
        assert.are.same({6, 22, 38}, r:compute():totable())
        assert.are.equal("float64", x:mean{axis = 1}.dtype)
        assert.are.equal("bool", x:any{axis = 1}.dtype)
        assert.are.equal("int64", x:argmin{axis = 1}.dtype)
        -- eager full reductions are numbers too; min/max of bools are
        -- booleans (NumPy's np.bool_), as the chunked ones are
        local bools = la.from_table({true, false}, {chunks = 1})
        assert.are.equal("boolean", type(bools:min():compute()))
        assert.are.equal("boolean", type(N.from_table({true, false}):min()))
        assert.are.equal("boolean", type(N.from_table({true, false}):max()))
        assert.are.equal("number", type(N.arange(5):sum()))
        assert.are.equal("boolean", type(N.arange(5):all()))
        assert.are.equal(10, N.arange(5):sum())
      end)

      it("rechunks without changing values", function()
        local a = rand(121, {9, 7}, "int32")
        local x = lz(a, {{3, 1, 5}, {2, 5}})
        for _, c in ipairs{
          {{2, 3}, {{2, 2, 2, 2, 1}, {3, 3, 1}}},
          {{{4, 5}, -1}, {{4, 5}, {7}}},
          {{{1, 1, 1, 6}, {7}}, {{1, 1, 1, 6}, {7}}},
          {{9, 1}, {{9}, {1, 1, 1, 1, 1, 1, 1}}},
          {"auto", {{9}, {7}}},
          {{{9}, {3, 4}}, {{9}, {3, 4}}},
        } do
          local y = x:rechunk(c[1])
          assert.are.same(c[2], y.chunks)
          assert_close(y:compute(), a, {dtype = "int32"})
        end
        assert.are.same({{4, 4, 1}, {3, 3, 1}},
                        x:rechunk(4):rechunk({4, 3}).chunks)
        assert_close(x:rechunk(4):rechunk({{1, 8}, 2}):compute(), a)
        -- a lazy expression rechunks too
        local e = (x * 2):rechunk({5, 5})
        assert_close(e:compute(), a * 2)
        -- zero-length
        local z = la.zeros({0, 4}, {chunks = 2}):rechunk({1, 3})
        assert.are.same({0, 4}, z:compute().shape)
      end)

      it("transposes, reshapes, slices and concatenates (reference)", function()
        local a = rand(131, {4, 6, 5}, "float64")
        local ra = R.of(a)
        local x = lz(a, {{1, 3}, {2, 4}, {3, 2}})
        assert_close(x:T():compute(), R.transpose(ra))
        assert.are.same({{3, 2}, {2, 4}, {1, 3}}, x:T().chunks)
        assert_close(x:transpose{3, 1, 2}:compute(), R.transpose(ra, {3, 1, 2}))
        assert_close(x:reshape{24, 5}:compute(), R.reshape(ra, {24, 5}))
        assert_close(x:reshape{2, 60}:compute(), R.reshape(ra, {2, 60}))
        assert_close(x:reshape{120}:compute(), R.reshape(ra, {120}))
        assert_close(x:reshape{-1, 3, 10}:compute(), R.reshape(ra, {4, 3, 10}))
        assert_close(x:T():reshape{30, 4}:compute(),
                     R.reshape(R.transpose(ra), {30, 4}))
        assert.are.same({4, 3, 10}, x:reshape{-1, 3, 10}.shape)
        local s = {{-1, 1, -2}, {5, 2, -1}, 3}
        assert_close(x:slice(s):compute(), R.slice(ra, s))
        local y = lz(a, {4, 6, {2, 3}})
        assert_close(la.concatenate({x, y}, 2):compute(),
                     R.concatenate({ra, ra}, 2))
        assert_close(la.concatenate({x, y:slice{{2, 3}}}, 1):compute(),
                     R.concatenate({ra, R.slice(ra, {{2, 3}})}, 1))
        local st = la.stack({x, y}, 2)
        assert.are.same({4, 2, 6, 5}, st.shape)
        local sv = st:compute()
        assert.are.equal(a:get(3, 4, 5), sv:get(3, 2, 4, 5))
        assert.are.equal(a:get(1, 6, 2), sv:get(1, 1, 6, 2))
        -- zero-length pieces and scalars
        local z = la.zeros({0, 3}, {chunks = 2})
        assert.are.same({0, 3}, z:T():T():compute().shape)
        assert.are.same({0}, z:reshape{0}:compute().shape)
        assert.are.equal(0, z:sum():compute())
        assert.are.same({3}, z:sum{axis = 1}:compute().shape)
        assert.are.same({0, 2}, la.zeros({4, 2}, {chunks = 3})
          :slice{{3, 2}}:compute().shape)
      end)

      it("multiplies matrices of ints and floats (reference)", function()
        local p = rand(141, {6, 4}, "int64")
        local q = rand(142, {4, 5}, "float64")
        local v = rand(143, {4}, "int32")
        local x = lz(p, {{1, 5}, {3, 1}})
        local y = lz(q, {{2, 2}, {4, 1}})
        local m = x:matmul(y)
        assert.are.equal("float64", m.dtype)
        assert_close(m:compute(), R.matmul(R.of(p), R.of(q)))
        local mi = x:matmul(x:T())
        assert.are.equal("int64", mi.dtype)
        assert_close(mi:compute(), R.matmul(R.of(p), R.transpose(R.of(p))),
                     {dtype = "int64"})
        assert_close(x:matmul(lz(v, {{1, 3}})):compute(),
                     R.matmul(R.of(p), R.of(v)), {dtype = "int64"})
        local vv = lz(v, 3):matmul(lz(v, 2)):compute()
        assert.are.equal(R.matmul(R.of(v), R.of(v)).data[1], vv)
        assert_close(la.dot(x, y):compute(), R.matmul(R.of(p), R.of(q)))
        assert_close(p:matmul(q), R.matmul(R.of(p), R.of(q)))
        local ev = v:matmul(v)
        assert.are.equal(R.matmul(R.of(v), R.of(v)).data[1],
                         N.is_ndarray(ev) and ev:totable() or ev)
      end)

      it("maps blocks with their block_id and location", function()
        local a = N.arange(56):reshape{8, 7}
        local x = lz(a, {{3, 1, 4}, {2, 5}})
        local m = x:map_blocks(function(b, info)
          -- every element becomes 100 * block row + block column + the
          -- first (1-based) global row of the block
          return b * 0 + (100 * info.block_id[1] + info.block_id[2] +
                          1000 * info.location[1][1])
        end)
        assert.are.same({{3, 1, 4}, {2, 5}}, m.chunks)
        local r = m:compute()
        local rows = {1, 1, 1, 2, 3, 3, 3, 3}
        local first = {1, 1, 1, 4, 5, 5, 5, 5}
        for i = 1, 8 do
          for j = 1, 7 do
            local bj = j <= 2 and 1 or 2
            assert.are.equal(100 * rows[i] + bj + 1000 * first[i], r:get(i, j))
          end
        end
        -- location gives inclusive 1-based {first, last} per axis
        local seen = x:map_blocks(function(b, info)
          local l = info.location
          assert(l[1][2] - l[1][1] + 1 == b.shape[1], "location rows")
          assert(l[2][2] - l[2][1] + 1 == b.shape[2], "location columns")
          return N.full(b.shape, l[1][1] * 10 + l[2][1], "int64")
        end):compute()
        assert.are.equal(11, seen:get(1, 1))
        assert.are.equal(43, seen:get(4, 3))
        assert.are.equal(53, seen:get(8, 7))
        -- a dtype option and an eager function of the block
        local f = x:map_blocks(function(b) return N.sqrt(b) end,
                               {dtype = "float64"})
        assert.are.equal("float64", f.dtype)
        assert_close(f:compute(), N.sqrt(a))
        -- after a lazy expression
        local g = (x + 1):map_blocks(function(b) return b * 2 end)
        assert_close(g:compute(), (a + 1) * 2)
      end)

      it("writes and reads .npy by chunk, and compute{scheduler} agrees",
         function()
        local a = rand(151, {9, 5}, "float64", {nan = 0.1})
        local x = lz(a, {{2, 3, 4}, {4, 1}})
        local path = tmpfile()
        x:to_npy(path)
        assert_close(N.load(path), a, {rtol = 0})
        local y = la.from_npy(path, {chunks = {{5, 4}, {2, 3}}})
        assert.are.same({{5, 4}, {2, 3}}, y.chunks)
        assert.are.same({9, 5}, y.shape)
        assert.are.equal("float64", y.dtype)
        assert_close(y:compute(), a, {rtol = 0})
        -- a lazy expression written by chunk
        local p2 = tmpfile()
        local w = (x * 2):T()
        w:to_npy(p2)
        assert_close(N.load(p2), (a * 2):T(), {rtol = 0})
        -- both schedulers, and per-call options
        local e = (y + 1):nansum{axis = 1}
        local s1 = e:compute{scheduler = "sync"}
        local s2 = e:compute{scheduler = "threads", num_workers = 3}
        local s3 = e:compute()
        assert_close(s1, s2, {rtol = 0})
        assert_close(s1, s3, {rtol = 0})
        assert_close(s1, R.reduce(R.of(a + 1), 1, false, RED.nansum))
      end)

      it("keeps the lazy dtype equal to the computed dtype", function()
        local arrs = {
          lz(rand(161, {3, 4}, "float32"), 2),
          lz(rand(162, {3, 4}, "int32"), 2),
          lz(rand(163, {3, 4}, "uint8", {lo = 0, hi = 200}), 2),
          lz(rand(164, {3, 4}, "bool"), 2), lz(rand(165, {3, 4}, "int64"), 2),
          lz(rand(166, {3, 4}, "float64"), 2),
        }
        for _, x in ipairs(arrs) do
          for _, y in ipairs(arrs) do
            for _, e in ipairs{x + y, x / y, x ^ y, x:lt(y), la.maximum(x, y),
                               x * 3, x + 0.5, -x, la.sqrt(x)} do
              local r = e:compute()
              assert.are.equal(e.dtype, r.dtype)
            end
          end
          for _, op in ipairs{"sum", "prod", "mean", "min", "max", "std",
                              "argmin", "any"} do
            local e = x[op](x, {axis = 2})
            assert.are.equal(e.dtype, e:compute().dtype,
                             op .. " of " .. x.dtype)
          end
          for _, dt in ipairs(N.dtypes) do
            local e = x:astype(dt)
            assert.are.equal(dt, e.dtype)
            assert.are.equal(dt, e:compute().dtype)
          end
        end
      end)

      it("raises errors of tasks at compute", function()
        local x = la.from_table({{1, 0 / 0}, {0 / 0, 0 / 0}}, {chunks = 1})
        assert.matches("NaN", errmsg(function()
          return x:nanargmin{axis = 2}:compute()
        end))
        assert.matches("NaN", errmsg(function()
          return x:slice{2}:nanargmax():compute()
        end))
        local m = la.ones({4}, {chunks = 2}):map_blocks(function()
          error("boom in a block")
        end)
        assert.matches("boom in a block",
                       errmsg(function() return m:compute() end))
        -- output chunks are checked where map_blocks is called
        local a = la.arange(0, 10, 1, {chunks = {3}})
        for _, c in ipairs{{-1}, {1.5}, {{3, 3, -3, 1}}, {"x"}} do
          assert.matches("map_blocks: chunks on axis 1", errmsg(function()
            return a:map_blocks(function(b) return b end, {chunks = c})
          end))
        end
      end)
    end)
  end

end)
