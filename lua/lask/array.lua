--- lask.array: chunked n-dimensional arrays, computed lazily on lask's
-- task engine (API.md "Array").
--
-- Design. An Array is a grid of blocks over its shape: 'chunks' lists,
-- per axis, the block lengths. It is one of two kinds:
--   blocks  'blocks' is the grid, flat in C order, of Delayed values that
--           each produce an ndarray (lask.ndarray) of that block's shape;
--   ew      an elementwise expression (lask.ndarray's nodes) over leaves
--           that are blocks-kind Arrays, not yet turned into tasks.
-- Elementwise operations on either kind make a new ew Array whose tree
-- includes the operand's tree, so a chain such as sin(x)^2 + cos(x)^2
-- becomes one program and one task per block, reading x once. Anything
-- else (slicing, rechunking, matmul, ...) first materializes an ew Array
-- into one task per block. A full reduction of an ew Array runs the
-- program and the reduction in the same pass (nothing stored).
-- Reductions are trees: a partial per block, combined split_every at a
-- time along the reduced axes, then finished per output block.
-- Blocks are ndarrays: inside one process they move between executors by
-- reference (the codec carries the buffer's address and a reference).
local lask = require "lask"
local N = require "lask.ndarray"
local core = require "lask.core"
local nd = core.nd

local la = {}
local Array = {}
local methods = {}
Array.__index = function(self, k)
  if k == "size" then
    local n = 1
    for _, d in ipairs(rawget(self, "shape")) do n = n * d end
    return n
  elseif k == "ndim" then return #rawget(self, "shape")
  elseif k == "npartitions" or k == "nblocks" then
    local n = 1
    for _, c in ipairs(rawget(self, "chunks")) do n = n * #c end
    return n
  end
  return methods[k]
end
la.Array = Array
Array.__lask_collection = true -- lask.compute(x, y) computes it
local unpack = table.unpack or unpack

local function is_array(x) return getmetatable(x) == Array end
la.is_array = is_array

local function fail(msg, level) error("lask.array: " .. msg, (level or 1) + 1) end

----------------------------------------------------------------------------
-- Chunks
----------------------------------------------------------------------------

local AUTO_BYTES = 128 * 1024 * 1024

-- With lask.config.set{memory_limit = ...}: "auto" blocks of at most an
-- eighth of the limit per worker, and a buffer pool of a quarter of it.
local function memory_limit()
  local limit = lask.config.get("memory_limit")
  if not limit then return nil end
  return require("lask.bag").parse_bytes(limit, "lask.config memory_limit")
end

local function auto_bytes()
  local limit = memory_limit()
  if not limit then return AUTO_BYTES end
  return math.max(1e5, math.min(AUTO_BYTES,
    limit / (8 * lask.config.get("num_workers"))))
end

local pool_set
local function limit_pool()
  local limit = memory_limit()
  if limit and limit ~= pool_set then
    nd.pool_limit(limit / 4)
    pool_set = limit
  elseif not limit and pool_set then -- memory_limit cleared: the default
    nd.pool_limit()
    pool_set = nil
  end
end

local function split_len(d, c)
  local out = {}
  if d == 0 then return {0} end
  local at = 0
  while at < d do
    local n = math.min(c, d - at)
    out[#out + 1] = n
    at = at + n
  end
  return out
end

--- normalize_chunks(chunks, shape, dtype): per-axis lists of lengths.
-- chunks: a number (every axis), a list with per axis a number, -1
-- (whole axis) or an explicit list of lengths, or "auto" / nil.
function la.normalize_chunks(chunks, shape, dtype)
  local ndim = #shape
  local out = {}
  if chunks == nil or chunks == "auto" then
    local isz = (dtype == "float64" or dtype == "int64") and 8 or
      ((dtype == "float32" or dtype == "int32") and 4 or 1)
    -- square-ish blocks of at most auto_bytes(): shortest axes first,
    -- each takes its share (the n-th root of what is left) or its length
    local budget = math.max(1, math.floor(auto_bytes() / isz))
    local per, order = {}, {}
    for k = 1, ndim do order[k] = k end
    table.sort(order, function(p, q) return shape[p] < shape[q] end)
    for j, k in ipairs(order) do
      local edge = math.floor(budget ^ (1 / (ndim - j + 1)) + 1e-9)
      per[k] = math.max(1, math.min(math.max(shape[k], 1), edge))
      budget = math.max(1, math.floor(budget / per[k]))
    end
    for k = 1, ndim do out[k] = split_len(shape[k], per[k]) end
    return out
  end
  if type(chunks) == "number" then
    local t = {}
    for i = 1, ndim do t[i] = chunks end
    chunks = t
  end
  if type(chunks) ~= "table" or #chunks ~= ndim then
    fail(("chunks must give one entry per axis (%d)"):format(ndim), 3)
  end
  for i = 1, ndim do
    local c, d = chunks[i], shape[i]
    if c == -1 or c == "auto" then out[i] = {d}
    elseif type(c) == "number" then
      if c < 1 or c ~= math.floor(c) then
        fail(("chunks: axis %d: bad chunk length %s"):format(i, tostring(c)), 3)
      end
      out[i] = split_len(d, c)
    elseif type(c) == "table" then
      local s = 0
      for _, n in ipairs(c) do
        if type(n) ~= "number" or n < 0 or n ~= math.floor(n) then
          fail(("chunks: axis %d: bad chunk length %s"):format(i,
               tostring(n)), 3)
        end
        s = s + n
      end
      if s ~= d then
        fail(("chunks: axis %d: lengths add up to %d, the axis has %d")
          :format(i, s, d), 3)
      end
      -- zero-length blocks carry nothing: kept out of the grid
      out[i] = {}
      for _, n in ipairs(c) do
        if n > 0 then out[i][#out[i] + 1] = n end
      end
      if #out[i] == 0 then out[i] = {0} end
    else
      fail(("chunks: axis %d: expected a number or a list"):format(i), 3)
    end
  end
  return out
end

-- Starts (0-based) of the blocks along one axis.
local function offsets(c)
  local o, at = {}, 0
  for i, n in ipairs(c) do
    o[i] = at
    at = at + n
  end
  return o
end

-- Iterates over the block grid in C order: calls f(idx) with a 1-based
-- index list (reused: copy it to keep it), returns the number of blocks.
local function each_block(chunks, f)
  local ndim = #chunks
  local idx = {}
  for i = 1, ndim do
    idx[i] = 1
    if #chunks[i] == 0 then return 0 end
  end
  local n = 0
  while true do
    n = n + 1
    f(idx, n)
    local d = ndim
    while d >= 1 do
      idx[d] = idx[d] + 1
      if idx[d] <= #chunks[d] then break end
      idx[d] = 1
      d = d - 1
    end
    if d < 1 then return n end
  end
end
la.each_block = each_block

-- Flat (1-based) position of a block index in the grid.
local function flat_index(chunks, idx)
  local k = 0
  for i = 1, #chunks do k = k * #chunks[i] + (idx[i] - 1) end
  return k + 1
end

local function block_shape(chunks, idx)
  local s = {}
  for i = 1, #chunks do s[i] = chunks[i][idx[i]] end
  return s
end

local function copy_chunks(c)
  local out = {}
  for i, l in ipairs(c) do out[i] = {unpack(l)} end
  return out
end

local function same_chunks(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if #a[i] ~= #b[i] then return false end
    for j = 1, #a[i] do if a[i][j] ~= b[i][j] then return false end end
  end
  return true
end

local function new_blocks(shape, chunks, dtype, blocks)
  return setmetatable({shape = shape, chunks = chunks, dtype = dtype,
                       blocks = blocks}, Array)
end

----------------------------------------------------------------------------
-- Tasks (module functions: they travel to executors by reference)
----------------------------------------------------------------------------

la.tasks = {}
local T = la.tasks

function T.new(dtype, shape, v) return require("lask.core").nd.new(dtype, shape, v) end
function T.random(shape, seed, stream, kind)
  return require("lask.core").nd.random(shape, seed, stream, kind)
end
function T.arange(dtype, n, start, step)
  return require("lask.core").nd.arange(dtype, n, start, step)
end
function T.eye(dtype, shape, ro, co)
  local nd_ = require("lask.core").nd
  local b = nd_.new(dtype, shape)
  for i = 1, shape[1] do
    local j = i + ro - co
    if j >= 1 and j <= shape[2] then nd_.set(b, i, j, 1) end
  end
  return b
end
function T.eval(prog, dtype, ...)
  return require("lask.core").nd.eval(prog, dtype, ...)
end
function T.view(b, starts, steps, counts, drop)
  local nd_ = require("lask.core").nd
  local v = nd_.view(b, starts, steps, counts)
  if drop then v = nd_.squeeze(v, drop) end
  return v
end
function T.transpose(b, perm) return require("lask.core").nd.transpose(b, perm) end
function T.reshape(b, shape) return require("lask.core").nd.reshape(b, shape) end
function T.astype(b, dt) return require("lask.core").nd.copy(b, dt) end
-- assemble(dtype, shape, pieces...): pieces are {block, starts, counts,
-- ostarts} (0-based): that region of block goes to ostarts of the output.
function T.assemble(dtype, shape, ...)
  local nd_ = require("lask.core").nd
  local out = nd_.new(dtype, shape)
  local ones = {}
  for i = 1, #shape do ones[i] = 1 end
  for i = 1, select("#", ...) do
    local p = select(i, ...)
    local src = nd_.view(p[1], p[2], ones, p[3])
    local dst = nd_.view(out, p[4], ones, p[3])
    nd_.assign(dst, src)
  end
  return out
end
function T.matmul_sum(dtype, np, ...)
  local nd_ = require("lask.core").nd
  local acc
  for p = 1, np do
    local a, b = select(p, ...), select(np + p, ...)
    if acc ~= nil and (dtype == "float64" or dtype == "float32") then
      nd_.matmul_acc(acc, a, b) -- acc += a @ b, in place
    elseif acc == nil then acc = nd_.matmul(a, b, dtype)
    else
      local m = nd_.matmul(a, b, dtype)
      acc = require("lask.ndarray").run(require("lask.ndarray").node("add",
        {leaf = acc, dtype = dtype}, {leaf = m, dtype = dtype}))
    end
  end
  return acc
end
function T.map_block(fn, info, dtype, b, shape)
  local r = fn(b, info)
  local N_ = require("lask.ndarray")
  if not N_.is_ndarray(r) then
    if type(r) == "table" or type(r) == "number" or type(r) == "boolean" then
      r = N_.from_table(r, dtype)
    else
      error("lask.array: map_blocks: the function returned a " .. type(r) ..
            ", not an ndarray", 0)
    end
  end
  local where = " for block {" .. table.concat(info.block_id, ", ") .. "}"
  if r.dtype ~= dtype then
    error(("lask.array: map_blocks: the function returned a %s block%s; " ..
           "say map_blocks(fn, {dtype = \"%s\"})"):format(r.dtype, where,
           r.dtype), 0)
  end
  local got = r.shape
  local same = #got == #shape
  for i = 1, #shape do same = same and got[i] == shape[i] end
  if not same then
    error(("lask.array: map_blocks: the function returned a block of " ..
           "shape {%s}%s, expected {%s} (give chunks = ... for other " ..
           "shapes)"):format(table.concat(got, ", "), where,
           table.concat(shape, ", ")), 0)
  end
  return r
end
function T.npy_read(path, starts, counts, dtype)
  local b = require("lask.core").nd.npy_read(path, starts, counts)
  if dtype and b.dtype ~= dtype then
    error(("lask.array: %s changed since from_npy read it: now %s, was %s")
      :format(path, b.dtype, dtype), 0)
  end
  return b
end
function T.npy_write(path, b, starts)
  require("lask.core").nd.npy_write(path, b, starts)
  return true
end

local function dtask(fn, name) return lask.delayed(fn, {name = name}) end
local D = {}
for k, f in pairs(T) do D[k] = dtask(f, "array-" .. k) end

----------------------------------------------------------------------------
-- Constructors
----------------------------------------------------------------------------

local function check_opts(opts, allowed, where)
  opts = opts or {}
  if type(opts) ~= "table" then fail(where .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if not allowed[k] then
      fail(("%s: unknown option '%s'"):format(where, tostring(k)), 3)
    end
  end
  return opts
end

local function check_shape(shape, where)
  if type(shape) == "number" then shape = {shape} end
  if type(shape) ~= "table" then fail(where .. ": shape must be a list", 3) end
  local s = {}
  for i, d in ipairs(shape) do
    if type(d) ~= "number" or d < 0 or d ~= math.floor(d) then
      fail(("%s: shape entry %d must be a non-negative integer"):format(
        where, i), 3)
    end
    s[i] = math.tointeger and math.tointeger(d) or d
  end
  return s
end

local CONS = {chunks = true, dtype = true}

local MAX_BLOCKS = 1e6

local function from_fn(shape, opts, where, dtype, make)
  local size = 1
  for _, d in ipairs(shape) do size = size * d end
  if size > 2 ^ 47 then
    fail(("%s: shape {%s} is too large (%.3g elements)"):format(where,
      table.concat(shape, ", "), size), 3)
  end
  local chunks = la.normalize_chunks(opts.chunks, shape, dtype)
  local nblocks = 1
  for _, c in ipairs(chunks) do nblocks = nblocks * #c end
  if nblocks > MAX_BLOCKS then
    fail(("%s: %.3g blocks: use larger chunks (at most %d blocks)"):format(
      where, nblocks, MAX_BLOCKS), 3)
  end
  local blocks = {}
  local offs = {}
  for i, c in ipairs(chunks) do offs[i] = offsets(c) end
  each_block(chunks, function(idx, k)
    local start = {}
    for i = 1, #idx do start[i] = offs[i][idx[i]] end
    blocks[k] = make(block_shape(chunks, idx), start, k, idx)
  end)
  return new_blocks(shape, chunks, dtype, blocks)
end

function la.full(shape, v, opts)
  opts = check_opts(opts, CONS, "full")
  shape = check_shape(shape, "full")
  local dt = N.check_dtype(opts.dtype, "full") or (type(v) == "boolean" and
    "bool" or (N.mtype(v) == "integer" and "int64" or "float64"))
  N.check_fits(v, dt, "full")
  return from_fn(shape, opts, "full", dt, function(bs)
    return D.new(dt, bs, v)
  end)
end
function la.zeros(shape, opts)
  opts = check_opts(opts, CONS, "zeros")
  local o = {chunks = opts.chunks, dtype = opts.dtype or "float64"}
  return la.full(shape, 0, o)
end
function la.ones(shape, opts)
  opts = check_opts(opts, CONS, "ones")
  local o = {chunks = opts.chunks, dtype = opts.dtype or "float64"}
  return la.full(shape, 1, o)
end

function la.arange(start, stop, step, opts)
  if type(step) == "table" then step, opts = nil, step end
  if type(stop) == "table" then stop, opts = nil, stop end
  if stop == nil then start, stop = 0, start end
  step = step or 1
  opts = check_opts(opts, CONS, "arange")
  if step == 0 then fail("arange: step must not be 0", 2) end
  for _, v in ipairs{start, stop, step} do
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      fail("arange: start, stop and step must be finite numbers", 2)
    end
  end
  local n = math.max(0, math.ceil((stop - start) / step))
  local mt = N.mtype
  local dt = N.check_dtype(opts.dtype, "arange") or
    ((mt(start) == "integer" and mt(stop) == "integer" and
      mt(step) == "integer") and "int64" or "float64")
  return from_fn({n}, opts, "arange", dt, function(bs, st)
    return D.arange(dt, bs[1], start + st[1] * step, step)
  end)
end

function la.linspace(a, b, n, opts)
  opts = check_opts(opts, CONS, "linspace")
  n = n or 50
  if type(n) ~= "number" or n < 0 or n ~= math.floor(n) then
    fail("linspace: the number of values must be a non-negative integer", 2)
  end
  if type(a) ~= "number" or type(b) ~= "number" then
    fail("linspace: the ends must be numbers", 2)
  end
  local step = n > 1 and (b - a) / (n - 1) or 0
  local arr = from_fn({n}, opts, "linspace", "float64", function(bs, st)
    return D.arange("float64", bs[1], a + st[1] * step, step)
  end)
  -- the last value is exactly b, as NumPy makes it
  if n > 1 then
    local k = #arr.blocks
    local last = arr.chunks[1][#arr.chunks[1]]
    arr.blocks[k] = lask.delayed(function(blk, pos, v)
      require("lask.core").nd.set(blk, pos, v)
      return blk
    end, {name = "array-linspace"})(arr.blocks[k], last, b)
  end
  if opts.dtype and opts.dtype ~= "float64" then return arr:astype(opts.dtype) end
  return arr
end

function la.eye(n, opts)
  if type(opts) == "number" then opts = {m = opts} end
  opts = check_opts(opts, {chunks = true, dtype = true, m = true}, "eye")
  local m = opts.m or n
  for _, d in ipairs{n, m} do
    if type(d) ~= "number" or d < 0 or d ~= math.floor(d) then
      fail("eye: sizes must be non-negative integers", 2)
    end
  end
  local dt = N.check_dtype(opts.dtype, "eye") or "float64"
  return from_fn({n, m}, opts, "eye", dt, function(bs, st)
    return D.eye(dt, bs, st[1], st[2])
  end)
end

la.random = {}
local seed_counter = 0
local function seed_of(opts)
  if opts.seed ~= nil then
    if type(opts.seed) ~= "number" or opts.seed < 0 or opts.seed >= 2 ^ 53 or
       opts.seed ~= math.floor(opts.seed) then
      fail("random: seed must be an integer from 0 to 2^53 - 1", 3)
    end
    return opts.seed
  end
  -- no seed: the clock to the microsecond, the process and a counter
  seed_counter = seed_counter + 1
  local pid = tonumber((io.open("/proc/self/stat") or {read = function()
    return "0" end}):read("*n") or 0) or 0
  return math.floor(core.now() * 1e6 + os.time() * 7919 + pid * 104729 +
                    seed_counter * 15485863) % 2 ^ 52
end
local function random_kind(kind, name)
  local known = {chunks = true, seed = true, dtype = true}
  if kind == 1 then known.loc, known.scale = true, true end
  return function(shape, opts)
    opts = check_opts(opts, known, name)
    shape = check_shape(shape, name)
    for _, k in ipairs{"loc", "scale"} do
      local v = opts[k]
      if v ~= nil and (type(v) ~= "number" or v ~= v or
                       math.abs(v) == math.huge) then
        fail(("%s: %s must be a finite number, got %s"):format(name, k,
             tostring(v)), 2)
      end
    end
    if opts.scale and opts.scale < 0 then
      fail(name .. ": scale must be >= 0, got " .. opts.scale, 2)
    end
    local seed = seed_of(opts)
    local arr = from_fn(shape, opts, name, "float64", function(bs, _, k)
      return D.random(bs, seed, k, kind)
    end)
    -- normal(loc, scale): the standard draws, scaled and moved (fused)
    if opts.scale and opts.scale ~= 1 then arr = arr * opts.scale end
    if opts.loc and opts.loc ~= 0 then arr = arr + opts.loc end
    if opts.dtype and opts.dtype ~= "float64" then return arr:astype(opts.dtype) end
    return arr
  end
end
la.random.random = random_kind(0, "random.random")
la.random.normal = random_kind(1, "random.normal")

-- An in-memory ndarray cut into blocks (each a copy, so blocks own their
-- memory and the source may change afterwards).
local function from_ndarray(a, opts)
  local shape = a.shape
  local ones = {}
  for i = 1, #shape do ones[i] = 1 end
  return from_fn(shape, opts, "from_table", a.dtype, function(bs, st)
    return lask.delayed(nd.copy(nd.view(a, st, ones, bs)),
                        {name = "array-from-table"})
  end)
end

function la.from_table(t, opts)
  opts = check_opts(opts, CONS, "from_table")
  local a = N.from_table(t, opts.dtype)
  return from_ndarray(a, opts)
end
la.asarray = function(x, opts)
  if is_array(x) then return x end
  if N.is_ndarray(x) then
    opts = check_opts(opts, CONS, "asarray")
    if opts.dtype then x = nd.copy(x, opts.dtype) end
    return from_ndarray(x, opts)
  end
  return la.from_table(x, opts)
end

function la.from_npy(path, opts)
  if type(path) ~= "string" then fail("from_npy: expected a path", 2) end
  opts = check_opts(opts, {chunks = true}, "from_npy")
  local info = nd.npy_info(path)
  return from_fn(info.shape, opts, "from_npy", info.dtype, function(bs, st)
    return D.npy_read(path, st, bs, info.dtype)
  end)
end

----------------------------------------------------------------------------
-- Elementwise: building and materializing expressions
----------------------------------------------------------------------------

local function expr_of(x)
  if is_array(x) then
    if x.expr then return x.expr end
    return {leaf = x, dtype = x.dtype}
  end
  if N.is_ndarray(x) then return expr_of(la.asarray(x)) end
  return x -- a scalar
end

-- Broadcast shape of arrays (right-aligned), or an error.
local function broadcast_shapes(list, where)
  local nd_ = 0
  for _, s in ipairs(list) do nd_ = math.max(nd_, #s) end
  local out = {}
  for i = 1, nd_ do
    local d = 1
    for _, s in ipairs(list) do
      local e = s[#s - nd_ + i]
      if e and e ~= 1 then
        if d ~= 1 and e ~= d then
          fail(("%s: shapes {%s} do not broadcast together"):format(where,
            (function()
              local t = {}
              for k, x in ipairs(list) do t[k] = table.concat(x, ", ") end
              return table.concat(t, "} and {")
            end)()), 4)
        end
        d = e
      end
    end
    out[i] = d
  end
  return out
end

local materialize

-- Distinct inputs and steps of an expression tree.
local function expr_size(node)
  local seen, leaves, steps = {}, {}, 0
  local function walk(x)
    if type(x) ~= "table" or seen[x] then return end
    seen[x] = true
    steps = steps + 1
    if x.leaf ~= nil then leaves[x.leaf] = true return end
    for i = 1, #x do walk(x[i]) end
  end
  walk(node)
  local nl = 0
  for _ in pairs(leaves) do nl = nl + 1 end
  return nl, steps
end

local ew
ew = function(op, where, ...)
  local args = {...}
  local n = select("#", ...)
  local shapes = {}
  local nodes = {}
  for i = 1, n do
    local a = args[i]
    if N.is_ndarray(a) then a = la.asarray(a) end
    if is_array(a) then
      shapes[#shapes + 1] = a.shape
    elseif type(a) ~= "number" and type(a) ~= "boolean" and
           not (op == "astype" and i == 2) then
      fail(("%s: expected an array or a number, got %s"):format(where,
           type(a)), 3)
    end
    nodes[i] = expr_of(a)
  end
  local shape = broadcast_shapes(shapes, where)
  local node = N.node(op, unpack(nodes, 1, n))
  -- A program holds at most 32 inputs and 255 steps: past about half of
  -- that, the operands become tasks of their own and a new chain starts.
  local nl, steps = expr_size(node)
  if nl > 16 or steps > 100 then
    local again = {}
    for i = 1, n do
      local a = args[i]
      if is_array(a) and a.expr then materialize(a) end
      again[i] = a
    end
    if nl > 16 or steps > 100 then
      for i = 1, n do nodes[i] = expr_of(again[i]) end
      node = N.node(op, unpack(nodes, 1, n))
    end
  end
  -- chunks: per axis, those of the first operand spanning the whole axis
  local chunks = {}
  for i = 1, #shape do
    for k = 1, n do
      local a = args[k]
      if N.is_ndarray(a) then a = nil end
      if is_array(a) then
        local j = i - (#shape - a.ndim)
        if j >= 1 and a.shape[j] == shape[i] then
          chunks[i] = {unpack(a.chunks[j])}
          break
        end
      end
    end
    chunks[i] = chunks[i] or {shape[i]}
  end
  return setmetatable({shape = shape, chunks = chunks, dtype = node.dtype,
                       expr = node}, Array)
end

local rechunk

-- The blocks of leaf 'a' arranged for an output of 'shape'/'chunks':
-- rechunked on the axes it spans, its single block on broadcast axes.
local function leaf_for(a, shape, chunks)
  local want = {}
  local off = #shape - a.ndim
  local need = false
  for j = 1, a.ndim do
    if a.shape[j] == shape[j + off] then
      want[j] = chunks[j + off]
      if not same_chunks({a.chunks[j]}, {want[j]}) then need = true end
    else
      want[j] = {a.shape[j]} -- broadcast (length 1)
      if #a.chunks[j] ~= 1 then need = true end
    end
  end
  if need then a = rechunk(a, want) end
  return a
end

materialize = function(x)
  if not x.expr then return x end
  local prog, inputs, dt = N.compile(x.expr)
  local shape, chunks = x.shape, x.chunks
  local ins = {}
  for i, a in ipairs(inputs) do ins[i] = leaf_for(a, shape, chunks) end
  local blocks = {}
  each_block(chunks, function(idx, k)
    local args = {}
    for i, a in ipairs(ins) do
      local off = #shape - a.ndim
      local bi = {}
      for j = 1, a.ndim do
        bi[j] = (#a.chunks[j] == 1) and 1 or idx[j + off]
      end
      args[i] = a.blocks[flat_index(a.chunks, bi)]
    end
    blocks[k] = D.eval(prog, dt, unpack(args))
  end)
  -- the expression becomes these tasks, once
  rawset(x, "blocks", blocks)
  rawset(x, "expr", nil)
  return x
end
la.materialize = materialize
--- elementwise(op, ...): the lazy form of an operation of lask.ndarray's
-- expression nodes (used when an ndarray meets a lask.array).
function la.elementwise(op, ...) return ew(op, op, ...) end

local function binop(op)
  return function(a, b)
    -- an ndarray with a lask array: the lazy side wins
    return ew(op, op, a, b)
  end
end
Array.__add = binop("add")
Array.__sub = binop("sub")
Array.__mul = binop("mul")
Array.__div = binop("div")
Array.__mod = binop("mod")
Array.__pow = binop("pow")
Array.__unm = function(a) return ew("neg", "neg", a) end
for _, op in ipairs{"eq", "ne", "lt", "le", "gt", "ge"} do
  methods[op] = function(a, b) return ew(op, op, a, b) end
end
methods["and"] = function(a, b) return ew("and", "and", a, b) end
methods["or"] = function(a, b) return ew("or", "or", a, b) end
methods["not"] = function(a) return ew("not", "not", a) end

-- la.sin etc.: lazy for lask arrays, eager for ndarrays and numbers.
local function unary(op)
  return function(x)
    if is_array(x) then return ew(op, op, x) end
    if N.is_ndarray(x) then return N[op](x) end
    if type(x) == "number" then
      return nd.flat(N[op](N.full({}, x)))[1]
    end
    fail(op .. ": expected an array or a number, got " .. type(x), 2)
  end
end
for f in pairs(N.FLOAT_FUNCS) do la[f] = unary(f) end
for _, f in ipairs{"abs", "sign", "square", "isnan", "isinf", "isfinite"} do
  la[f] = unary(f)
end
local function binary(op, eager)
  return function(a, b)
    if is_array(a) or is_array(b) then return ew(op, op, a, b) end
    return N[eager](a, b)
  end
end
la.maximum = binary("max", "maximum")
la.minimum = binary("min", "minimum")
la.fmax = binary("fmax", "fmax")
la.fmin = binary("fmin", "fmin")
la.atan2 = binary("atan2", "atan2")
function la.where(c, a, b)
  if is_array(c) or is_array(a) or is_array(b) then
    return ew("where", "where", c, a, b)
  end
  return N.where(c, a, b)
end

function methods:astype(dt)
  N.check_dtype(dt, "astype")
  if dt == self.dtype then return self end
  return ew("astype", "astype", self, dt)
end

----------------------------------------------------------------------------
-- Structure: rechunk, slice, transpose, reshape, concatenate, stack
----------------------------------------------------------------------------

-- For each new block along one axis: the list of {old block, start within
-- it, count, start within the new block}.
local function overlaps(old, new)
  local res = {}
  local oo = offsets(old)
  local j = 1
  local at = 0
  for i, n in ipairs(new) do
    local pieces = {}
    local s, e = at, at + n -- [s, e)
    while j <= #old and oo[j] + old[j] <= s and old[j] > 0 do j = j + 1 end
    local k = j
    while k <= #old and oo[k] < e do
      local a = math.max(s, oo[k])
      local b = math.min(e, oo[k] + old[k])
      if b > a then pieces[#pieces + 1] = {k, a - oo[k], b - a, a - s} end
      k = k + 1
    end
    if n == 0 then pieces = {{1, 0, 0, 0}} end
    res[i] = pieces
    at = e
  end
  return res
end

rechunk = function(x, chunks)
  x = materialize(x)
  local new = la.normalize_chunks(chunks, x.shape, x.dtype)
  if same_chunks(new, x.chunks) then return x end
  local ndim = x.ndim
  local per = {}
  for i = 1, ndim do per[i] = overlaps(x.chunks[i], new[i]) end
  local blocks = {}
  each_block(new, function(idx, k)
    -- the pieces: product over axes of per-axis overlaps
    local lists = {}
    for i = 1, ndim do lists[i] = per[i][idx[i]] end
    local pieces = {}
    local cur = {}
    local function rec(i)
      if i > ndim then
        local oi, st, ct, os = {}, {}, {}, {}
        for a = 1, ndim do
          local p = cur[a]
          oi[a], st[a], ct[a], os[a] = p[1], p[2], p[3], p[4]
        end
        pieces[#pieces + 1] = {x.blocks[flat_index(x.chunks, oi)], st, ct, os}
        return
      end
      for _, p in ipairs(lists[i]) do
        cur[i] = p
        rec(i + 1)
      end
    end
    rec(1)
    local bs = block_shape(new, idx)
    if #pieces == 1 then
      local p = pieces[1]
      local whole = true
      local ob = block_shape(x.chunks, (function()
        local oi = {}
        for a = 1, ndim do oi[a] = lists[a][1][1] end
        return oi
      end)())
      for a = 1, ndim do
        if p[2][a] ~= 0 or p[3][a] ~= ob[a] then whole = false end
      end
      if whole then blocks[k] = p[1] return end
      local ones = {}
      for a = 1, ndim do ones[a] = 1 end
      blocks[k] = D.view(p[1], p[2], ones, p[3])
      return
    end
    blocks[k] = D.assemble(x.dtype, bs, unpack(pieces))
  end)
  if ndim == 0 then blocks = x.blocks end
  return new_blocks({unpack(x.shape)}, new, x.dtype, blocks)
end
la.rechunk = rechunk
function methods:rechunk(chunks) return rechunk(self, chunks) end

function methods:slice(spec)
  local x = materialize(self)
  spec = spec or {}
  if type(spec) ~= "table" then fail("slice takes a list with one entry per axis", 2) end
  if #spec > x.ndim then
    fail(("slice: %d axes given for an array of %d"):format(#spec, x.ndim), 2)
  end
  local ndim = x.ndim
  -- per axis: output chunks and, per output block, {old block, start, step}
  local outchunks, maps, keep = {}, {}, {}
  for i = 1, ndim do
    local d = x.shape[i]
    local s0, step, cnt, drop = N.norm_slice(spec[i], d, i)
    local oo = offsets(x.chunks[i])
    local function block_of(e) -- 0-based element -> block, offset within
      local lo, hi = 1, #oo
      while lo < hi do
        local mid = math.floor((lo + hi + 1) / 2)
        if oo[mid] <= e then lo = mid else hi = mid - 1 end
      end
      return lo, e - oo[lo]
    end
    local oc, om = {}, {}
    local k = 0
    while k < cnt do
      local e = s0 + k * step
      local b, within = block_of(e)
      -- how many consecutive picks stay in block b
      local n
      if step > 0 then
        n = math.floor((oo[b] + x.chunks[i][b] - 1 - e) / step) + 1
      else
        n = math.floor((e - oo[b]) / -step) + 1
      end
      n = math.min(n, cnt - k)
      oc[#oc + 1] = n
      om[#om + 1] = {b, within, step}
      k = k + n
    end
    if cnt == 0 then
      oc = {0}
      om = {{1, 0, 1}}
    end
    outchunks[i], maps[i] = oc, om
    keep[i] = not drop
  end
  local blocks = {}
  local anydrop = false
  for i = 1, ndim do if not keep[i] then anydrop = true end end
  each_block(outchunks, function(idx, k)
    local oi, st, sp, ct = {}, {}, {}, {}
    for i = 1, ndim do
      local m = maps[i][idx[i]]
      oi[i], st[i], sp[i], ct[i] = m[1], m[2], m[3], outchunks[i][idx[i]]
      if ct[i] == 0 then st[i] = 0 end
    end
    local drop
    if anydrop then
      drop = {}
      for i = 1, ndim do if not keep[i] then drop[#drop + 1] = i - 1 end end
    end
    blocks[k] = D.view(x.blocks[flat_index(x.chunks, oi)], st, sp, ct, drop)
  end)
  local shape, chunks = {}, {}
  for i = 1, ndim do
    if keep[i] then
      local s = 0
      for _, n in ipairs(outchunks[i]) do s = s + n end
      shape[#shape + 1] = s
      chunks[#chunks + 1] = outchunks[i]
    end
  end
  return new_blocks(shape, chunks, x.dtype, blocks)
end

function methods:transpose(perm)
  local x = materialize(self)
  local ndim = x.ndim
  local p0 = {}
  if perm == nil then
    for i = 1, ndim do p0[i] = ndim - i end
  else
    if type(perm) ~= "table" or #perm ~= ndim then
      fail(("transpose: the permutation must list %d axes"):format(ndim), 2)
    end
    local seen = {}
    for i, a in ipairs(perm) do
      p0[i] = N.norm_axis(a, ndim, "transpose")
      if seen[p0[i]] then fail("transpose: not a permutation of the axes", 2) end
      seen[p0[i]] = true
    end
  end
  local shape, chunks = {}, {}
  for i = 1, ndim do
    shape[i] = x.shape[p0[i] + 1]
    chunks[i] = {unpack(x.chunks[p0[i] + 1])}
  end
  local blocks = {}
  each_block(chunks, function(idx, k)
    local oi = {}
    for i = 1, ndim do oi[p0[i] + 1] = idx[i] end
    blocks[k] = D.transpose(x.blocks[flat_index(x.chunks, oi)], p0)
  end)
  local t = new_blocks(shape, chunks, x.dtype, blocks)
  if ndim == 2 and p0[1] == 1 then rawset(t, "transpose_of", x) end
  return t
end
function methods:T() return self:transpose() end

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

function methods:reshape(shape)
  local x = materialize(self)
  shape = N.norm_shape(shape, x.size, "reshape")
  local n = 1
  for _, d in ipairs(shape) do n = n * d end
  if n ~= x.size then
    fail(("reshape: cannot reshape %d elements into {%s}"):format(x.size,
         table.concat(shape, ", ")), 2)
  end
  if x.size == 0 or x.ndim == 0 or #shape == 0 then
    local whole = {}
    for i = 1, x.ndim do whole[i] = -1 end
    local one = rechunk(x, whole)
    local ch = {}
    for i, d in ipairs(shape) do ch[i] = {d} end
    return new_blocks(shape, ch, x.dtype, {D.reshape(one.blocks[1], shape)})
  end
  -- Rows of the input (axis 1) in blocks whose flat extent is a multiple
  -- of both row sizes, trailing axes whole; then each block reshapes.
  local rin = x.size / x.shape[1]
  local rout = x.size / shape[1]
  local l = rin / gcd(rin, rout) * rout
  local step = l / rin -- input rows per unit
  local target = x.chunks[1][1]
  local rows = math.max(step, math.floor(target / step) * step)
  local want = {split_len(x.shape[1], rows)}
  for i = 2, x.ndim do want[i] = {x.shape[i]} end
  local y = rechunk(x, want)
  local blocks, c1 = {}, {}
  for b, r in ipairs(y.chunks[1]) do
    local orow = math.floor(r * rin / rout + 0.5)
    c1[b] = orow
    local s = {orow}
    for i = 2, #shape do s[i] = shape[i] end
    blocks[b] = D.reshape(y.blocks[b], s)
  end
  local chunks = {c1}
  for i = 2, #shape do chunks[i] = {shape[i]} end
  return new_blocks(shape, chunks, x.dtype, blocks)
end

function la.concatenate(list, axis)
  if type(list) ~= "table" or #list == 0 then
    fail("concatenate: expected a non-empty list of arrays", 2)
  end
  local xs = {}
  for i, a in ipairs(list) do
    if N.is_ndarray(a) then a = la.asarray(a) end
    if not is_array(a) then
      fail(("concatenate: item %d is not an array"):format(i), 2)
    end
    xs[i] = materialize(a)
  end
  local ndim = xs[1].ndim
  local z = N.norm_axis(axis or 1, ndim, "concatenate") + 1
  local dt = xs[1].dtype
  for i, a in ipairs(xs) do
    if a.ndim ~= ndim then
      fail(("concatenate: item %d has %d dimensions, expected %d"):format(i,
           a.ndim, ndim), 2)
    end
    for k = 1, ndim do
      if k ~= z and a.shape[k] ~= xs[1].shape[k] then
        fail(("concatenate: item %d has length %d on axis %d, expected %d")
          :format(i, a.shape[k], k, xs[1].shape[k]), 2)
      end
    end
    dt = N.promote(dt, a.dtype)
  end
  local shape, chunks = {unpack(xs[1].shape)}, copy_chunks(xs[1].chunks)
  shape[z] = 0
  chunks[z] = {}
  local parts = {}
  for i, a in ipairs(xs) do
    if a.dtype ~= dt then a = materialize(a:astype(dt)) end
    local want = copy_chunks(chunks)
    want[z] = a.chunks[z]
    a = rechunk(a, want)
    parts[i] = a
    shape[z] = shape[z] + a.shape[z]
    for _, n in ipairs(a.chunks[z]) do
      if n > 0 then chunks[z][#chunks[z] + 1] = n end
    end
  end
  if #chunks[z] == 0 then chunks[z] = {0} end
  local blocks = {}
  each_block(chunks, function(idx, k)
    -- find which part and which of its blocks along z
    local b = idx[z]
    for _, a in ipairs(parts) do
      local nz = {}
      for _, n in ipairs(a.chunks[z]) do if n > 0 then nz[#nz + 1] = n end end
      if b <= #nz then
        local oi = {unpack(idx)}
        -- skip zero-length blocks of a
        local c = 0
        for j, n in ipairs(a.chunks[z]) do
          if n > 0 then
            c = c + 1
            if c == b then oi[z] = j break end
          end
        end
        blocks[k] = a.blocks[flat_index(a.chunks, oi)]
        return
      end
      b = b - #nz
    end
    blocks[k] = D.new(dt, block_shape(chunks, idx))
  end)
  return new_blocks(shape, chunks, dt, blocks)
end

function la.stack(list, axis)
  if type(list) ~= "table" or #list == 0 then
    fail("stack: expected a non-empty list of arrays", 2)
  end
  local first = is_array(list[1]) and list[1] or la.asarray(list[1])
  local z = N.norm_axis(axis or 1, first.ndim + 1, "stack") + 1
  local parts = {}
  for i, a in ipairs(list) do
    a = is_array(a) and a or la.asarray(a)
    if a.ndim ~= first.ndim then
      fail(("stack: item %d has %d dimensions, expected %d"):format(i,
           a.ndim, first.ndim), 2)
    end
    for d = 1, a.ndim do
      if a.shape[d] ~= first.shape[d] then
        fail(("stack: item %d has shape {%s}, item 1 {%s}: they must be " ..
              "equal"):format(i, table.concat(a.shape, ", "),
                             table.concat(first.shape, ", ")), 2)
      end
    end
    a = materialize(a)
    local shape, chunks = {unpack(a.shape)}, copy_chunks(a.chunks)
    table.insert(shape, z, 1)
    table.insert(chunks, z, {1})
    local blocks = {}
    each_block(a.chunks, function(idx, k)
      local s = block_shape(a.chunks, idx)
      table.insert(s, z, 1)
      blocks[k] = D.reshape(a.blocks[k], s)
    end)
    parts[i] = new_blocks(shape, chunks, a.dtype, blocks)
  end
  return la.concatenate(parts, z)
end

----------------------------------------------------------------------------
-- Linear algebra
----------------------------------------------------------------------------

function methods:matmul(y)
  if N.is_ndarray(y) then y = la.asarray(y) end
  if not is_array(y) then fail("matmul: expected an array", 2) end
  local a, b = materialize(self), materialize(y)
  local av, bv = a.ndim == 1, b.ndim == 1
  if a.ndim < 1 or a.ndim > 2 or b.ndim < 1 or b.ndim > 2 then
    fail("matmul takes 1-d or 2-d arrays", 2)
  end
  if av then a = a:reshape({1, a.shape[1]}) end
  if bv then b = b:reshape({b.shape[1], 1}) end
  if a.shape[2] ~= b.shape[1] then
    fail(("matmul: inner dimensions differ (%d and %d)"):format(a.shape[2],
         b.shape[1]), 2)
  end
  b = rechunk(b, {a.chunks[2], b.chunks[2]})
  local dt = N.promote(a.dtype, b.dtype)
  if dt == "bool" then dt = "int64" end
  local chunks = {copy_chunks(a.chunks)[1], copy_chunks(b.chunks)[2]}
  local np = #a.chunks[2]
  local blocks = {}
  each_block(chunks, function(idx, k)
    local args = {}
    for p = 1, np do
      args[p] = a.blocks[flat_index(a.chunks, {idx[1], p})]
      args[np + p] = b.blocks[flat_index(b.chunks, {p, idx[2]})]
    end
    blocks[k] = D.matmul_sum(dt, np, unpack(args))
  end)
  local r = new_blocks({a.shape[1], b.shape[2]}, chunks, dt, blocks)
  if av and bv then return r:reshape({}) end
  if av then return r:reshape({b.shape[2]}) end
  if bv then return r:reshape({a.shape[1]}) end
  return r
end

function la.dot(x, y)
  if is_array(x) then return x:matmul(y) end
  if is_array(y) then return la.asarray(x):matmul(y) end
  return N.dot(x, y)
end

function la.tensordot(x, y, axes)
  x = is_array(x) and x or la.asarray(x)
  y = is_array(y) and y or la.asarray(y)
  axes = axes or 2
  local ax, ay = {}, {}
  if type(axes) == "number" then
    for i = 1, axes do
      ax[i] = x.ndim - axes + i
      ay[i] = i
    end
  elseif type(axes) == "table" and #axes == 2 then
    ax = type(axes[1]) == "table" and axes[1] or {axes[1]}
    ay = type(axes[2]) == "table" and axes[2] or {axes[2]}
  else
    fail("tensordot: axes must be a number or {axes_x, axes_y}", 2)
  end
  if #ax ~= #ay then fail("tensordot: axes lists differ in length", 2) end
  local sx, sy = {}, {}
  local k = 1
  for i, a in ipairs(ax) do
    local zx = N.norm_axis(a, x.ndim, "tensordot") + 1
    local zy = N.norm_axis(ay[i], y.ndim, "tensordot") + 1
    if x.shape[zx] ~= y.shape[zy] then
      fail(("tensordot: axis %d of x (%d) and axis %d of y (%d) differ")
        :format(zx, x.shape[zx], zy, y.shape[zy]), 2)
    end
    if sx[zx] or sy[zy] then
      fail(("tensordot: axis %d of %s is listed twice"):format(
        sx[zx] and zx or zy, sx[zx] and "x" or "y"), 2)
    end
    sx[zx], sy[zy] = true, true
    k = k * x.shape[zx]
  end
  -- the free axes of an array (appended to 'perm'), their lengths, product
  local function free(z, summed, perm)
    local lens, prod = {}, 1
    for i = 1, z.ndim do
      if not summed[i] then
        perm[#perm + 1] = i
        lens[#lens + 1] = z.shape[i]
        prod = prod * z.shape[i]
      end
    end
    return lens, prod
  end
  local px, py = {}, {}
  local fx, mx = free(x, sx, px)
  for _, a in ipairs(ax) do px[#px + 1] = N.norm_axis(a, x.ndim, "tensordot") + 1 end
  for _, a in ipairs(ay) do py[#py + 1] = N.norm_axis(a, y.ndim, "tensordot") + 1 end
  local fy, ny = free(y, sy, py)
  local a = x:transpose(px):reshape({mx, k})
  local b = y:transpose(py):reshape({k, ny})
  local out = {}
  for _, d in ipairs(fx) do out[#out + 1] = d end
  for _, d in ipairs(fy) do out[#out + 1] = d end
  return a:matmul(b):reshape(out)
end

----------------------------------------------------------------------------
-- map_blocks
----------------------------------------------------------------------------

function methods:map_blocks(fn, opts)
  if type(fn) ~= "function" then fail("map_blocks: expected a function", 2) end
  opts = check_opts(opts, {dtype = true, chunks = true}, "map_blocks")
  local x = materialize(self)
  local dt = N.check_dtype(opts.dtype, "map_blocks") or x.dtype
  local chunks = x.chunks
  if opts.chunks then
    if type(opts.chunks) ~= "table" or #opts.chunks ~= x.ndim then
      fail("map_blocks: chunks must list the output blocks' lengths per axis",
           2)
    end
    chunks = {}
    local function length(v, i)
      if type(v) ~= "number" or v < 0 or v % 1 ~= 0 then
        fail(("map_blocks: chunks on axis %d: a block's length must be a " ..
              "whole number >= 0, got %s"):format(i, tostring(v)), 3)
      end
      return v
    end
    for i, c in ipairs(opts.chunks) do
      if type(c) == "number" then
        chunks[i] = {}
        for j = 1, #x.chunks[i] do chunks[i][j] = length(c, i) end
      elseif type(c) ~= "table" or #c ~= #x.chunks[i] then
        fail(("map_blocks: chunks on axis %d must be a length or a list " ..
              "of %d lengths (one per block)"):format(i, #x.chunks[i]), 2)
      else
        chunks[i] = {}
        for j = 1, #c do chunks[i][j] = length(c[j], i) end
      end
    end
  end
  local offs = {}
  for i, c in ipairs(x.chunks) do offs[i] = offsets(c) end
  local f = lask.delayed(T.map_block, {name = "array-map-blocks"})
  local blocks = {}
  each_block(x.chunks, function(idx, k)
    local loc = {}
    for i = 1, #idx do
      loc[i] = {offs[i][idx[i]] + 1, offs[i][idx[i]] + x.chunks[i][idx[i]]}
    end
    local info = {block_id = {unpack(idx)}, location = loc,
                  nblocks = (function()
                    local t = {}
                    for i, c in ipairs(x.chunks) do t[i] = #c end
                    return t
                  end)()}
    local oidx = {}
    for i = 1, #idx do oidx[i] = chunks[i][idx[i]] end
    blocks[k] = f(fn, info, dt, x.blocks[k], oidx)
  end)
  local shape = {}
  for i, c in ipairs(chunks) do
    local s = 0
    for _, n in ipairs(c) do s = s + n end
    shape[i] = s
  end
  return new_blocks(shape, copy_chunks(chunks), dt, blocks)
end

----------------------------------------------------------------------------
-- Reductions
----------------------------------------------------------------------------

local RT = {} -- reduction task functions
la.rtasks = RT

-- Partial of one block: a table of keepdims ndarrays.
--   sum prod min max any all (and nan*): {v}
--   mean: {s, n}; var/std: {n, mean, m2}; argmin/argmax: {val, idx}
function RT.partial(op, skipnan, axes0, prog, dt, gshape, starts, pair, ...)
  local nd_ = require("lask.core").nd
  local N_ = require("lask.ndarray")
  local b
  local ndim = #gshape
  local full = #axes0 == ndim
  local ones = {}
  for i = 1, ndim do ones[i] = 1 end
  local function num(v, d) return nd_.new(d, ones, v) end
  local inputs = {...}
  local moment = op == "mean" or op == "var" or op == "std"
  if not prog and full then -- a full reduction reads its block in one pass
    prog = (moment and not N_.is_float(dt)) and N_.LOADF or N_.LOAD
  end
  if prog and full and op ~= "argmin" and op ~= "argmax" then
    -- fused: run the program and reduce, storing nothing
    local nm = (op == "mean" or op == "var" or op == "std") and "sum" or op
    local function red(name, center)
      if pair then
        return nd_.eval_reduce_pair(prog, name, skipnan, center, pair,
                                    unpack(inputs))
      end
      return nd_.eval_reduce(prog, name, skipnan, center, unpack(inputs))
    end
    local f, i, cnt = red(nm, 0)
    local isf = N_.is_float(dt) or prog == N_.LOADF
    if nm == "any" or nm == "all" then return {num(i ~= 0, "bool")} end
    if op == "mean" then
      return {num(isf and f or i, "float64"), num(cnt, "float64")}
    end
    if op == "var" or op == "std" then
      local s = isf and f or i
      local mean = cnt > 0 and s / cnt or 0
      local m2 = red("sqdev", mean)
      return {num(cnt, "float64"), num(mean, "float64"), num(m2, "float64")}
    end
    if (nm == "min" or nm == "max") and cnt == 0 then
      return {num(0 / 0, dt)}
    end
    local rdt = (nm == "sum" or nm == "prod") and (isf and dt or "int64") or dt
    return {num(isf and f or i, rdt)}
  end
  if prog then b = nd_.eval(prog, dt, unpack(inputs)) else b = inputs[1] end
  if op == "argmin" or op == "argmax" then
    local vals
    local idx
    if full then
      -- flat position in the whole array
      local _, _, cnt, pos = nd_.eval_reduce(N_.LOAD, op, skipnan, 0, b)
      local bs = b.shape
      local g, rem = 0, pos
      local sub = {}
      for k = ndim, 1, -1 do
        sub[k] = rem % bs[k]
        rem = (rem - sub[k]) / bs[k]
      end
      local v
      if pos >= 0 and cnt > 0 then
        for k = 1, ndim do g = g * gshape[k] + (starts[k] + sub[k]) end
        local args = {}
        for k = 1, ndim do args[k] = sub[k] + 1 end
        v = nd_.get(b, unpack(args))
      else
        g, v = -1, 0 / 0
      end
      if ndim == 0 then v, g = nd_.flat(b)[1], 0 end
      return {num(v, b.dtype), num(g, "int64")}
    end
    idx, vals = nd_.reduce(b, axes0, op, skipnan, "int64")
    local off = starts[axes0[1] + 1]
    if off ~= 0 then
      idx = N_.run(N_.node("where", N_.node("ge", N_.leaf(idx), 0),
        N_.node("add", N_.leaf(idx), off), N_.leaf(idx)))
    end
    return {vals, idx}
  end
  if op == "mean" or op == "var" or op == "std" then
    local s = nd_.reduce(b, axes0, "sum", skipnan, "float64")
    local n = nd_.reduce(b, axes0, "count", skipnan, "float64")
    if op == "mean" then return {s, n} end
    local mean = N_.run(N_.node("div", N_.leaf(s), N_.leaf(n)))
    mean = N_.run(N_.node("where", N_.node("gt", N_.leaf(n), 0),
                          N_.leaf(mean), 0.0))
    local m2 = nd_.reduce(b, axes0, "sqdev", skipnan, "float64", mean)
    return {n, mean, m2}
  end
  local rdt = dt
  if op == "sum" or op == "prod" then rdt = N_.is_float(dt) and dt or "int64"
  elseif op == "any" or op == "all" then rdt = "bool" end
  return {nd_.reduce(b, axes0, op, skipnan, rdt)}
end

-- Combines partials (in block order).
function RT.combine(op, skipnan, ...)
  local N_ = require("lask.ndarray")
  local L = N_.leaf
  local acc = select(1, ...)
  for k = 2, select("#", ...) do
    local p = select(k, ...)
    if op == "sum" or op == "prod" then
      acc = {N_.run(N_.node(op == "sum" and "add" or "mul", L(acc[1]), L(p[1])))}
    elseif op == "min" or op == "max" then
      local f = skipnan and (op == "min" and "fmin" or "fmax") or op
      if not N_.is_float(acc[1].dtype) then f = op end
      acc = {N_.run(N_.node(f, L(acc[1]), L(p[1])))}
    elseif op == "any" then
      acc = {N_.run(N_.node("or", L(acc[1]), L(p[1])))}
    elseif op == "all" then
      acc = {N_.run(N_.node("and", L(acc[1]), L(p[1])))}
    elseif op == "mean" then
      acc = {N_.run(N_.node("add", L(acc[1]), L(p[1]))),
             N_.run(N_.node("add", L(acc[2]), L(p[2])))}
    elseif op == "var" or op == "std" then
      -- Chan et al.: n = na + nb, d = mb - ma, mean = ma + d nb / n,
      -- m2 = m2a + m2b + d^2 na nb / n (0 where n is 0)
      local na, ma, qa = L(acc[1]), L(acc[2]), L(acc[3])
      local nb, mb, qb = L(p[1]), L(p[2]), L(p[3])
      local n = N_.node("add", na, nb)
      local d = N_.node("sub", mb, ma)
      local pos = N_.node("gt", n, 0)
      local safe = N_.node("where", pos, n, 1)
      local mean = N_.node("where", pos,
        N_.node("add", ma, N_.node("div", N_.node("mul", d, nb), safe)), 0.0)
      local m2 = N_.node("add", N_.node("add", qa, qb),
        N_.node("div", N_.node("mul", N_.node("mul", N_.node("mul", d, d),
          na), nb), safe))
      acc = {N_.run(n), N_.run(mean), N_.run(m2)}
    else -- argmin argmax: {val, idx}; take b where it beats a
      -- Blocks do not come in C order of their elements: a tie (or two
      -- NaNs) goes to the lower global position, as NumPy's scan would.
      local va, vb = L(acc[1]), L(p[1])
      local ia, ib = L(acc[2]), L(p[2])
      local earlier = N_.node("and", N_.node("ge", ib, 0),
        N_.node("or", N_.node("lt", ia, 0), N_.node("lt", ib, ia)))
      local strict = op == "argmin" and N_.node("lt", vb, va) or
                     N_.node("gt", vb, va)
      local better = N_.node("or", strict,
                             N_.node("and", N_.node("eq", vb, va), earlier))
      if N_.is_float(acc[1].dtype) then
        local na_, nb_ = N_.node("isnan", va), N_.node("isnan", vb)
        if skipnan then
          -- b wins if it is a number and (a is NaN or b is better)
          better = N_.node("and", N_.node("not", nb_),
                           N_.node("or", na_, better))
        else
          -- a NaN beats any number; between NaNs the earlier wins
          better = N_.node("or",
            N_.node("and", nb_, N_.node("or", N_.node("not", na_), earlier)),
            N_.node("and", N_.node("not", na_), better))
        end
      end
      local c = N_.run(better)
      acc = {N_.run(N_.node("where", L(c), vb, va)),
             N_.run(N_.node("where", L(c), L(p[2]), L(acc[2])))}
    end
  end
  return acc
end

-- Final value of a combined partial: an ndarray (keepdims).
function RT.finish(op, skipnan, ddof, dt, squeeze_shape, p)
  local N_ = require("lask.ndarray")
  local nd_ = require("lask.core").nd
  local L = N_.leaf
  local r
  if op == "mean" then
    r = N_.run(N_.node("div", L(p[1]), L(p[2])))
    if dt == "float32" then r = nd_.copy(r, "float32") end
  elseif op == "var" or op == "std" then
    r = N_.run(N_.var_node(L(p[1]), L(p[3]), ddof, skipnan, op == "std"))
    if dt == "float32" then r = nd_.copy(r, "float32") end
  elseif op == "argmin" or op == "argmax" then
    N_.check_positions(p[2], (skipnan and "nan" or "") .. op)
    r = N_.run(N_.node("add", L(p[2]), 1))
  else
    r = p[1]
  end
  if squeeze_shape then r = nd_.reshape(r, squeeze_shape) end
  return r
end

-- The blocks of a grid as {index, flat position}, in the order their
-- tasks should run: C order, except that on a 2-d grid block (j, i)
-- follows block (i, j), so that an expression of x and x:T() reads each
-- pair of blocks twice in a row, the second time from the cache.
local function cache_order(chunks)
  local list = {}
  each_block(chunks, function(idx, k) list[k] = {{unpack(idx)}, k} end)
  if #chunks == 2 then
    table.sort(list, function(p, q)
      local a, b = p[1], q[1]
      local amin, bmin = math.min(a[1], a[2]), math.min(b[1], b[2])
      if amin ~= bmin then return amin < bmin end
      local amax, bmax = math.max(a[1], a[2]), math.max(b[1], b[2])
      if amax ~= bmax then return amax < bmax end
      return a[1] < b[1]
    end)
  end
  return list
end

-- For a full reduction of a 2-d expression in which every input is an
-- array and another input its transpose (x + x:T()), block (j, i) reads
-- the data of block (i, j) with those inputs exchanged: one task reduces
-- both in one pass (half the memory traffic). The exchange, input k with
-- input pair[k], or nil when the expression has no such form.
local function transpose_pairs(x, ins, op)
  if x.ndim ~= 2 or op == "argmin" or op == "argmax" or
     not same_chunks({x.chunks[1]}, {x.chunks[2]}) then
    return nil
  end
  local pair = {}
  for k, a in ipairs(ins) do
    if a.ndim ~= 2 or not same_chunks(a.chunks, x.chunks) then return nil end
    for j, b in ipairs(ins) do
      if rawget(b, "transpose_of") == a or rawget(a, "transpose_of") == b then
        pair[k] = j
        break
      end
    end
    if not pair[k] then return nil end
  end
  return pair
end

local function reduction(x, op, opts, skipnan)
  local where = (skipnan and "nan" or "") .. op
  opts = check_opts(opts, {axis = true, keepdims = true, split_every = true,
                           ddof = true}, where)
  local ndim = x.ndim
  local list, set = N.norm_axes(opts.axis, ndim, where)
  if (op == "argmin" or op == "argmax") and opts.axis ~= nil and #list ~= 1 then
    fail(where .. " takes one axis", 2)
  end
  if op == "min" or op == "max" or op == "argmin" or op == "argmax" then
    for _, z in ipairs(list) do
      if x.shape[z + 1] == 0 then
        fail(("%s of an empty axis (zero-size reduction with no identity)")
          :format(where), 2)
      end
    end
  end
  local argfull = (op == "argmin" or op == "argmax") and opts.axis == nil
  local split = opts.split_every or 8
  if type(split) ~= "number" or split < 2 or split ~= math.floor(split) then
    fail(where .. ": split_every must be an integer >= 2", 2)
  end
  if opts.ddof ~= nil and type(opts.ddof) ~= "number" then
    fail(where .. ": ddof must be a number", 2)
  end
  local prog, ins, dt
  if x.expr then
    prog, ins, dt = N.compile(x.expr)
    if (op == "mean" or op == "var" or op == "std") and not N.is_float(dt) then
      -- integers add up in floats (see N.LOADF)
      prog, ins, dt = N.compile(N.node("astype", x.expr, "float64"))
    end
    local l2 = {}
    for i, a in ipairs(ins) do l2[i] = leaf_for(a, x.shape, x.chunks) end
    ins = l2
  else
    dt = x.dtype
  end
  local chunks = x.chunks
  local offs = {}
  for i, c in ipairs(chunks) do offs[i] = offsets(c) end
  -- group blocks by their index on the kept axes
  local groups, order = {}, {}
  local axes0 = argfull and (function()
    local t = {}
    for i = 0, ndim - 1 do t[#t + 1] = i end
    return t
  end)() or list
  local pair = prog and #list == ndim and transpose_pairs(x, ins, op)
  local partial = lask.delayed(RT.partial, {name = "array-" .. op .. "-partial"})
  local combine = lask.delayed(RT.combine, {name = "array-" .. op .. "-combine"})
  local finish = lask.delayed(RT.finish, {name = "array-" .. op .. "-finish"})
  for _, bk in ipairs(cache_order(chunks)) do
    local idx, k = bk[1], bk[2]
    -- with a pairing, block (i, j), i < j, also reduces block (j, i)
    if pair and idx[1] > idx[2] then goto next_block end
    local key = {}
    for i = 1, ndim do key[i] = set[i - 1] and 1 or idx[i] end
    local ks = table.concat(key, ",")
    local g = groups[ks]
    if not g then
      g = {key = key, parts = {}}
      groups[ks] = g
      order[#order + 1] = ks
    end
    local starts = {}
    for i = 1, ndim do starts[i] = offs[i][idx[i]] end
    local args
    if prog then
      args = {}
      for i, a in ipairs(ins) do
        local off = #x.shape - a.ndim
        local bi = {}
        for j = 1, a.ndim do bi[j] = (#a.chunks[j] == 1) and 1 or idx[j + off] end
        args[i] = a.blocks[flat_index(a.chunks, bi)]
      end
    else
      args = {x.blocks[k]}
    end
    g.parts[#g.parts + 1] = partial(op, skipnan, axes0, prog or false, dt,
      x.shape, starts, pair and idx[1] < idx[2] and pair or false,
      unpack(args))
    ::next_block::
  end
  local ddof = opts.ddof or 0
  -- output grid: kept axes' chunks, 1 on reduced ones
  local ochunks = {}
  for i = 1, ndim do ochunks[i] = set[i - 1] and {1} or {unpack(chunks[i])} end
  local blocks = {}
  for _, ks in ipairs(order) do
    local g = groups[ks]
    local level = g.parts
    while #level > 1 do
      local nxt = {}
      for s = 1, #level, split do
        local e = math.min(s + split - 1, #level)
        if e == s then nxt[#nxt + 1] = level[s]
        else nxt[#nxt + 1] = combine(op, skipnan, unpack(level, s, e)) end
      end
      level = nxt
    end
    local sq
    if not opts.keepdims then
      sq = {}
      for i = 1, ndim do
        if not set[i - 1] then sq[#sq + 1] = ochunks[i][g.key[i]] end
      end
    end
    local final = level[1]
    if final == nil then -- an empty grid
      final = lask.delayed(function() return nil end)()
    end
    blocks[flat_index(ochunks, g.key)] = finish(op, skipnan, ddof, dt, sq or false, final)
  end
  local shape, rch = {}, {}
  for i = 1, ndim do
    if not set[i - 1] then
      shape[#shape + 1] = x.shape[i]
      rch[#rch + 1] = ochunks[i]
    elseif opts.keepdims then
      shape[#shape + 1] = 1
      rch[#rch + 1] = {1}
    end
  end
  local rdt
  if op == "sum" or op == "prod" then rdt = N.is_float(dt) and dt or "int64"
  elseif op == "min" or op == "max" then rdt = dt
  elseif op == "any" or op == "all" then rdt = "bool"
  elseif op == "argmin" or op == "argmax" then rdt = "int64"
  else rdt = dt == "float32" and "float32" or "float64" end
  local r = new_blocks(shape, rch, rdt, blocks)
  r.scalar = #shape == 0
  return r
end

N.add_reductions(methods, reduction)

----------------------------------------------------------------------------
-- Computing
----------------------------------------------------------------------------

function methods:to_delayed()
  local x = materialize(self)
  return x.blocks
end

-- Assembles computed blocks into one ndarray.
local function assemble(x, values)
  -- one block: a copy, since the block may be a persisted array's own
  -- (changing the result must not change the lazy array)
  if #values == 1 then return nd.copy(values[1]) end
  local out = nd.new(x.dtype, x.shape)
  local offs = {}
  for i, c in ipairs(x.chunks) do offs[i] = offsets(c) end
  local ones = {}
  for i = 1, x.ndim do ones[i] = 1 end
  each_block(x.chunks, function(idx, k)
    local st = {}
    for i = 1, #idx do st[i] = offs[i][idx[i]] end
    local bs = block_shape(x.chunks, idx)
    local empty = false
    for _, d in ipairs(bs) do if d == 0 then empty = true end end
    if not empty then nd.assign(nd.view(out, st, ones, bs), values[k]) end
  end)
  return out
end

function methods:compute(opts)
  if opts ~= nil then require("lask.config").check(opts, "array.compute") end
  limit_pool()
  local x = materialize(self)
  local values = lask.compute(x.blocks, opts or {})
  local r = assemble(x, values)
  if x.ndim == 0 and N.is_ndarray(r) then return nd.flat(r)[1] end
  return r
end

function methods:persist(opts)
  if opts ~= nil then require("lask.config").check(opts, "array.persist") end
  limit_pool()
  local x = materialize(self)
  local values = lask.compute(x.blocks, opts or {})
  local blocks = {}
  for i, v in ipairs(values) do
    blocks[i] = lask.delayed(v, {name = "array-persisted"})
  end
  return new_blocks({unpack(x.shape)}, copy_chunks(x.chunks), x.dtype, blocks)
end

local npy_serial = 0
function methods:to_npy(path, opts)
  if type(path) ~= "string" then fail("to_npy: expected a path (a string)", 2) end
  if opts ~= nil then
    require("lask.config").check(opts, "lask.array: to_npy")
  end
  local x = materialize(self)
  -- Written to a new file in the target's directory, renamed over it once
  -- every block is in: the array may read the target itself, and a failed
  -- computation leaves the old file as it was. Through a symbolic link,
  -- the file it points to is replaced, and keeps its permission bits.
  local target = core.replace_target(path)
  local dir = target:match("^(.*)/[^/]*$") or "."
  npy_serial = npy_serial + 1
  local tmp = ("%s/.lask-%d-%d.npy.tmp"):format(dir == "" and "/" or dir,
    npy_serial, math.floor(core.now() * 1e6) % 2^30)
  local created, why = pcall(nd.npy_create, tmp, x.dtype, x.shape)
  if not created then
    fail(("to_npy: cannot write %s: %s"):format(path,
      tostring(why):match(": ([^:]*)$") or tostring(why)), 2)
  end
  local offs = {}
  for i, c in ipairs(x.chunks) do offs[i] = offsets(c) end
  local tasks = {}
  each_block(x.chunks, function(idx, k)
    local st = {}
    for i = 1, #idx do st[i] = offs[i][idx[i]] end
    tasks[#tasks + 1] = D.npy_write(tmp, x.blocks[k], st)
  end)
  local ok, err = pcall(lask.compute, tasks, opts)
  if ok then ok, err = core.copy_mode(target, tmp) end
  if ok then ok, err = os.rename(tmp, target) end
  if not ok then
    os.remove(tmp)
    error(err, 0)
  end
end

function Array.__tostring(x)
  local cs = {}
  for i, c in ipairs(x.chunks) do
    cs[i] = #c == 1 and tostring(c[1]) or ("%d blocks"):format(#c)
  end
  return ("lask.array<%s, shape={%s}, chunks={%s}>"):format(x.dtype,
    table.concat(x.shape, ", "), table.concat(cs, ", "))
end

-- Re-exports for eager use.
la.ndarray = N
la.load = N.load

return la
