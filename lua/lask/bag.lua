--- Bags: partitioned sequences of Lua values (API.md "Bag").
-- A Bag is a list of partitions, each a Delayed whose value is a Lua list,
-- plus the element-wise steps (map, filter, flatten, ...) not yet applied.
-- Element-wise methods only append a step; the steps run fused, one task
-- per partition, when the bag is used by anything else, so a pipeline
-- makes no intermediate lists. Reductions are trees of tasks.
-- Dependencies: `lask`, `lask.delayed`, `lask.core`.
-- @module lask.bag
local lask = require "lask"
local delayed = require "lask.delayed"
local core = require "lask.core"
local inline = require "lask.bag_inline"

local unpack = table.unpack or unpack -- LuaJIT has only the global
local bag = {}

local Bag = {}
Bag.__lask_collection = true -- lask.compute(b) computes it
Bag.__name = "lask.Bag"
local methods = {}

local function is_bag(v) return getmetatable(v) == Bag end
bag.is_bag = is_bag

-- 'source' (optional) says where the partitions come from, for fast paths:
-- {kind = "text", blocks = {{path, start, size, delimiter} |
-- {path, gz = true, delimiter = d}}} for read_text (one block per
-- partition, before any step).
local function new_bag(parts, steps, source)
  return setmetatable({parts = parts, steps = steps or {}, source = source},
                      Bag)
end

Bag.__index = function(self, k)
  if k == "npartitions" then return #rawget(self, "parts") end
  if k == "str" then return setmetatable({bag = self}, bag.StrAccessor) end
  return methods[k]
end

local function check_fn(f, who, n)
  local ok = type(f) == "function" or
             (getmetatable(f) ~= nil and getmetatable(f).__call ~= nil)
  if not ok then
    error(("%s: argument %d must be callable, got %s"):format(
      who, n, type(f)), 3)
  end
end

-- Errors blame the caller of check_opts's caller, or 'level' levels up
-- from check_opts (3 by default) for a helper that checks for a method.
local function check_opts(opts, allowed, who, level)
  level = level or 3
  if opts == nil then return {} end
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(who, type(opts)),
          level)
  end
  for k in pairs(opts) do
    if not allowed[k] then
      error(("%s: unknown option '%s'"):format(who, tostring(k)), level)
    end
  end
  return opts
end

-- ---------------------------------------------------------------- steps
-- A step is {kind, fn, extra...}; kinds: "map", "filter", "remove",
-- "flatten", "pluck", and "list" (a function of the whole partition list,
-- such as the C string helpers). run_steps applies them in one pass.

--- Applies element-wise 'steps' to the list 'part' in one pass; returns a
-- new list. Runs inside tasks (a module function: travels by reference).
-- The fused loop of a pipeline is generated as Lua source, one per shape
-- of pipeline (the kinds of its steps and their argument counts), loaded
-- once per Lua state: per element it costs the user's own calls and no
-- step dispatch. The user's functions and arguments are bound per call.
-- On LuaJIT a loop's trace is specialized on the functions it calls: one
-- loop shared by the pipelines of many computations (new closures each
-- time) piles up side traces and falls back to the interpreter. So there,
-- a partition long enough to pay for a load() gets a loop of its own per
-- set of user functions (weak keys: it goes with them); elsewhere, and for
-- short partitions, the loop is shared by every pipeline of its shape.
local JIT = type(jit) == "table" and jit.status and jit.status() or false
local LONG = 4096 -- elements
local compiled = setmetatable({}, {__mode = "k"})
local shared = {}

local function cache_for(steps, n)
  if not JIT or n < LONG then return shared end
  local c = compiled
  for _, s in ipairs(steps) do
    local f = s[2]
    if type(f) == "function" then
      local nxt = c[f]
      if not nxt then
        nxt = setmetatable({}, {__mode = "k"})
        c[f] = nxt
      end
      c = nxt
    end
  end
  return c
end

local SINKS = {
  list = "if x == nil then nil_element() end m = m + 1; out[m] = x\n",
  sum = "if x == nil then nil_element() end acc = acc + x\n",
  count = "if x == nil then nil_element() end acc = acc + 1\n",
  -- NaN cannot be a key (as core.count_values)
  frequencies = "if x ~= x or x == nil then uncountable(x) end\n" ..
                "acc[x] = (acc[x] or 0) + 1\n",
}

-- A list cannot hold nil: a step that makes one is an error, whatever
-- comes after it (so a list, a count and a sum of one bag agree).
function bag.nil_element()
  error("lask.bag: an element is nil (a map function or string helper " ..
        "returned nil; a bag cannot hold nil: return false, or filter " ..
        "the element out)", 0)
end

--- p itself if it is a list (a table), else an error naming what it is.
bag.check_list = core.check_list

function bag.not_list(x)
  error(("bag.flatten: an element is a %s, not a list"):format(type(x)), 0)
end

function bag.not_indexable(x, k, who)
  error(("%s: cannot take key %s of a %s"):format(who or "bag.pluck",
                                                  tostring(k), type(x)), 0)
end

bag.next_lines = core.next_lines

function bag.uncountable(x)
  if x == nil then bag.nil_element() end
  error("bag.frequencies: cannot count NaN (it is not equal to itself)", 0)
end

-- Names the generated loops use: an inlined function's parameters must
-- not hide them from the code that follows.
local RESERVED = {}
for w in ([[src S B nil_element uncountable not_list not_indexable type acc
  out m k r0 rs i0 xs v x error tostring _ENV rd xs0 next_lines
  n0]]):gmatch("[%w_]+") do
  RESERVED[w] = true
end

local function reserved(p)
  return RESERVED[p] or p:match("^[fi]%d+$") or p:match("^a%d+_%d+$")
end

-- Binds an inlined function's parameters to the call's arguments. Returns
-- the binding and whether it may stay in scope for the rest of the loop
-- body (no parameter hides a name the loop uses; the first may be x, then
-- bound to x itself; and the expression makes no closure, which must keep
-- parameters of its own).
local function bind(inf, args)
  local open = not inf.closure
  for j, p in ipairs(inf.params) do
    if reserved(p) and not (j == 1 and p == "x") then open = false end
  end
  local ps = inf.params
  if #ps == 0 or (open and #ps == 1 and ps[1] == "x") then return "", open end
  return ("local %s = %s "):format(table.concat(ps, ", "),
                                   table.concat(args, ", ")), open
end

-- For an expression that divides: a line of its own that saves the pc
-- (see lask.bag_inline), so that an integer division by zero is placed
-- where the call would place it.
local function pc_line(inf, i)
  return inf.saves_pc and ("\n\1%d\1\n"):format(i) or ""
end

-- Step i's inlined expression evaluated in a block of its own, into the
-- local lask_v<i>: for parameters that must not stay in scope.
local function in_block(inf, i, binding)
  return ("local lask_v%d do %s%slask_v%d = (\n\0%d\0) end\n"):format(
    i, binding, pc_line(inf, i), i, i)
end

-- The source of the loop body for steps[i..]: 'x' holds the element.
-- inl[i], when set, is step i's function inlined (lask.bag_inline): its
-- expression goes where the marker "\0i\0" stands, at the start of a line.
local function gen_steps(steps, i, depth, sink, inl)
  local s = steps[i]
  if s == nil then return SINKS[sink] end
  local kind, inf = s[1], inl[i]
  if kind == "map" then
    local args = {"x"}
    for j = 3, s.n do args[#args + 1] = ("a%d_%d"):format(i, j) end
    if inf then
      local b, open = bind(inf, args)
      if open then -- the parameters may stay in scope: no temporary
        return ("%s%sx = (\n\0%d\0)\n"):format(b, pc_line(inf, i), i) ..
               gen_steps(steps, i + 1, depth, sink, inl)
      end
      return in_block(inf, i, b) .. ("x = lask_v%d\n"):format(i) ..
             gen_steps(steps, i + 1, depth, sink, inl)
    end
    return ("x = f%d(%s)\n"):format(i, table.concat(args, ", ")) ..
           gen_steps(steps, i + 1, depth, sink, inl)
  elseif kind == "filter" or kind == "remove" then
    local test = ("f%d(x)"):format(i)
    local pre = ""
    if inf then
      local b, open = bind(inf, {"x"})
      if open then
        pre, test = b .. pc_line(inf, i), ("(\n\0%d\0)"):format(i)
      else
        pre, test = in_block(inf, i, b), ("lask_v%d"):format(i)
      end
    end
    return pre .. ("if %s%s then\n"):format(kind == "remove" and "not " or "",
                                            test) ..
           gen_steps(steps, i + 1, depth, sink, inl) .. "end\n"
  elseif kind == "pluck" then
    local miss = s.has_default and ("v = a%d_3"):format(i) or
      ("error(('bag.pluck: element has no key \\'%%s\\''):format(" ..
       "tostring(f%d)), 0)"):format(i)
    return ("do if type(x) ~= 'table' then not_indexable(x, f%d) end\n" ..
            "local v = x[f%d]; if v == nil then %s end; x = v\n"):format(i,
             i, miss) .. gen_steps(steps, i + 1, depth, sink, inl) .. "end\n"
  elseif kind == "flatten" then
    local v = "i" .. depth
    return ("local xs = x; if type(xs) ~= 'table' then not_list(xs) end\n" ..
            "for %s = 1, #xs do local x = xs[%s]\n"):format(v, v) ..
           gen_steps(steps, i + 1, depth + 1, sink, inl) .. "end\n"
  end
  error("lask: internal: unknown bag step " .. tostring(kind), 0)
end

-- Compiles (once per shape) the function(src, steps) of a pipeline.
-- 'source' is "list" (src is the partition) or "range" (src is
-- {first, step, k0, k1}: the numbers first + k * step for k = k0 .. k1,
-- generated, never stored); 'sink'
-- is "list" (returns the new list), "sum" / "count" (returns the total,
-- with no list at all) or "frequencies" (returns {value = count}).
-- On Lua 5.4 a long partition's loop inlines the functions it can (see
-- lask.bag_inline); it is then cached by its source, and returned with
-- the line map that moves its errors to the user's lines.
local CHUNK = "[lask] bag pipeline"
-- A text source (a read_text block {path, start, size}; the loop is given
-- its reader, see run_compiled) is read by the loop itself, its lines
-- made a chunk at a time into one reused list:
-- the block's lines are never all alive at once (less memory, and the
-- collector does not go over them again and again).
local TEXT_LINE = 64 -- bytes a line, to guess a block's number of lines
local TEXT_LOOP =
  "local rd, xs0 = src, {}\n" ..
  "local next_lines = B.next_lines\n" ..
  "while true do local n0 = next_lines(rd, xs0, 1024)\n" ..
  "if n0 == 0 then break end\n" ..
  "for i0 = 1, n0 do local x = xs0[i0]\n"
local by_source, nsources = {}, 0

local function compile_steps(steps, source, sink, src, noinline)
  local sig = {source, sink}
  for i, s in ipairs(steps) do
    sig[i + 2] = s[1] .. s.n .. (s.has_default and "d" or "")
  end
  sig = table.concat(sig, ",")
  local n
  if source == "range" then
    n = src[4] - src[3] + 1
  elseif source == "text" then
    -- about: the number of lines is not known before the block is read
    n = math.floor(src[3] / TEXT_LINE)
  else
    n = #bag.check_list(src)
  end
  local inl, any, pc = {}, false, false
  if inline.enabled and n >= LONG and not noinline then
    for i, s in ipairs(steps) do
      if s[1] == "map" or s[1] == "filter" or s[1] == "remove" then
        inl[i] = inline.info(s[2])
        any = any or inl[i] ~= nil
        pc = pc or (inl[i] and inl[i].saves_pc)
      end
    end
  end
  local cache = cache_for(steps, n)
  local fn = not any and cache[sig]
  if fn then return fn end
  local head = {"local src, S, B = ...\n",
                "local nil_element = B.nil_element\n",
                "local uncountable = B.uncountable\n",
                "local not_list, not_indexable = B.not_list, B.not_indexable\n",
                "local type = type\n",
                pc and "local lask_e, lask_n = ''\n" or ""}
  for i, s in ipairs(steps) do
    head[#head + 1] = ("local f%d = S[%d][2]\n"):format(i, i)
    for j = 3, s.n do
      head[#head + 1] = ("local a%d_%d = S[%d][%d]\n"):format(i, j, i, j)
    end
  end
  -- Each number from its index (a float step added up would drift, and
  -- partitions would disagree with one sequential loop at their edges).
  local loop = source == "range" and
    "local r0, rs = src[1], src[2]\n" ..
    "for k = src[3], src[4] do local x = r0 + k * rs\n" or
    source == "text" and TEXT_LOOP or
    "for i0 = 1, #src do local x = src[i0]\n"
  local init = sink == "list" and "local out, m = {}, 0\n" or
               sink == "frequencies" and "local acc = {}\n" or
               "local acc = 0\n"
  local result = sink == "list" and "return out\n" or "return acc\n"
  local text = table.concat(head) .. init .. loop ..
               gen_steps(steps, 1, 1, sink, inl) .. "end\n" ..
               (source == "text" and "end\n" or "") .. result
  if not any then
    fn = assert(load(text, "=" .. CHUNK))
    cache[sig] = fn
    return fn
  end
  local lines
  text, lines = inline.substitute(text, inl)
  local key = inline.key(text, lines)
  local hit = by_source[key]
  if hit then return hit[1], hit[2] end
  fn = load(text, "=" .. CHUNK)
  if not fn then -- not expected (each expression compiled alone)
    return compile_steps(steps, source, sink, src, true)
  end
  if nsources >= 64 then by_source, nsources = {}, 0 end
  by_source[key], nsources = {fn, lines}, nsources + 1
  return fn, lines
end

-- Runs a compiled pipeline. An error raised in an inlined expression is
-- reported at the user's line; a message is given its traceback where it
-- was raised (the schedulers add none to a message that has one).
-- A text source's loop reads its block through a reader made here: an
-- error closes it at once (its memory is mapped, which the collector does
-- not see, so a failed run would otherwise keep the block for a while).
-- A sum's own addition failing (a string element) names bag.sum, not a
-- line of the generated loop.
local SINK_NAMES = {sum = "bag.sum"}

local function run_compiled(src, steps, source, sink)
  local fn, lines = compile_steps(steps, source, sink, src)
  local rd = source == "text" and
    core.block_lines(src[1], src[2], src[3], src[4])
  local who = SINK_NAMES[sink]
  if not lines and not rd and not who then return fn(src, steps, bag) end
  local ok, r = xpcall(fn, function(m)
    if rd then core.close_lines(rd) end
    if type(m) ~= "string" or
       m:find("\nstack traceback:\n", 1, true) then
      return m
    end
    if lines then m = inline.remap(m, CHUNK, lines) end
    if who and m:find(CHUNK .. ":", 1, true) == 1 then
      m = bag.ops.named_error(who, m)
    end
    return debug.traceback(m, 2)
  end, rd or src, steps, bag)
  if ok then return r end
  error(r, 0)
end

--- Runs element-wise 'steps' over a source ("list": src is a list;
-- "range": src is {first, step, k0, k1}) into a sink ("list", "sum",
-- "count", "frequencies"). Runs inside tasks (a module function: travels
-- by reference).
function bag.run_fused(src, steps, source, sink)
  return run_compiled(src, steps, source, sink)
end

--- Applies element-wise 'steps' to the list 'part' in one pass; returns a
-- new list. Runs inside tasks (a module function: travels by reference).
function bag.run_steps(part, steps)
  return run_compiled(part, steps, "list", "list")
end

-- Splits the steps at "list" steps: element steps run fused in Lua, list
-- steps (C helpers) take the whole partition.
function bag.run_pipeline(part, steps)
  local run, seg = part, {}
  for _, s in ipairs(steps) do
    if s[1] == "list" then
      if #seg > 0 then run = bag.run_steps(run, seg) seg = {} end
      run = s[2](run, unpack(s, 3, s.n))
      if s.user then -- the string helpers make lists
        core.check_sequence(run, "bag.map_partitions")
      end
    else
      seg[#seg + 1] = s
    end
  end
  if #seg > 0 then run = bag.run_steps(run, seg) end
  return run
end

local run_pipeline = lask.delayed(bag.run_pipeline, {name = "bag-map"})

local run_fused = lask.delayed(bag.run_fused, {name = "bag-map"})

-- Are all steps element-wise (none a whole-list C step)?
local function element_steps(steps)
  for _, s in ipairs(steps) do
    if s[1] == "list" then return false end
  end
  return true
end

--- The partitions with the pending steps applied (Delayed lists). With
-- 'sink' ("sum", "count" or "frequencies", for those reductions) each
-- partition's total is made instead, in the same pass, and a second result
-- true says so; when the steps cannot run fused (a C list step), nothing
-- is made and the result is nil, false.
function methods:to_delayed(sink)
  local out, src = {}, self.source
  local fusable = element_steps(self.steps)
  local kind = fusable and src ~= nil and src.kind
  -- a partition's own source for the fused loop: a range's numbers, a
  -- text block's lines (read by the loop; a gzip file is read whole)
  local function fused(i, p, sink_)
    local blk = src and src.blocks[i]
    if kind == "range" then
      return run_fused(blk, self.steps, "range", sink_)
    elseif kind == "text" and not blk.gz then
      return run_fused(blk, self.steps, "text", sink_)
    end
    return run_fused(p, self.steps, "list", sink_)
  end
  if sink and not fusable then return nil, false end
  if sink then
    for i, p in ipairs(self.parts) do out[i] = fused(i, p, sink) end
    return out, true
  end
  for i, p in ipairs(self.parts) do
    if #self.steps == 0 then
      out[i] = p
    elseif kind then
      out[i] = fused(i, p, "list")
    else
      out[i] = run_pipeline(p, self.steps)
    end
  end
  return out
end

local function with_step(self, step)
  local steps = {}
  for i, s in ipairs(self.steps) do steps[i] = s end
  steps[#steps + 1] = step
  return new_bag(self.parts, steps, self.source)
end

-- ------------------------------------------------------------ constructors

-- Splits 'list' into 'npartitions' lists of balanced lengths (at most one
-- per element), or with 'size' into lists of that length (the last
-- shorter).
local function split_list(list, npartitions, size)
  local n = #list
  local parts = {}
  if n == 0 then return {{}} end
  local bounds = {}
  if size then
    for start = 1, n, size do bounds[#bounds + 1] = start end
  else
    npartitions = math.min(npartitions, n)
    for k = 0, npartitions - 1 do
      bounds[k + 1] = math.floor(k * n / npartitions) + 1
    end
  end
  bounds[#bounds + 1] = n + 1
  for k = 1, #bounds - 1 do
    local p = {}
    for i = bounds[k], bounds[k + 1] - 1 do p[#p + 1] = list[i] end
    parts[k] = p
  end
  return parts
end

-- Checks an option that must be a whole number >= 1.
local function count_opt(v, who, name)
  if v ~= nil and (type(v) ~= "number" or v < 1 or v % 1 ~= 0) then
    error(("%s: %s must be a whole number >= 1, got %s"):format(
      who, name, type(v) == "string" and ("'" .. v .. "'") or tostring(v)), 3)
  end
  return v
end
bag.count_opt = count_opt

--- A bag from a Lua list. opts: npartitions (default: about 100 elements
-- each, at most 100 partitions; never more than one per element) or
-- partition_size.
function bag.from_sequence(list, opts)
  if type(list) ~= "table" then
    error("bag.from_sequence: argument 1 must be a list, got " .. type(list), 2)
  end
  opts = check_opts(opts, {npartitions = true, partition_size = true},
                    "bag.from_sequence")
  local ok, err = pcall(core.check_sequence, list, "bag.from_sequence")
  if not ok then error(err, 2) end -- a hole or a record: # would drop some
  local n = #list
  local np = count_opt(opts.npartitions, "bag.from_sequence", "npartitions")
  local size = count_opt(opts.partition_size, "bag.from_sequence",
                         "partition_size")
  if np == nil then np = math.min(100, math.max(1, math.ceil(n / 100))) end
  local parts = {}
  for i, p in ipairs(split_list(list, np, size)) do
    parts[i] = lask.delayed(p, {name = "from-sequence"})
  end
  return new_bag(parts)
end

-- On Lua 5.4 (LuaJIT has no '//' or '>>' to parse): the number of
-- integers first, first + step, ... within last, exactly, also when
-- last - first does not fit in an integer (it is then taken as unsigned);
-- nil when the count itself does not fit.
local int_count = math.type and load([[
  local ult, maxinteger = math.ult, math.maxinteger
  return function(first, last, step)
    if step > 0 and last < first or step < 0 and last > first then
      return 0
    end
    local span = step > 0 and last - first or first - last -- unsigned
    local s = step > 0 and step or -step -- -mininteger: 2^63 unsigned
    local q
    if s < 0 then
      q = ult(span, s) and 0 or 1
    elseif span >= 0 then
      q = span // s
    else -- span >= 2^63: halve it, divide, then up to two steps more
      q = ((span >> 1) // s) << 1
      local r = span - q * s
      while not ult(r, s) do
        r, q = r - s, q + 1
      end
    end
    if q < 0 or q == maxinteger then return nil end
    return q + 1
  end]])()

local range_part = lask.delayed(function(first, step, k0, k1)
  local out, n = {}, 0
  for k = k0, k1 do
    n = n + 1
    out[n] = first + k * step
  end
  return out
end, {name = "range", pure = true})

--- range(n) is 1..n; range(first, last [, step]) is inclusive like a
-- numeric for: floor((last - first) / step) + 1 numbers, number k (from 0)
-- being first + k * step (with a fractional step, computed from k, not
-- added up). The partitions are made by the tasks, not the client.
function bag.range(a, b, c, d)
  local first, last, step, opts
  if type(b) ~= "number" then
    first, last, step, opts = 1, a, 1, b
  elseif type(c) ~= "number" then
    first, last, step, opts = a, b, 1, c
  else
    first, last, step, opts = a, b, c, d
  end
  local function finite(v)
    return type(v) == "number" and v == v and v > -math.huge and
           v < math.huge
  end
  if not (finite(first) and finite(last) and finite(step)) or step == 0 then
    error("bag.range: expected finite numbers (and a non-zero step)", 2)
  end
  opts = check_opts(opts, {npartitions = true}, "bag.range")
  local count
  if math.type and math.type(first) == "integer" and
     math.type(last) == "integer" and math.type(step) == "integer" then
    count = int_count(first, last, step)
    if not count then
      error("bag.range: too many numbers (more than math.maxinteger)", 2)
    end
  else
    count = math.max(0, math.floor((last - first) / step) + 1)
    -- The division rounds: count the k with first + k * step within last
    -- exactly as the partitions will compute them (a step or two at most).
    local function within(k)
      local v = first + k * step
      return step > 0 and v <= last or step < 0 and v >= last
    end
    for _ = 1, 2 do
      if count > 0 and not within(count - 1) then count = count - 1 end
    end
    for _ = 1, 2 do
      if within(count) then count = count + 1 end
    end
  end
  local np = count_opt(opts.npartitions, "bag.range", "npartitions") or
             math.min(100, math.max(1, math.ceil(count / 100000)))
  np = math.min(np, math.max(count, 1))
  local parts, blocks = {}, {}
  -- balanced: lengths differ by at most one (by a few past 2^53 numbers,
  -- where k * count would overflow)
  local exact = count <= 2^53 / np
  local function edge(k)
    if k == np then return count end
    return exact and math.floor(k * count / np) or
           math.floor(k * (count / np))
  end
  for k = 0, np - 1 do
    local i0, i1 = edge(k), edge(k + 1)
    if i1 > i0 then
      parts[#parts + 1] = range_part(first, step, i0, i1 - 1)
      blocks[#blocks + 1] = {first, step, i0, i1 - 1}
    end
  end
  if #parts == 0 then return new_bag({lask.delayed({})}) end
  -- Pipelines over the range generate its numbers instead of reading them.
  return new_bag(parts, nil, {kind = "range", blocks = blocks})
end

--- A bag whose partitions are the values of the given Delayed lists.
-- A user's Delayed partition, checked to be a list when it is computed.
local as_list = lask.delayed(function(p)
  return require("lask.core").check_sequence(p, "bag.from_delayed")
end, {name = "from-delayed"})

function bag.from_delayed(list)
  if type(list) ~= "table" then
    error("bag.from_delayed: argument 1 must be a list of Delayed", 2)
  end
  local parts = {}
  for i, d in ipairs(list) do
    if not delayed.is_delayed(d) then
      error(("bag.from_delayed: element %d is not a Delayed"):format(i), 2)
    end
    parts[i] = as_list(d)
  end
  if #parts == 0 then parts[1] = lask.delayed({}) end
  return new_bag(parts)
end

--- The partitions of several bags, one after the other.
function bag.concat(bags)
  if type(bags) ~= "table" or is_bag(bags) then
    error("bag.concat: argument 1 must be a list of bags", 2)
  end
  local parts = {}
  for i, b in ipairs(bags) do
    if not is_bag(b) then
      error(("bag.concat: element %d is not a Bag"):format(i), 2)
    end
    for _, p in ipairs(b:to_delayed()) do parts[#parts + 1] = p end
  end
  if #parts == 0 then parts[1] = lask.delayed({}) end
  return new_bag(parts)
end

-- Parses "64MB", "1GiB", "512kB", 1e6 ... into bytes.
local function parse_bytes(v, who)
  local n = require("lask.config").bytes(v)
  if n then return n end
  error(("%s: cannot read '%s' as a number of bytes (try \"64MB\")"):format(
    who, tostring(v)), 3)
end
bag.parse_bytes = parse_bytes

local read_block = lask.delayed(core.read_block, {name = "read-text"})
local read_gzip = lask.delayed(core.read_gzip, {name = "read-gzip"})

-- Whether two occurrences of 'd' can overlap ("\n\n" in "\n\n\n"): then
-- where a line starts depends on the whole text before it.
local function self_overlapping(d)
  for k = 1, #d - 1 do
    if d:sub(1, k) == d:sub(-k) then return true end
  end
  return false
end

--- read_text(path | glob | list [, {blocksize = "64MB", linedelimiter =
-- "\n"}]): a bag of the lines of text files, each line with its delimiter
-- (a "\r" before a "\n" is kept as data; a last line without one is kept
-- as it is). Files are split into blocks of about blocksize bytes on line
-- boundaries (no line is lost or read twice); blocksize = false keeps one
-- partition per file, as does a delimiter that can overlap itself (such
-- as "\n\n"). Gzip files (.gz) are read whole.
function bag.read_text(paths, opts)
  opts = check_opts(opts, {blocksize = true, encoding = true,
                           linedelimiter = true}, "bag.read_text")
  local delim = opts.linedelimiter
  if delim == nil then delim = "\n" end
  if type(delim) ~= "string" or #delim < 1 or #delim > 255 then
    error("bag.read_text: linedelimiter must be a string of 1 to 255 " ..
          "bytes, got " .. (type(delim) == "string" and
          ("%d bytes"):format(#delim) or type(delim)), 2)
  end
  if opts.encoding ~= nil and not tostring(opts.encoding):lower():match(
       "^utf%-?8$") and opts.encoding ~= "binary" then
    error("bag.read_text: lines are read as bytes; encoding must be " ..
          "\"utf-8\" or \"binary\"", 2)
  end
  local list = paths
  if type(paths) == "string" then
    if paths:find("[%*%?%[]") then
      list = core.glob(paths)
      if #list == 0 then
        error(("bag.read_text: no file matches '%s'"):format(paths), 2)
      end
    else
      list = {paths}
    end
  elseif type(paths) ~= "table" then
    error("bag.read_text: argument 1 must be a path, a glob or a list", 2)
  else
    if #paths == 0 then
      error("bag.read_text: the list of paths is empty", 2)
    end
    for i, p in ipairs(paths) do
      if type(p) ~= "string" then
        error(("bag.read_text: path %d of the list is a %s, not a string")
              :format(i, type(p)), 2)
      end
    end
  end
  -- The default block: 64 MB, or with lask.config.set{memory_limit = ...}
  -- an eighth of the limit per worker (an executor holds about one block
  -- and what it makes of it), at least 1 MB.
  local blocksize = opts.blocksize
  if blocksize == nil then
    local limit = lask.config.get("memory_limit")
    if limit then
      local workers = lask.config.get("num_workers")
      blocksize = math.max(1e6, math.floor(
        parse_bytes(limit, "lask.config memory_limit") / (8 * workers)))
    else
      blocksize = 64e6
    end
  end
  if blocksize then blocksize = parse_bytes(blocksize, "bag.read_text") end
  if self_overlapping(delim) then blocksize = false end
  local parts, blocks = {}, {}
  local function block(path, start, size)
    parts[#parts + 1] = read_block(path, start, size, delim)
    blocks[#blocks + 1] = {path, start, size, delim}
  end
  for _, path in ipairs(list) do
    -- raises, naming a missing file or a device; 0 when the size is not
    -- known before reading (a pipe, /proc): one block read to the end
    local size = core.file_size(path)
    if path:match("%.gz$") then
      parts[#parts + 1] = read_gzip(path, delim)
      blocks[#blocks + 1] = {path, gz = true, delimiter = delim}
    elseif not blocksize or size <= blocksize then
      block(path, 0, size)
    else
      for start = 0, size - 1, blocksize do block(path, start, blocksize) end
    end
  end
  if #parts == 0 then return new_bag({lask.delayed({})}) end
  return new_bag(parts, nil, {kind = "text", blocks = blocks})
end

local write_part = lask.delayed(function(part, path)
  -- the directory is made where the file is written (a '*' may be in it)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" then require("lask.core").mkdirs(dir) end
  local f, err = io.open(path, "wb")
  if not f then error("bag.to_textfiles: " .. err, 0) end
  local ok, why = true, nil
  for i = 1, #part do
    local s = part[i]
    if type(s) == "number" then s = tostring(s)
    elseif type(s) ~= "string" then
      f:close()
      os.remove(path)
      error(("bag.to_textfiles: element %d of the partition written to %s " ..
             "is a %s, not a string or number"):format(i, path, type(s)), 0)
    end
    ok, why = f:write(s)
    if ok and s:sub(-1) ~= "\n" then ok, why = f:write("\n") end
    if not ok then break end
  end
  local closed, cwhy = f:close()
  if not ok or not closed then -- a full disk, a quota, an I/O error
    error(("bag.to_textfiles: cannot write %s: %s"):format(path,
          tostring(why or cwhy)), 0)
  end
  return path
end, {name = "to-textfiles"})

--- to_textfiles("out/*.txt"): writes each partition to a file, "*"
-- replaced by the partition number (1-based, zero-padded to one width, so
-- that the names sort in partition order); each element on its own
-- line (a "\n" is added unless it ends with one). Directories are
-- created. Computes at once; returns the list of paths.
function methods:to_textfiles(pattern, opts)
  if type(pattern) ~= "string" or not pattern:find("*", 1, true) then
    error("bag.to_textfiles: argument 1 must be a path with a '*'", 2)
  end
  if pattern:find("\0", 1, true) then
    error("bag.to_textfiles: the path has a NUL byte", 2)
  end
  local tasks, parts = {}, self:to_delayed()
  local width = #tostring(#parts)
  for i, p in ipairs(parts) do
    local name = ("%0" .. width .. "d"):format(i)
    tasks[i] = write_part(p, (pattern:gsub("%*", name)))
  end
  if opts ~= nil then require("lask.config").check(opts, "to_textfiles") end
  return (lask.compute(tasks, opts))
end

-- ------------------------------------------------------- element-wise ops

--- map(f, ...): f(x, ...) per element. Extra arguments that are plain
-- values or Delayed are passed along; a Bag with the same partitioning is
-- zipped element by element.
function methods:map(f, ...)
  check_fn(f, "bag.map", 1)
  local extra = {n = select("#", ...), ...}
  local bags = false
  for i = 1, extra.n do
    if is_bag(extra[i]) then bags = true end
    if getmetatable(extra[i]) == bag.Item then -- a lazy reduction result
      extra[i] = extra[i].delayed
    end
  end
  if bags then
    local zipped = self:_map_with_bags(f, extra) -- not a tail call: the
    return zipped                                -- error levels count map
  end
  local step = {"map", f, n = extra.n + 2}
  for i = 1, extra.n do step[i + 2] = extra[i] end
  return with_step(self, step)
end

local zip_map = lask.delayed(function(f, nargs, spec, p, ...)
  local parts = {...}
  local first = parts[1]
  local b = 1
  for j = 1, nargs do -- the bags zipped must be partitioned alike
    if spec[j] == true then
      b = b + 1
      if #parts[b] ~= #first then
        error(("bag.map: partition %d of argument %d has %d elements, " ..
               "this bag's has %d (bags mapped together must have " ..
               "partitions of equal lengths)"):format(p, j + 1, #parts[b],
               #first), 0)
      end
    end
  end
  local out = {}
  for i = 1, #first do
    local args, k = {}, 1
    for j = 1, nargs do
      local s = spec[j]
      if s == true then
        k = k + 1
        args[j] = parts[k][i]
      else
        args[j] = s.value
      end
    end
    local v = f(first[i], unpack(args, 1, nargs))
    if v == nil then require("lask.bag").nil_element() end
    out[i] = v
  end
  return out
end, {name = "bag-map"})

function methods:_map_with_bags(f, extra)
  local np = self.npartitions
  local spec, others = {}, {}
  for i = 1, extra.n do
    local a = extra[i]
    if is_bag(a) then
      if a.npartitions ~= np then
        error(("bag.map: argument %d has %d partitions, this bag has %d")
              :format(i + 1, a.npartitions, np), 3)
      end
      spec[i] = true
      others[#others + 1] = a:to_delayed()
    else
      spec[i] = {value = a}
    end
  end
  local mine = self:to_delayed()
  local parts = {}
  for p = 1, np do
    local args = {mine[p]}
    for _, o in ipairs(others) do args[#args + 1] = o[p] end
    parts[p] = zip_map(f, extra.n, spec, p, unpack(args))
  end
  return new_bag(parts)
end

function methods:filter(pred)
  check_fn(pred, "bag.filter", 1)
  return with_step(self, {"filter", pred, n = 2})
end

function methods:remove(pred)
  check_fn(pred, "bag.remove", 1)
  return with_step(self, {"remove", pred, n = 2})
end

function methods:flatten()
  local last = self.steps[#self.steps]
  if last and last[1] == "list" and last[2] == core.str_split then
    -- str:split():flatten() runs as one C pass
    local steps = {}
    for i = 1, #self.steps - 1 do steps[i] = self.steps[i] end
    steps[#steps + 1] = {"list", core.str_split_flat, last[3], n = last.n}
    return new_bag(self.parts, steps, self.source)
  end
  if last and last[1] == "list" then -- after a C step, flatten in C too
    return with_step(self, {"list", core.flatten_list, n = 2})
  end
  return with_step(self, {"flatten", n = 1})
end

--- pluck(k [, default]): x[k] per element; a missing key raises unless a
-- default is given.
function methods:pluck(k, ...)
  local step = {"pluck", k, n = 3}
  if select("#", ...) > 0 then
    step[3] = (...)
    step.has_default = true
  end
  return with_step(self, step)
end

--- map_partitions(f, ...): f(list, ...) -> list, per partition.
function methods:map_partitions(f, ...)
  check_fn(f, "bag.map_partitions", 1)
  local step = {"list", f, n = select("#", ...) + 2, user = true}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if getmetatable(v) == bag.Item then -- a lazy reduction: its value
      v = v.delayed
    elseif is_bag(v) then
      error(("bag.map_partitions: argument %d is a bag; pass bags to " ..
             "map or zip"):format(i + 1), 2)
    end
    step[i + 2] = v
  end
  return with_step(self, step)
end

-- ------------------------------------------------------ string accessor

--- b.str: string methods run per partition in C (lask.core's str_*), with
-- no Lua call per element.
local StrAccessor = {}
StrAccessor.__index = StrAccessor
bag.StrAccessor = StrAccessor

-- b.str.upper() (a dot for a colon) would index nil: say so.
local function check_accessor(self, name)
  if getmetatable(self) ~= StrAccessor then
    error(("bag.str.%s: call it with a colon: b.str:%s(...)"):format(name,
          name), 3)
  end
end

-- A pattern string.find cannot compile is named before any task runs.
local function check_pattern(pattern, name)
  if type(pattern) ~= "string" then
    error(("bag.str.%s: argument 1 must be a Lua pattern string"):format(
      name), 3)
  end
  local ok, err = pcall(string.find, "", pattern)
  if not ok then
    error(("bag.str.%s: invalid pattern '%s': %s"):format(name, pattern,
          tostring(err):gsub("^[^:]*:%d+: ", "")), 3)
  end
end

-- More arguments than a helper takes are an error, not silently dropped
-- (string.match's init, Python's maxsplit ...).
local function check_nargs(name, most, got)
  if got > most then
    error(("bag.str.%s takes at most %d argument%s, got %d"):format(name,
          most, most == 1 and "" or "s", got), 3)
  end
end

local function str_step(name, nargs)
  return function(self, ...)
    check_accessor(self, name)
    check_nargs(name, nargs, select("#", ...))
    local step = {"list", core["str_" .. name], n = 2 + nargs}
    for i = 1, nargs do step[2 + i] = (select(i, ...)) end
    return with_step(self.bag, step)
  end
end
--- split([sep]): lists of pieces (whitespace runs by default).
local split_step = str_step("split", 1)
function StrAccessor:split(sep, ...)
  check_accessor(self, "split")
  check_nargs("split", 1, select("#", ...) + 1)
  if sep ~= nil and (type(sep) ~= "string" or sep == "") then
    error("bag.str.split: the separator must be a non-empty string " ..
          "(or nothing, for runs of whitespace)", 2)
  end
  return split_step(self, sep)
end
StrAccessor.lower = str_step("lower", 0)
StrAccessor.upper = str_step("upper", 0)
StrAccessor.strip = str_step("strip", 0)
StrAccessor.len = str_step("len", 0)
--- match(pattern): the first capture (or match) per string, false if none
-- (a list cannot hold nil).
function StrAccessor:match(pattern, ...)
  check_accessor(self, "match")
  check_nargs("match", 1, select("#", ...) + 1)
  check_pattern(pattern, "match")
  return with_step(self.bag, {"list", core.str_match, pattern, n = 3})
end
--- gsub(pattern, repl [, n]): string.gsub per string (the first result).
function StrAccessor:gsub(pattern, repl, n, ...)
  check_accessor(self, "gsub")
  check_nargs("gsub", 3, select("#", ...) + 3)
  if n ~= nil and (type(n) ~= "number" or n ~= n or n % 1 ~= 0 or
                   math.abs(n) >= 2^31) then
    error("bag.str.gsub: argument 3 (the most replacements) must be a " ..
          "whole number below 2^31", 2)
  end
  check_pattern(pattern, "gsub")
  local t = type(repl)
  if t ~= "string" and t ~= "number" and t ~= "table" and t ~= "function" then
    error(("bag.str.gsub: argument 2 (the replacement) must be a string, " ..
           "a table or a function, got %s"):format(t), 2)
  end
  return with_step(self.bag, {"list", core.str_gsub, pattern, repl, n,
                              n = 5})
end

bag.Bag = Bag
bag.methods = methods
bag.new_bag = new_bag
bag.check_fn = check_fn
bag.check_opts = check_opts

-- Reductions, frequencies, groupby, ... live in lask.bag_ops, which adds
-- its methods to this table: it finds this module in package.loaded.
package.loaded["lask.bag"] = bag
require "lask.bag_ops"

return bag
