--- lask.ndarray: in-memory n-dimensional arrays (eager), over the C
-- kernels of lask.core.nd. Also the elementwise expression compiler that
-- lask.array uses to fuse chains of operations per chunk.
--
-- dtypes: float64 float32 int64 int32 uint8 bool. Promotion (NumPy's for
-- these six): bool < uint8 < int32 < int64 and float32 < float64; an
-- integer type with float32 gives float32 for uint8 and float64 for int32
-- and int64. A Lua number beside an array is "weak" (NumPy 2, NEP 50): an
-- integer takes the array's dtype (int64 for a bool array), a float keeps a
-- float array's dtype and makes an integer one float64; an integer that
-- does not fit a uint8 or int32 array's dtype is an error, as NumPy 2's
-- OverflowError (comparisons excepted). As in Lua, `/` and
-- `^` always give floats; arithmetic on two bools gives int64.
--
-- Axes and indexes are 1-based here and 0-based in C. Negative indexes
-- count from the end (-1 is the last).
local core = require "lask.core"
local nd = core.nd

local M = {}
local methods = {}
local unpack = table.unpack or unpack
local mtype = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v >= -2^53 and v <= 2^53) and "integer"
    or "float"
end

M.dtypes = {"float64", "float32", "int64", "int32", "uint8", "bool"}
local KIND = {float64 = "f", float32 = "f", int64 = "i", int32 = "i",
              uint8 = "i", bool = "b"}
local RANK = {bool = 0, uint8 = 1, int32 = 2, int64 = 3, float32 = 4,
              float64 = 5}

local function check_dtype(dt, where)
  if dt == nil then return nil end
  if not KIND[dt] then
    error(("lask.array: %s: unknown dtype %s (one of %s)"):format(
      where or "dtype", tostring(dt), table.concat(M.dtypes, ", ")), 3)
  end
  return dt
end
M.check_dtype = check_dtype

--- promote(a, b): the dtype of an operation on arrays of dtypes a and b.
function M.promote(a, b)
  if a == b then return a end
  if RANK[a] > RANK[b] then a, b = b, a end -- a is the lower
  if b == "float32" then
    return (a == "int32" or a == "int64") and "float64" or "float32"
  end
  return b
end
local promote = M.promote

local function is_float(dt) return KIND[dt] == "f" end
M.is_float = is_float

-- The dtype a Lua scalar takes beside an array of dtype 'dt'.
local function weak(v, dt)
  if type(v) == "boolean" then return dt end
  if mtype(v) == "integer" then return dt == "bool" and "int64" or dt end
  return is_float(dt) and dt or "float64"
end

local function is_nd(x) return nd.is_ndarray(x) end
M.mtype = mtype
M.is_ndarray = is_nd

----------------------------------------------------------------------------
-- Expressions: trees of {op, args..., dtype}, leaves {leaf = x, dtype}
-- (x an ndarray, or anything else for lask.array) and {const = v, dtype}.
----------------------------------------------------------------------------

local FLOAT_FUNCS = {}
for _, f in ipairs{"sqrt", "exp", "log", "log10", "log2", "log1p", "expm1",
                   "sin", "cos", "tan", "asin", "acos", "atan", "sinh",
                   "cosh", "tanh", "floor", "ceil", "round", "trunc"} do
  FLOAT_FUNCS[f] = true
end
M.FLOAT_FUNCS = FLOAT_FUNCS

local ARITH = {add = true, sub = true, mul = true, mod = true, max = true,
               min = true}
local FLOATBIN = {div = true, pow = true, fmax = true, fmin = true,
                  atan2 = true}
local CMP = {eq = true, ne = true, lt = true, le = true, gt = true, ge = true}
local LOGIC = {["and"] = true, ["or"] = true, xor = true}

--- check_fits(v, dt, who): an integer v must fit dtype dt (uint8, int32),
-- as NumPy 2 requires; the rule is nd.set's (in C).
M.check_fits = nd.check_fits

--- node(op, ...): an expression node with its dtype. Arguments are nodes
-- or Lua scalars (numbers, booleans).
function M.node(op, ...)
  local args = {...}
  local n = select("#", ...)
  if op == "astype" then
    return {op = "astype", dtype = check_dtype(args[2], "astype"), args[1]}
  end
  -- the dtype of the array arguments first, then the weak scalars
  local adt
  for i = 1, n do
    local a = args[i]
    if type(a) == "table" then
      adt = adt and promote(adt, a.dtype) or a.dtype
    elseif type(a) ~= "number" and type(a) ~= "boolean" then
      error(("lask.array: %s: expected an array or a number, got %s")
        :format(op, type(a)), 3)
    end
  end
  local sdt
  for i = 1, n do
    local a = args[i]
    -- NEP 50: a weak integer must fit the array's dtype
    if adt and not CMP[op] then M.check_fits(a, adt, op) end
    if type(a) ~= "table" then
      local d = adt and weak(a, adt) or
        (type(a) == "boolean" and "bool" or
         (mtype(a) == "integer" and "int64" or "float64"))
      sdt = sdt and promote(sdt, d) or d
      args[i] = {const = a, dtype = d}
    end
  end
  local dt = adt and (sdt and promote(adt, sdt) or adt) or sdt
  if op == "where" then
    -- the condition does not take part in the result's dtype
    local a, b = args[2], args[3]
    dt = promote(a.dtype, b.dtype)
    if args[2].const ~= nil and args[3].const == nil then
      dt = weak(args[2].const, b.dtype)
      dt = promote(dt, b.dtype)
    elseif args[3].const ~= nil and args[2].const == nil then
      dt = promote(weak(args[3].const, a.dtype), a.dtype)
    end
  end
  local out
  if ARITH[op] then
    out = (dt == "bool" and op ~= "max" and op ~= "min") and "int64" or dt
  elseif FLOATBIN[op] or FLOAT_FUNCS[op] then
    out = dt == "float32" and "float32" or "float64"
  elseif CMP[op] or LOGIC[op] or op == "not" or op == "isnan" or
         op == "isinf" or op == "isfinite" then
    out = "bool"
  elseif op == "neg" or op == "abs" or op == "sign" or op == "square" then
    out = dt == "bool" and "int64" or dt
  elseif op == "where" then
    out = dt
  else
    error("lask.array: unknown operation " .. tostring(op), 3)
  end
  local node = {op = op, dtype = out}
  for i = 1, #args do node[i] = args[i] end
  return node
end

function M.leaf(x, dtype) return {leaf = x, dtype = dtype or x.dtype} end

local LANE_F, LANE_I = 0, 1
local function lane_of(dt) return is_float(dt) and LANE_F or LANE_I end

--- compile(root): program bytes, the list of leaves (in input order) and
-- the result dtype. Leaves are told apart by their 'leaf' value.
function M.compile(root)
  local ops = nd.ops
  local code, consts, constix = {}, {}, {}
  local inputs, inputix = {}, {}
  local nregs = 0
  local memo = {}
  local function emit(op, a, b)
    local r = nregs
    nregs = nregs + 1
    if nregs > 255 then
      error("lask.array: expression too large to fuse (255 steps)", 0)
    end
    code[#code + 1] = ops[op]
    code[#code + 1] = r
    code[#code + 1] = a or 0
    code[#code + 1] = b or 0
    return r
  end
  local function const(v, lane)
    if type(v) == "boolean" then v = v and 1 or 0 end
    if lane == LANE_I and mtype(v) ~= "integer" then
      v = v >= 0 and math.floor(v) or math.ceil(v)
    end
    local key = lane .. ":" .. string.format("%.17g", v) ..
      (mtype(v) or "")
    local k = constix[key]
    if not k then
      consts[#consts + 1] = {lane, v}
      k = #consts - 1
      constix[key] = k
    end
    return emit("const", k)
  end
  -- Narrow results wrap as they would in their dtype.
  local function narrow(r, dt)
    if dt == "uint8" then return emit("wrapu8", r) end
    if dt == "int32" then return emit("wrapi32", r) end
    if dt == "float32" then return emit("tof32", r) end
    if dt == "bool" then
      local z = const(0, LANE_I)
      return emit("ne", r, z)
    end
    return r
  end
  local gen
  -- value of node n in lane 'lane' (a register)
  local function as_lane(n, lane)
    if n.const ~= nil then return const(n.const, lane) end
    local r, l = gen(n)
    if l == lane then return r end
    return emit(lane == LANE_F and "tof" or "toi", r)
  end
  gen = function(n)
    local m = memo[n]
    if m then return m[1], m[2] end
    local r, lane
    if n.leaf ~= nil then
      local k = inputix[n.leaf]
      if not k then
        inputs[#inputs + 1] = n.leaf
        k = #inputs - 1
        inputix[n.leaf] = k
        if #inputs > 32 then
          error("lask.array: expression has more than 32 inputs", 0)
        end
      end
      r, lane = emit("load", k), lane_of(n.dtype)
    elseif n.const ~= nil then
      lane = lane_of(n.dtype)
      r = const(n.const, lane)
    else
      local op, dt = n.op, n.dtype
      if ARITH[op] then
        lane = lane_of(dt)
        r = narrow(emit(op, as_lane(n[1], lane), as_lane(n[2], lane)), dt)
      elseif FLOATBIN[op] then
        lane = LANE_F
        local a, b = as_lane(n[1], lane), n[2]
        if op == "pow" and b.const == 2 then r = emit("square", a)
        else r = emit(op, a, as_lane(b, lane)) end
        r = narrow(r, dt)
      elseif CMP[op] then
        local l = lane_of(promote(n[1].dtype, n[2].dtype))
        r, lane = emit(op, as_lane(n[1], l), as_lane(n[2], l)), LANE_I
      elseif LOGIC[op] then
        local a = emit("ne", as_lane(n[1], LANE_I), const(0, LANE_I))
        local b = emit("ne", as_lane(n[2], LANE_I), const(0, LANE_I))
        r, lane = emit(op, a, b), LANE_I
      elseif op == "not" then
        r, lane = emit("not", as_lane(n[1], LANE_I)), LANE_I
      elseif op == "isnan" or op == "isinf" or op == "isfinite" then
        r, lane = emit(op, as_lane(n[1], LANE_F)), LANE_I
      elseif FLOAT_FUNCS[op] then
        lane = LANE_F
        r = narrow(emit(op, as_lane(n[1], lane)), dt)
      elseif op == "neg" or op == "abs" or op == "sign" or op == "square" then
        lane = lane_of(dt)
        r = narrow(emit(op, as_lane(n[1], lane)), dt)
      elseif op == "where" then
        lane = lane_of(dt)
        local c = emit("ne", as_lane(n[1], LANE_I), const(0, LANE_I))
        local a, b = as_lane(n[2], lane), as_lane(n[3], lane)
        r = emit("where", c, a)
        code[#code + 1] = 0
        code[#code + 1] = b
        code[#code + 1] = 0
        code[#code + 1] = 0
        r = narrow(r, dt)
      elseif op == "astype" then
        lane = lane_of(dt)
        local src = n[1]
        if dt == "bool" then
          r = emit("ne", as_lane(src, lane_of(src.dtype)),
                   const(0, lane_of(src.dtype)))
        else
          r = narrow(as_lane(src, lane), dt)
        end
      else
        error("lask.array: cannot compile " .. tostring(op), 0)
      end
    end
    memo[n] = {r, lane}
    return r, lane
  end
  local r, lane = gen(root)
  if lane ~= lane_of(root.dtype) then
    r = emit(lane_of(root.dtype) == LANE_F and "tof" or "toi", r)
  end
  if #inputs == 0 then inputs[1] = false end -- constants only: 0-d input
  return nd.assemble(nregs, #inputs, r, consts, code), inputs, root.dtype
end

----------------------------------------------------------------------------
-- Eager arrays
----------------------------------------------------------------------------

-- Evaluates an expression over ndarray leaves now.
local function run(node)
  local prog, inputs, dt = M.compile(node)
  if inputs[1] == false then inputs[1] = nd.new("float64", {}) end
  local ok, r = pcall(nd.eval, prog, dt, unpack(inputs))
  if ok then return r end
  if tostring(r):find("do not broadcast", 1, true) then -- name the shapes
    local shapes = {}
    for i, a in ipairs(inputs) do
      shapes[i] = "{" .. table.concat(a.shape, ", ") .. "}"
    end
    error(("lask: shapes %s do not broadcast together"):format(
      table.concat(shapes, ", ")), 0)
  end
  error(r, 0)
end
M.run = run

local function is_lazy(x)
  local mt = getmetatable(x)
  return type(x) == "table" and type(mt) == "table" and
    rawget(mt, "__lask_collection") == true
end

local function operand(x, op)
  if is_nd(x) then return M.leaf(x) end
  if type(x) ~= "number" and type(x) ~= "boolean" then
    error(("lask.array: %s: expected an array or a number, got %s"):format(
      op, type(x)), 3)
  end
  return x
end

-- An ndarray beside a lazy lask.array: the lazy side computes it.
local function binop(op)
  return function(a, b)
    if is_lazy(a) or is_lazy(b) then
      return require("lask.array").elementwise(op, a, b)
    end
    return run(M.node(op, operand(a, op), operand(b, op)))
  end
end
local function unop(op)
  return function(a) return run(M.node(op, operand(a, op))) end
end

methods.__add = binop("add")
methods.__sub = binop("sub")
methods.__mul = binop("mul")
methods.__div = binop("div")
methods.__mod = binop("mod")
methods.__pow = binop("pow")
methods.__unm = unop("neg")
for _, op in ipairs{"eq", "ne", "lt", "le", "gt", "ge"} do
  methods[op] = binop(op)
end
methods["and"] = binop("and")
methods["or"] = binop("or")
methods["not"] = unop("not")
for f in pairs(FLOAT_FUNCS) do M[f] = unop(f) end
for _, f in ipairs{"abs", "sign", "square", "isnan", "isinf", "isfinite"} do
  M[f] = unop(f)
end
M.maximum = binop("max")
M.minimum = binop("min")
M.fmax = binop("fmax")
M.fmin = binop("fmin")
M.atan2 = binop("atan2")
function M.where(c, a, b)
  if is_lazy(c) or is_lazy(a) or is_lazy(b) then
    return require("lask.array").where(c, a, b)
  end
  return run(M.node("where", operand(c, "where"), operand(a, "where"),
                    operand(b, "where")))
end

function methods:astype(dt)
  check_dtype(dt, "astype")
  return nd.copy(self, dt)
end

function methods.__tostring(a)
  local shape = table.concat(a.shape, ", ")
  if a.size <= 20 then
    local vals = nd.flat(a)
    for i, v in ipairs(vals) do vals[i] = tostring(v) end
    return ("ndarray(%s, {%s}: %s)"):format(a.dtype, shape,
                                            table.concat(vals, " "))
  end
  return ("ndarray(%s, {%s})"):format(a.dtype, shape)
end

methods.get = nd.get
methods.set = nd.set -- an integer value must fit the dtype
methods.totable = nd.totable
methods.flat = nd.flat
methods.copy = function(a) return nd.copy(a) end
methods.is_contiguous = nd.is_contiguous

function methods:ptr()
  local ok, ffi = pcall(require, "ffi")
  if not ok then
    error("lask.array: ptr() needs LuaJIT's FFI (use get/set or totable " ..
          "on Lua 5.4)", 2)
  end
  local ct = {float64 = "double *", float32 = "float *",
              int64 = "int64_t *", int32 = "int32_t *", uint8 = "uint8_t *",
              bool = "uint8_t *"}
  return ffi.cast(ct[self.dtype], nd.ptr(self))
end

--- Axis helpers, shared with lask.array.

-- axis: 1-based (negative from the end) -> 0-based, or an error naming it.
function M.norm_axis(axis, ndim, where)
  if type(axis) ~= "number" or axis ~= math.floor(axis) then
    error(("lask.array: %s: axis must be an integer, got %s"):format(
      where, tostring(axis)), 4)
  end
  local a = axis < 0 and ndim + axis + 1 or axis
  if a < 1 or a > ndim then
    error(("lask.array: %s: axis %d is out of range for an array of %d " ..
           "dimensions"):format(where, axis, ndim), 4)
  end
  return a - 1
end

-- axes option (nil, number or list) -> sorted 0-based list, set.
function M.norm_axes(axis, ndim, where)
  local list = {}
  if axis == nil then
    for i = 0, ndim - 1 do list[#list + 1] = i end
  elseif type(axis) == "table" then
    local seen = {}
    for _, a in ipairs(axis) do
      local z = M.norm_axis(a, ndim, where)
      if seen[z] then
        error(("lask.array: %s: axis %d repeated"):format(where, a), 3)
      end
      seen[z] = true
      list[#list + 1] = z
    end
    table.sort(list)
  else
    list[1] = M.norm_axis(axis, ndim, where)
  end
  local set = {}
  for _, z in ipairs(list) do set[z] = true end
  return list, set
end

-- Normalizes one axis of a slice: {start, stop [, step]} inclusive,
-- 1-based, negatives from the end; or a number (picks one index, the axis
-- is dropped). Returns 0-based start, step, count, drop.
function M.norm_slice(s, d, axis)
  if s == nil then return 0, 1, d, false end
  if type(s) == "number" then
    local i = s < 0 and d + s + 1 or s
    if s ~= math.floor(s) or i < 1 or i > d then
      error(("lask.array: slice: index %s out of range on axis %d " ..
             "(length %d)"):format(tostring(s), axis, d), 4)
    end
    return i - 1, 1, 1, true
  end
  if type(s) ~= "table" then
    error(("lask.array: slice: axis %d: expected {start, stop [, step]}, " ..
           "got %s"):format(axis, type(s)), 4)
  end
  local step = s[3] or 1
  if type(step) ~= "number" or step == 0 or step ~= math.floor(step) then
    error(("lask.array: slice: axis %d: step must be a nonzero integer")
      :format(axis), 4)
  end
  local start, stop = s[1], s[2]
  for _, v in ipairs{start or 1, stop or 1} do
    if type(v) ~= "number" or v ~= math.floor(v) then
      error(("lask.array: slice: axis %d: start and stop must be integers")
        :format(axis), 4)
    end
  end
  local function norm(v) return v < 0 and d + v + 1 or v end
  if step > 0 then
    start = start and norm(start) or 1
    stop = stop and norm(stop) or d
    if start < 1 then start = 1 end
    if stop > d then stop = d end
    if start > stop then return 0, step, 0, false end
    return start - 1, step, math.floor((stop - start) / step) + 1, false
  else
    start = start and norm(start) or d
    stop = stop and norm(stop) or 1
    if start > d then start = d end
    if stop < 1 then stop = 1 end
    if start < stop then return 0, step, 0, false end
    return start - 1, step, math.floor((start - stop) / -step) + 1, false
  end
end

function methods:slice(spec)
  spec = spec or {}
  if type(spec) ~= "table" then
    error("lask.array: slice takes a list with one entry per axis", 2)
  end
  local ndim = self.ndim
  if #spec > ndim then
    error(("lask.array: slice: %d axes given for an array of %d"):format(
      #spec, ndim), 2)
  end
  local shape = self.shape
  local starts, steps, counts, dropped = {}, {}, {}, {}
  for i = 1, ndim do
    local s0, st, c, drop = M.norm_slice(spec[i], shape[i], i)
    starts[i], steps[i], counts[i] = s0, st, c
    if drop then dropped[#dropped + 1] = i - 1 end
  end
  local v = nd.view(self, starts, steps, counts)
  if #dropped > 0 then v = nd.squeeze(v, dropped) end -- still a view
  return v
end

function methods:T()
  local perm = {}
  for i = 1, self.ndim do perm[i] = self.ndim - i end
  return nd.transpose(self, perm)
end

function methods:transpose(perm)
  if perm == nil then return self:T() end
  local p = {}
  for i, a in ipairs(perm) do p[i] = M.norm_axis(a, self.ndim, "transpose") end
  return nd.transpose(self, p)
end

-- shape with at most one -1 -> concrete shape for 'size' elements.
function M.norm_shape(shape, size, where)
  if type(shape) ~= "table" then
    error(("lask.array: %s: shape must be a list"):format(where), 4)
  end
  local out, unknown, known = {}, nil, 1
  for i, d in ipairs(shape) do
    if d == -1 and not unknown then unknown = i
    elseif type(d) ~= "number" or d < 0 or d ~= math.floor(d) then
      error(("lask.array: %s: bad dimension %s"):format(where, tostring(d)),
            4)
    else known = known * d end
    out[i] = d
  end
  if unknown then
    if known == 0 or size % known ~= 0 then
      error(("lask.array: %s: cannot infer -1 for %d elements"):format(
        where, size), 4)
    end
    out[unknown] = math.floor(size / known)
  end
  return out
end

function methods:reshape(shape)
  return nd.reshape(self, M.norm_shape(shape, self.size, "reshape"))
end

function methods:matmul(b)
  if not is_nd(b) then error("lask.array: matmul: expected an ndarray", 2) end
  local dt = promote(self.dtype, b.dtype)
  if dt == "bool" then dt = "int64" end
  return nd.matmul(self, b, dt)
end

function methods:to_npy(path) nd.npy_write(path, self) end

function methods:assign(value)
  if is_nd(value) then nd.assign(self, value)
  else
    M.check_fits(value, self.dtype, "assign")
    nd.assign(self, nd.new(self.dtype, {}, value))
  end
  return self
end

----------------------------------------------------------------------------
-- Reductions
----------------------------------------------------------------------------

local function red_dtype(op, dt)
  if op == "sum" or op == "prod" then
    return is_float(dt) and dt or "int64"
  elseif op == "min" or op == "max" then return dt
  elseif op == "any" or op == "all" then return "bool"
  else return dt == "float32" and "float32" or "float64" end -- mean var std
end

--- var_node(n, m2, ddof, skipnan, std): the variance (or standard
-- deviation) from the count n and the sum of squared deviations m2 (nodes
-- or numbers). NumPy divides by max(n - ddof, 0); nanvar gives NaN there.
function M.var_node(n, m2, ddof, skipnan, std)
  local d = M.node("sub", n, ddof)
  local v = M.node("div", m2, M.node("max", d, 0.0))
  if skipnan then v = M.node("where", M.node("gt", d, 0), v, 0 / 0) end
  if std then v = M.node("sqrt", v) end
  return v
end

-- The program that reads its one input as it is (for plain reductions).
M.LOAD = nd.assemble(1, 1, 0, {}, {nd.ops.load, 0, 0, 0})
-- ... and the one that reads it as floats (means of integers add in
-- floats, as NumPy's: an int64 sum of large values would wrap).
M.LOADF = nd.assemble(2, 1, 1, {}, {nd.ops.load, 0, 0, 0,
                                    nd.ops.tof, 1, 0, 0})

--- check_positions(idx, what): raises "all-NaN slice" when an argmin or
-- argmax found no value somewhere (a position of -1).
function M.check_positions(idx, what)
  if idx.size == 0 then return end
  local _, mn = nd.eval_reduce(M.LOAD, "min", false, 0, idx)
  if mn < 0 then error(("lask.array: %s: an all-NaN slice"):format(what), 0) end
end

local function nan_name(op, skipnan) return (skipnan and "nan" or "") .. op end

local function empty_check(a, list, op, skipnan)
  if op ~= "min" and op ~= "max" and op ~= "argmin" and op ~= "argmax" then
    return
  end
  local shape = a.shape
  for _, z in ipairs(list) do
    if shape[z + 1] == 0 then
      error(("lask.array: %s of an empty axis (zero-size reduction with " ..
             "no identity)"):format(nan_name(op, skipnan)), 4)
    end
  end
end

-- drops the reduced axes of a keepdims result
local function squeeze(r, set, ndim)
  local drop = {}
  for i = 1, ndim do
    if set[i - 1] then drop[#drop + 1] = i - 1 end
  end
  return nd.squeeze(r, drop)
end

local function to_number(r)
  local v = nd.flat(r)[1]
  return v
end

-- reduce(a, op, opts, skipnan)
local function reduce(a, op, opts, skipnan)
  opts = opts or {}
  if type(opts) ~= "table" then
    error(("lask.array: %s takes an options table {axis=, keepdims=}")
      :format(op), 3)
  end
  for k in pairs(opts) do
    if k ~= "axis" and k ~= "keepdims" and k ~= "ddof" and
       k ~= "split_every" then
      error(("lask.array: %s: unknown option '%s'"):format(op, tostring(k)),
            3)
    end
  end
  if opts.ddof ~= nil and type(opts.ddof) ~= "number" then
    error(("lask.array: %s: ddof must be a number"):format(op), 3)
  end
  local ndim = a.ndim
  local list, set = M.norm_axes(opts.axis, ndim, nan_name(op, skipnan))
  empty_check(a, list, op, skipnan)
  local full = #list == ndim and not opts.keepdims
  local dt = a.dtype
  local r
  if op == "argmin" or op == "argmax" then
    if opts.axis ~= nil and #list ~= 1 then
      error(("lask.array: %s takes one axis"):format(op), 3)
    end
    if opts.axis == nil then
      local _, _, cnt, pos = nd.eval_reduce(M.LOAD, op, skipnan, 0, a)
      if pos < 0 or cnt == 0 then
        error(("lask.array: %s: all values are NaN"):format(
          nan_name(op, skipnan)), 3)
      end
      return pos + 1
    end
    local idx = nd.reduce(a, list, op, skipnan, "int64")
    if skipnan then M.check_positions(idx, nan_name(op, skipnan)) end
    r = run(M.node("add", M.leaf(idx), 1))
    return opts.keepdims and r or squeeze(r, set, ndim)
  end
  if full and (op == "sum" or op == "prod" or op == "min" or op == "max" or
               op == "any" or op == "all") then
    local f, i, cnt = nd.eval_reduce(M.LOAD, op, skipnan, 0, a)
    if op == "any" or op == "all" or (dt == "bool" and
                                       (op == "min" or op == "max")) then
      return i ~= 0
    end
    if is_float(dt) then
      if (op == "min" or op == "max") and cnt == 0 then return 0 / 0 end
      return f
    end
    return i
  end
  if op == "mean" or op == "var" or op == "std" then
    local s = nd.reduce(a, list, "sum", skipnan, "float64")
    local n
    if skipnan then
      n = nd.reduce(a, list, "count", true, "float64")
    else
      local c = 1
      for _, z in ipairs(list) do c = c * a.shape[z + 1] end
      n = c
    end
    local mean = run(M.node("div", M.leaf(s), is_nd(n) and M.leaf(n) or n))
    if op == "mean" then
      r = mean
    else
      local ddof = opts.ddof or 0
      local sq = nd.reduce(a, list, "sqdev", skipnan, "float64", mean)
      r = run(M.var_node(is_nd(n) and M.leaf(n) or n, M.leaf(sq), ddof,
                         skipnan, op == "std"))
    end
    local out = red_dtype(op, dt)
    if out ~= "float64" then r = nd.copy(r, out) end
  else
    r = nd.reduce(a, list, op, skipnan, red_dtype(op, dt))
  end
  if full then return to_number(r) end
  return opts.keepdims and r or squeeze(r, set, ndim)
end
M.reduce = reduce

--- add_reductions(methods, f): methods.sum ... methods.all and their
-- nan* forms, each calling f(self, op, opts, skipnan) (lask.array too).
function M.add_reductions(into, f)
  for _, op in ipairs{"sum", "prod", "min", "max", "mean", "var", "std",
                      "argmin", "argmax", "any", "all"} do
    into[op] = function(self, opts) return f(self, op, opts, false) end
    if op ~= "any" and op ~= "all" then
      into["nan" .. op] = function(self, opts) return f(self, op, opts, true) end
    end
  end
end
M.add_reductions(methods, reduce)

----------------------------------------------------------------------------
-- Constructors
----------------------------------------------------------------------------

local function shape_of(shape, where)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" then
    error(("lask.array: %s: shape must be a number or a list"):format(where),
          3)
  end
  return shape
end
M.shape_of = shape_of

function M.zeros(shape, dtype)
  return nd.new(check_dtype(dtype, "zeros") or "float64",
                shape_of(shape, "zeros"))
end
function M.ones(shape, dtype)
  return nd.new(check_dtype(dtype, "ones") or "float64",
                shape_of(shape, "ones"), 1)
end
function M.full(shape, v, dtype)
  dtype = check_dtype(dtype, "full") or (type(v) == "boolean" and "bool" or
    (mtype(v) == "integer" and "int64" or "float64"))
  M.check_fits(v, dtype, "full")
  return nd.new(dtype, shape_of(shape, "full"), v)
end
M.empty = M.zeros

-- arange(start, stop [, step] [, dtype]): start, start+step, ... < stop.
function M.arange(start, stop, step, dtype)
  if stop == nil then start, stop = 0, start end
  if type(step) == "string" then step, dtype = nil, step end
  step = step or 1
  if step == 0 then error("lask.array: arange: step must not be 0", 2) end
  local n = math.ceil((stop - start) / step)
  if n < 0 then n = 0 end
  dtype = check_dtype(dtype, "arange") or
    ((mtype(start) == "integer" and mtype(stop) == "integer" and
      mtype(step) == "integer") and "int64" or "float64")
  return nd.arange(dtype, n, start, step)
end

function M.linspace(a, b, n, dtype)
  n = n or 50
  local step = n > 1 and (b - a) / (n - 1) or 0
  local r = nd.arange("float64", n, a, step)
  if n > 1 then nd.set(r, n, b) end
  if dtype and dtype ~= "float64" then r = nd.copy(r, dtype) end
  return r
end

function M.eye(n, m, dtype)
  if type(m) == "string" then m, dtype = nil, m end
  m = m or n
  local r = nd.new(check_dtype(dtype, "eye") or "float64", {n, m})
  for i = 1, math.min(n, m) do nd.set(r, i, i, 1) end
  return r
end

-- Shape of a nested table, checking it is rectangular.
local function table_shape(t)
  local shape, x = {}, t
  while type(x) == "table" do
    if #shape == 32 then
      error("lask.array: from_table: nested more than 32 deep (a table " ..
            "that holds itself?)", 4)
    end
    shape[#shape + 1] = #x
    x = x[1]
  end
  return shape
end

function M.from_table(t, dtype)
  if is_nd(t) then return dtype and nd.copy(t, dtype) or t end
  if type(t) ~= "table" then
    if type(t) == "number" or type(t) == "boolean" then
      return M.full({}, t, dtype)
    end
    error("lask.array: from_table: expected a table, got " .. type(t), 2)
  end
  local shape = table_shape(t)
  local flat, allint, allbool = {}, true, true
  local function walk(x, depth)
    if depth > #shape then
      local tx = type(x)
      if tx == "boolean" then allint = allint
      elseif tx == "number" then
        allbool = false
        if mtype(x) ~= "integer" then allint = false end
      else
        error(("lask.array: from_table: values must be numbers or " ..
               "booleans, got %s"):format(tx), 4)
      end
      flat[#flat + 1] = x
      return
    end
    if type(x) ~= "table" or #x ~= shape[depth] then
      error("lask.array: from_table: ragged nested tables (every row " ..
            "must have the same length)", 4)
    end
    for i = 1, #x do walk(x[i], depth + 1) end
  end
  walk(t, 1)
  dtype = check_dtype(dtype, "from_table") or
    (#flat > 0 and allbool and "bool") or (allint and #flat > 0 and "int64")
    or "float64"
  return nd.from_flat(dtype, shape, flat)
end

function M.load(path)
  if type(path) ~= "string" then
    error("lask.array: load: expected a path", 2)
  end
  return nd.npy_read(path)
end

function M.concatenate(list, axis)
  if type(list) ~= "table" or #list == 0 then
    error("lask.array: concatenate: expected a non-empty list of arrays", 2)
  end
  local first = list[1]
  if not is_nd(first) then
    error("lask.array: concatenate: item 1 is not an array", 2)
  end
  local ndim = first.ndim
  local z = M.norm_axis(axis or 1, ndim, "concatenate")
  local shape, dt, total = first.shape, first.dtype, 0
  for i, a in ipairs(list) do
    if not is_nd(a) or a.ndim ~= ndim then
      error(("lask.array: concatenate: item %d is not an array of %d " ..
             "dimensions"):format(i, ndim), 2)
    end
    local s = a.shape
    for k = 1, ndim do
      if k ~= z + 1 and s[k] ~= shape[k] then
        error(("lask.array: concatenate: item %d has length %d on axis " ..
               "%d, expected %d"):format(i, s[k], k, shape[k]), 2)
      end
    end
    total = total + s[z + 1]
    dt = promote(dt, a.dtype)
  end
  local oshape = {unpack(shape)}
  oshape[z + 1] = total
  local out = nd.new(dt, oshape)
  local at = 0
  for _, a in ipairs(list) do
    local starts, steps, counts = {}, {}, {}
    for k = 1, ndim do
      starts[k], steps[k], counts[k] = 0, 1, oshape[k]
    end
    local n = a.shape[z + 1]
    starts[z + 1], counts[z + 1] = at, n
    if n > 0 then nd.assign(nd.view(out, starts, steps, counts), a) end
    at = at + n
  end
  return out
end

function M.stack(list, axis)
  if type(list) ~= "table" or #list == 0 then
    error("lask.array: stack: expected a non-empty list of arrays", 2)
  end
  local ndim = list[1].ndim
  local z = M.norm_axis(axis or 1, ndim + 1, "stack")
  local parts = {}
  for i, a in ipairs(list) do
    local s = {unpack(a.shape)}
    table.insert(s, z + 1, 1)
    parts[i] = nd.reshape(a, s)
  end
  return M.concatenate(parts, z + 1)
end

function M.dot(a, b) return methods.matmul(a, b) end

M.methods = methods
nd.set_methods(methods)
return M
