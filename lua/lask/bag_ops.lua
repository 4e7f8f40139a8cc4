--- Bag operations beyond element-wise steps: reductions (returning a lazy
-- Item), frequencies, topk, distinct, foldby, groupby (a hash shuffle),
-- join, zip, product, repartition, random_sample, accumulate, take,
-- compute. Loaded by lask.bag, whose method table it fills.
-- Dependencies: `lask`, `lask.bag`, `lask.core`.
-- @module lask.bag_ops
local lask = require "lask"
local core = require "lask.core"
local bag = package.loaded["lask.bag"]

local methods = bag.methods
local new_bag = bag.new_bag
local check_fn = bag.check_fn
local check_opts = bag.check_opts
local ops = {}
bag.ops = ops -- task functions: module functions travel by reference

-- ------------------------------------------------------------------ Item

local Item = {}
Item.__index = Item
Item.__lask_collection = true -- lask.compute(item) computes it
Item.__name = "lask.Item"
bag.Item = Item

local function new_item(d)
  return setmetatable({delayed = d}, Item)
end

--- Computes the item's value.
function Item:compute(opts)
  return self.delayed:compute(opts)
end

--- A new Item: f(value).
function Item:apply(f)
  check_fn(f, "Item.apply", 1)
  return new_item(lask.delayed(f, {name = "apply"})(self.delayed))
end

function Item:to_delayed() return self.delayed end
function Item:key() return self.delayed:key() end

-- ------------------------------------------------------------ reductions

-- An error raised by a reduction's own code (comparing a string with a
-- number in min, adding one in sum) names the method, not a line of lask's
-- modules: ops.named_error("bag.min", m). Messages that already name
-- their method (bag.*, lask: ...) and error values that are not strings
-- are left as they are.
function ops.named_error(who, m)
  if type(m) ~= "string" or m:find("^bag%.") or m:find("^lask") then
    return m
  end
  -- the position, when it is in lask's own code (embedded or from files)
  -- (a file lask/<name>.lua is lask's own when lask.<name> is loaded: the
  -- function may come from a state that loaded lask from files)
  m = m:gsub("^%[lask%] [^:\n]*:%d+: ", "")
  local name = m:match("^[^:\n]*lask/([%w_]+)%.lua:%d+: ")
  if name and package.loaded["lask." .. name] then
    m = m:gsub("^[^:\n]*:%d+: ", "", 1)
  end
  return who .. ": " .. m
end

-- f(x), its errors named for 'who' (when given), with their traceback.
function ops.call_named(who, f, x)
  if not who then return f(x) end
  local ok, r = xpcall(f, function(m)
    m = ops.named_error(who, m)
    if type(m) == "string" and not m:find("\nstack traceback:\n", 1, true)
    then
      m = debug.traceback(m, 2)
    end
    return m
  end, x)
  if not ok then error(r, 0) end
  return r
end

local per_partition = lask.delayed(function(f, part, who)
  local b = require("lask.bag")
  return b.ops.call_named(who, f, b.check_list(part))
end, {name = "bag-reduce-part"})
-- The values to aggregate come in one list (LuaJIT cannot unpack 8000).
local aggregate = lask.delayed(function(f, list, who)
  return require("lask.bag").ops.call_named(who, f, list)
end, {name = "bag-reduce-agg"})

-- The options of a reduction, {split_every = n}: n is the fan-in of the
-- tree, a whole number >= 2 (default 8; 2 with a memory_limit, as an
-- aggregate holds all its inputs: 9 word-count tables instead of 3 cost
-- 1.6x the memory, for 10-20% less time). Errors blame the method's caller.
local function default_every()
  return lask.config.get("memory_limit") and 2 or 8
end

local function split_every(opts, who)
  opts = check_opts(opts, {split_every = true}, who, 4)
  local every = opts.split_every or default_every()
  if type(every) ~= "number" or every ~= every or every < 2 or
     every % 1 ~= 0 then
    error(who .. ": split_every must be a whole number >= 2", 3)
  end
  return every
end

-- 'who' (optional) names the method in errors of perpart and agg.
local function reduce(self, perpart, agg, every, who)
  local level = {}
  for i, p in ipairs(self:to_delayed()) do
    level[i] = per_partition(perpart, p, who)
  end
  return new_item(bag.reduce_tree(level, agg, every, who))
end

--- reduction(perpartition, aggregate [, {split_every = 8}]): perpartition
-- maps each partition (a list) to a value; aggregate maps a list of those
-- values to one, in a tree of fan-in split_every. Returns an Item.
function methods:reduction(perpart, agg, opts)
  check_fn(perpart, "bag.reduction", 1)
  check_fn(agg, "bag.reduction", 2)
  return reduce(self, perpart, agg, split_every(opts, "bag.reduction"))
end

--- Aggregates a list of Delayed values with agg (a function of a list) in
-- a tree of fan-in 'every'; returns the root Delayed.
function bag.reduce_tree(level, agg, every, who)
  every = every or 8
  repeat
    local next_level = {}
    for i = 1, #level, every do
      local group = {}
      for j = i, math.min(i + every - 1, #level) do
        group[#group + 1] = level[j]
      end
      next_level[#next_level + 1] = aggregate(agg, group, who)
    end
    level = next_level
  until #level == 1
  return level[1]
end

function ops.fold_list(binop, initial, has_initial, list)
  local acc, start = initial, 1
  if not has_initial then
    if #list == 0 then return nil end
    acc, start = list[1], 2
  end
  for i = start, #list do
    acc = binop(acc, list[i])
    if acc == nil then -- it would read as "nothing folded" further up
      error("bag.fold: the function returned nil (return false instead)", 0)
    end
  end
  return acc
end

--- fold(binop [, combine [, initial]]): binop folds each partition
-- (starting from initial, once per partition, as Dask does), combine folds
-- the partition results (default: binop).
-- fold(binop, combine, initial, {split_every = n}) takes the tree's fan-in
-- (with initial nil there: no initial value).
function methods:fold(binop, combine, ...)
  check_fn(binop, "bag.fold", 1)
  if combine ~= nil then check_fn(combine, "bag.fold", 2) end
  combine = combine or binop
  local nextra = select("#", ...)
  local initial, opts = ...
  local has_initial = nextra == 1 or (nextra >= 2 and initial ~= nil)
  local every = split_every(opts, "bag.fold")
  local fold_list = ops.fold_list
  return reduce(self, function(part)
    return {fold_list(binop, initial, has_initial, part), #part > 0}
  end, function(results)
    local vals = {}
    for _, r in ipairs(results) do
      if r[2] or has_initial then vals[#vals + 1] = r[1] end
    end
    return {fold_list(combine, nil, false, vals), #vals > 0}
  end, every, "bag.fold"):apply(function(r)
    if not r[2] then
      error("bag.fold: the bag is empty and fold has no initial value", 0)
    end
    return r[1]
  end)
end

function ops.sum(list)
  local s = 0
  for i = 1, #list do s = s + list[i] end
  return s
end

-- A per-partition total made in the same pass as the pipeline (no list),
-- then summed in a tree; nil when the steps do not allow it.
local function fused_total(self, sink, every)
  local totals, fused = self:to_delayed(sink)
  if not fused then return nil end
  return new_item(bag.reduce_tree(totals, ops.sum, every))
end

-- The built-in reductions take Dask's split_every in a last options table:
-- b:sum{split_every = 4}, b:topk(10, 2, {split_every = 4}).

function methods:sum(opts)
  local every = split_every(opts, "bag.sum")
  return fused_total(self, "sum", every) or
         reduce(self, ops.sum, ops.sum, every, "bag.sum")
end

function methods:count(opts)
  local every = split_every(opts, "bag.count")
  return fused_total(self, "count", every) or
         reduce(self, function(p) return #p end, ops.sum, every, "bag.count")
end

local function extreme(name, better)
  local who = "bag." .. name
  -- Each node gives {best}, or {} for a part of the tree with no element.
  return function(self, opts)
    return reduce(self, function(p)
      local best
      for i = 1, #p do
        if best == nil or better(p[i], best) then best = p[i] end
      end
      return {best}
    end, function(vals)
      local best
      for _, v in ipairs(vals) do
        if v[1] ~= nil and (best == nil or better(v[1], best)) then
          best = v[1]
        end
      end
      return {best}
    end, split_every(opts, who), who):apply(function(best)
      if best[1] == nil then error(who .. ": the bag is empty", 0) end
      return best[1]
    end)
  end
end
methods.min = extreme("min", function(a, b) return a < b end)
methods.max = extreme("max", function(a, b) return a > b end)

-- Per partition {count, sum, sum of squared deviations from the mean,
-- shift, mean - shift}: two passes in floats over x - shift, the shift
-- being the partition's first element (no integer wrap-around; no
-- cancellation when the data sit far from zero), merged pairwise by
-- Chan's formula, the means' difference taken shift to shift (exact for
-- nearby floats): mean, var, std.
local function moments(self, every, who)
  return reduce(self, function(p)
    local n, s, t = #p, 0.0, 0.0
    if n == 0 then return {0, 0.0, 0.0, 0.0, 0.0} end
    local shift = p[1] + 0.0
    for i = 1, n do
      s = s + p[i]
      t = t + (p[i] - shift)
    end
    local off, m2 = t / n, 0.0
    for i = 1, n do
      local d = (p[i] - shift) - off
      m2 = m2 + d * d
    end
    return {n, s, m2, shift, off}
  end, function(vals)
    local n, s, m2, shift, off = 0, 0.0, 0.0, 0.0, 0.0
    for _, v in ipairs(vals) do
      local nb = v[1]
      if nb > 0 and n == 0 then
        n, s, m2, shift, off = v[1], v[2], v[3], v[4], v[5]
      elseif nb > 0 then
        local total = n + nb
        local d = (v[4] - shift) + (v[5] - off)
        m2 = m2 + v[3] + d * d * n * nb / total
        off = off + d * nb / total
        n, s = total, s + v[2]
      end
    end
    return {n, s, m2, shift, off}
  end, every, who)
end

function methods:mean(opts)
  local every = split_every(opts, "bag.mean")
  return moments(self, every, "bag.mean"):apply(function(m)
    if m[1] == 0 then error("bag.mean: the bag is empty", 0) end
    return m[2] / m[1]
  end)
end

-- var([ddof [, opts]]), std([ddof [, opts]])
local function variance(self, ddof, opts, who)
  if type(ddof) == "table" and opts == nil then ddof, opts = nil, ddof end
  ddof = ddof or 0
  if type(ddof) ~= "number" or ddof ~= ddof then
    error(who .. ": ddof must be a number", 3)
  end
  return moments(self, split_every(opts, who), who):apply(function(m)
    local n = m[1]
    if n - ddof <= 0 then error(who .. ": not enough elements", 0) end
    return m[3] / (n - ddof)
  end)
end

function methods:var(ddof, opts)
  return variance(self, ddof, opts, "bag.var")
end

function methods:std(ddof, opts)
  return variance(self, ddof, opts, "bag.std"):apply(math.sqrt)
end

function methods:any(opts)
  local every = split_every(opts, "bag.any")
  return reduce(self, function(p)
    for i = 1, #p do if p[i] then return true end end
    return false
  end, function(v)
    for i = 1, #v do if v[i] then return true end end
    return false
  end, every, "bag.any")
end

function methods:all(opts)
  local every = split_every(opts, "bag.all")
  return reduce(self, function(p)
    for i = 1, #p do if not p[i] then return false end end
    return true
  end, function(v)
    for i = 1, #v do if not v[i] then return false end end
    return true
  end, every, "bag.all")
end

-- --------------------------------------------- frequencies, topk, distinct


-- A bag of one partition holding the value of Item 'item' (a list).
local function item_bag(item)
  return new_bag({item.delayed})
end

-- str:split():flatten() then frequencies() or distinct(): the words are
-- taken straight from the bytes in C, one Lua string per distinct word;
-- from the file's bytes when the bag is read_text(...).str:split() alone.
-- 'how' is "count" or "distinct" (core.<how>_block, core.<how>_split);
-- returns the Item merged by 'merge', or nil when the bag is not such.
local word_tasks = {}
for _, how in ipairs{"count", "distinct"} do
  word_tasks[how] = {
    block = lask.delayed(core[how .. "_block"], {name = how .. "-words"}),
    gzip = lask.delayed(function(path, sep, delim)
      local c = require "lask.core"
      return c[how .. "_split"](c.read_gzip(path, delim), sep)
    end, {name = how .. "-words"}),
  }
end

local function split_words(self, how, merge, every)
  local last = self.steps[#self.steps]
  if not (last and last[1] == "list" and last[2] == core.str_split_flat) then
    return nil
  end
  local sep = last[3]
  if #self.steps == 1 and self.source and self.source.kind == "text" then
    local tasks, parts = word_tasks[how], {}
    for i, blk in ipairs(self.source.blocks) do
      parts[i] = blk.gz and tasks.gzip(blk[1], sep, blk.delimiter) or
                 tasks.block(blk[1], blk[2], blk[3], sep, blk[4])
    end
    return new_item(bag.reduce_tree(parts, merge, every))
  end
  local steps = {}
  for i = 1, #self.steps - 1 do steps[i] = self.steps[i] end
  local per_part = core[how .. "_split"]
  return reduce(new_bag(self.parts, steps), function(p)
    return per_part(p, sep)
  end, merge, every)
end

--- frequencies([sort [, opts]]): a bag of {value, count} pairs; with
-- sort, most frequent first.
function methods:frequencies(sort, opts)
  if type(sort) == "table" and opts == nil then sort, opts = nil, sort end
  if sort ~= nil and type(sort) ~= "boolean" then
    error("bag.frequencies: argument 1 (sort) must be a boolean, got " ..
          type(sort), 2)
  end
  local every = split_every(opts, "bag.frequencies")
  -- Partial counts are merged into the first (each has this merge as its
  -- only consumer): no new table the size of the vocabulary per merge.
  -- Keys are checked once each, not per element.
  local merge = function(tables)
    local t = tables[1]
    local by_value = require("lask.bag").ops.check_by_value
    for k in pairs(t) do by_value(k, "bag.frequencies") end
    for i = 2, #tables do
      for k, n in pairs(tables[i]) do
        local c = t[k]
        if c == nil then by_value(k, "bag.frequencies") end
        t[k] = (c or 0) + n
      end
    end
    return t
  end
  local item = split_words(self, "count", merge, every)
  if not item then
    -- element-wise steps count as they go, with no list in between
    local parts, fused = self:to_delayed("frequencies")
    if fused then
      item = new_item(bag.reduce_tree(parts, merge, every))
    else
      item = reduce(self, core.count_values, merge, every, "bag.frequencies")
    end
  end
  -- The pairs come in an order fixed by their keys (numbers, then
  -- strings, then booleans), or by count with sort: not in the hash order
  -- of the merged table, which differs from run to run, so that
  -- frequencies():topk(...) ranks equal counts the same every time.
  item = item:apply(function(t)
    local pairs_list = {}
    for k, n in pairs(t) do pairs_list[#pairs_list + 1] = {k, n} end
    local rank = {number = 1, string = 2, boolean = 3}
    local function key_before(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return rank[ta] < rank[tb] end
      if ta == "boolean" then return not a and b end
      return a < b
    end
    table.sort(pairs_list, function(a, b)
      if sort and a[2] ~= b[2] then return a[2] > b[2] end
      return key_before(a[1], b[1])
    end)
    return pairs_list
  end)
  return item_bag(item)
end

-- key: nil (the element), a function, or an index into the element.
local function key_fn(key)
  if key == nil then return function(x) return x end end
  if type(key) == "function" then return key end
  return function(x)
    if type(x) ~= "table" then bag.not_indexable(x, key, "lask.bag") end
    return x[key]
  end
end

-- A key must be usable in a table and comparable: not nil, not NaN.
local function check_key(k, who)
  if k == nil then error(who .. ": an element has no key (nil)", 0) end
  if k ~= k then error(who .. ": a key is NaN (it equals nothing)", 0) end
  return k
end
ops.check_key = check_key

-- Keys that count, group or match elements are compared by value: strings,
-- numbers and booleans. A table or a function equals only itself, so the
-- result would depend on which copies meet in which partition or Lua state.
local BY_VALUE = {string = true, number = true, boolean = true}
local function check_by_value(k, who)
  check_key(k, who) -- nil, NaN
  if not BY_VALUE[type(k)] then
    error(("%s: a key is a %s (keys are compared by value: use a string, " ..
           "a number or a boolean made from it)"):format(who, type(k)), 0)
  end
  return k
end
ops.check_by_value = check_by_value

-- The keys topk and distinct can order: all numbers or all strings (or
-- tables with __lt, compared by it). Names the first pair that is not.
local function check_order(a, b, who)
  local ta, tb = type(a), type(b)
  if ta ~= tb or (ta ~= "number" and ta ~= "string" and ta ~= "table") then
    error(("%s: cannot compare a %s key with a %s key"):format(who, ta, tb),
          0)
  end
end

-- The k largest of 'list' by kf, largest first; equal keys keep the list's
-- order (as Dask's heapq.nlargest), so the result is the same every run.
-- 'key' is the key when kf is made from an index (or nil): numbers and
-- strings are then ranked in C, without a Lua call per element.
function ops.top(list, k, kf, key)
  if type(key) ~= "function" then
    local fast = core.topk_values(list, math.min(k, #list), key)
    if fast then return fast end
  end
  local rows, first = {}, nil
  for i = 1, #list do
    local ki = check_key(kf(list[i]), "bag.topk")
    if first == nil then first = ki else check_order(first, ki, "bag.topk") end
    rows[i] = {ki, i}
  end
  table.sort(rows, function(a, b)
    if a[1] == b[1] then return a[2] < b[2] end
    return a[1] > b[1]
  end)
  local out = {}
  for i = 1, math.min(k, #rows) do out[i] = list[rows[i][2]] end
  return out
end

--- topk(k [, key]): the k largest elements, largest first; key is a
-- function or an index (topk(10, 2) ranks {word, count} pairs by count).
function methods:topk(k, key, opts)
  if type(k) ~= "number" or k ~= k or k < 0 or k % 1 ~= 0 or k >= 2^53 then
    error("bag.topk: argument 1 must be a whole number >= 0 (below 2^53)", 2)
  end
  local every = split_every(opts, "bag.topk")
  local kf = key_fn(key)
  local top = ops.top
  local item = reduce(self, function(list) return top(list, k, kf, key) end,
                      function(lists)
    local all = {}
    for _, l in ipairs(lists) do
      for _, x in ipairs(l) do all[#all + 1] = x end
    end
    return top(all, k, kf, key)
  end, every, "bag.topk")
  return item_bag(item)
end

--- distinct([key]): one element per distinct value (or key), in first-seen
-- order within partitions.
function methods:distinct(key, opts)
  local every = split_every(opts, "bag.distinct")
  local kf = key_fn(key)
  local fast = type(key) ~= "function" -- C takes keys from an index
  local function uniq(lists)
    local seen, out = {}, {}
    for _, l in ipairs(lists) do
      -- C takes the elements up to one it cannot (a key that is not a
      -- string, number or boolean, or an element with a metatable)
      local from = fast and require("lask.core").distinct_into(l, seen, out,
                                                                 key) or 1
      for i = from, #l do
        local x = l[i]
        local k = check_by_value(kf(x), "bag.distinct")
        if not seen[k] then
          seen[k] = true
          out[#out + 1] = x
        end
      end
    end
    return out
  end
  local item = key == nil and split_words(self, "distinct", uniq, every)
  return item_bag(item or reduce(self, function(p) return uniq({p}) end,
                                 uniq, every, "bag.distinct"))
end

-- ---------------------------------------------------------- foldby, etc.

--- foldby(key, binop, initial [, combine, combine_initial]): per key, fold
-- the elements with binop from initial in each partition, then the
-- partition results with combine from combine_initial. A bag of
-- {key, value} pairs.
function methods:foldby(key, binop, initial, combine, combine_initial, opts)
  local every = split_every(opts, "bag.foldby")
  local kf = key_fn(key)
  check_fn(binop, "bag.foldby", 2)
  local cname = combine and "combine" or "binop" -- for errors
  combine = combine or binop
  if combine ~= binop then check_fn(combine, "bag.foldby", 4) end
  -- initial starts each key's fold in each partition (none: its first
  -- element); the partitions' values are combined without an initial value
  -- through the tree, and combine_initial (none by default, as Dask) goes
  -- in once per key at the root.
  -- A nil from binop or combine would silently drop the key's value so far.
  local function folded(v, which)
    if v == nil then
      error(("bag.foldby: the %s function returned nil (return false " ..
             "instead)"):format(which), 0)
    end
    return v
  end
  local item = reduce(self, function(p)
    local acc = {}
    for i = 1, #p do
      local x = p[i]
      local k = check_by_value(kf(x), "bag.foldby")
      local cur = acc[k]
      if cur ~= nil then acc[k] = folded(binop(cur, x), "binop")
      elseif initial ~= nil then acc[k] = folded(binop(initial, x), "binop")
      else acc[k] = x end
    end
    return acc
  end, function(tables)
    local acc = {}
    for _, t in ipairs(tables) do
      for k, v in pairs(t) do
        local cur = acc[k]
        acc[k] = cur == nil and v or folded(combine(cur, v), cname)
      end
    end
    return acc
  end, every, "bag.foldby"):apply(function(t)
    local out = {}
    for k, v in pairs(t) do
      if combine_initial ~= nil then
        v = folded(combine(combine_initial, v), cname)
      end
      out[#out + 1] = {k, v}
    end
    return out
  end)
  return item_bag(item)
end

-- A stable hash of a key, equal in every Lua state and interpreter.
function ops.key_hash(k)
  local t = type(k)
  local s
  if t == "string" then s = "s" .. k
  elseif t == "number" then
    check_key(k, "bag.groupby")
    s = k == 0 and "i0" or (k == math.floor(k) and k >= -2^53 and k <= 2^53) and
        ("i" .. string.format("%.0f", k)) or ("f" .. string.format("%.17g", k))
  elseif t == "boolean" then s = k and "t" or "f"
  else error("bag.groupby: keys must be strings, numbers or booleans, got " ..
             t, 0) end
  return tonumber(core.hash(s):sub(1, 8), 16)
end

-- Only the buckets that got elements are made: a gather reads every
-- split, and with many partitions most buckets of a split are empty.
local split_by_hash = lask.delayed(function(part, kf, n)
  local buckets = {}
  local hash = require("lask.bag").ops.key_hash
  for i = 1, #part do
    local x = part[i]
    local j = hash(kf(x)) % n + 1
    local b = buckets[j]
    if not b then
      b = {}
      buckets[j] = b
    end
    b[#b + 1] = x
  end
  return buckets
end, {name = "bag-shuffle-split"})

-- Buckets lo..hi of a split (a sparse table, indexed as the split's).
local slice_buckets = lask.delayed(function(buckets, lo, hi)
  local out = {}
  for j = lo, hi do out[j] = buckets[j] end
  return out
end, {name = "bag-shuffle-slice"})

-- bucket_slices(splits, n) -> slices: slices(j) is the list gather j
-- reads, of each split or a slice of it. A gather on another executor
-- than a split's decodes what it reads of it, so reading whole splits
-- would decode the data once per gather.
-- Slicing each split into runs of g buckets (run on the executor holding
-- the split) makes that g times the data in all; g is as small as keeps
-- the slice tasks near 64k (1 up to 256 partitions in and out).
local function bucket_slices(splits, n)
  local g = math.ceil(#splits * n / 65536)
  if g >= n then return function() return splits end end
  local made = {} -- run number -> the slices of every split
  return function(j)
    local r = math.floor((j - 1) / g)
    if not made[r] then
      local lo, hi, list = r * g + 1, math.min(n, r * g + g), {}
      for i, sp in ipairs(splits) do list[i] = slice_buckets(sp, lo, hi) end
      made[r] = list
    end
    return made[r]
  end
end

-- Adds the elements of 'list' to the groups (key -> list), remembering the
-- keys in first-seen order.
function ops.add_to_groups(groups, order, list, kf)
  for _, x in ipairs(list) do
    local k = kf(x)
    local g = groups[k]
    if not g then
      g = {}
      groups[k] = g
      order[#order + 1] = k
    end
    g[#g + 1] = x
  end
end

function ops.groups_list(groups, order)
  local out = {}
  for i, k in ipairs(order) do out[i] = {k, groups[k]} end
  return out
end

-- The Delayed lists of many partitions go in one table argument, not as
-- arguments: LuaJIT cannot unpack 8000 values.
local gather_groups = lask.delayed(function(j, kf, splits)
  local o = require("lask.bag").ops
  local groups, order = {}, {}
  for _, buckets in ipairs(splits) do
    local b = buckets[j]
    if b then o.add_to_groups(groups, order, b, kf) end
  end
  return o.groups_list(groups, order)
end, {name = "bag-shuffle-group"})

-- The disk shuffle. Split task i writes one file, <dir>/<i>.bin: a header
-- of n fixed-width entries "offset length\n" (ENTRY bytes each; length 0
-- for an empty bucket), then its non-empty buckets, serialized, one after
-- the other; it returns the bytes written (0: no element, no file).
-- Gather task j reads entry j of each split's file, then its bucket. When
-- it has read them all it counts itself in <dir>/done (core.count_up, under
-- a file lock: gathers run in several threads or processes), and the last
-- of the n gathers removes the files and the directory. One file per split
-- (not per bucket, which made up to n times as many: 800 partitions in and
-- out took 140 s, mostly in the file system creating and deleting them).
-- The task functions are module functions: they travel by reference.
local ENTRY, ENTRY_FORMAT = 40, "%019d %019d\n"
local NO_BUCKET = ENTRY_FORMAT:format(0, 0)

local function shuffle_path(dir, i)
  return ("%s/%d.bin"):format(dir, i)
end

-- io.open's message is "<path>: <reason>": the reason alone.
local function io_reason(err, path)
  err = tostring(err)
  if err:sub(1, #path + 2) == path .. ": " then return err:sub(#path + 3) end
  return err
end

local function write_failed(f, path, err)
  if f then f:close() end
  os.remove(path)
  error(("bag.groupby: cannot write the shuffle file %s: %s"):format(
    path, io_reason(err, path)), 0)
end

--- Writes buckets[1..n] (a sparse table of lists) to the file 'path' in
-- the format above; returns the bytes written. Empties 'buckets' as it
-- goes: one serialized bucket in memory at a time.
function ops.shuffle_write(path, buckets, n)
  local f, err = io.open(path, "wb")
  if not f then write_failed(nil, path, err) end
  local header, offset, empty = {}, n * ENTRY, 0
  local ok, werr = f:seek("set", offset)
  for j = 1, n do
    local b = buckets[j]
    if b == nil then
      empty = empty + 1
    else
      buckets[j] = nil
      local bytes = core.serialize(b)
      if ok then ok, werr = f:write(bytes) end
      if empty > 0 then header[#header + 1] = NO_BUCKET:rep(empty) end
      header[#header + 1] = ENTRY_FORMAT:format(offset, #bytes)
      offset, empty = offset + #bytes, 0
    end
  end
  if empty > 0 then header[#header + 1] = NO_BUCKET:rep(empty) end
  if ok then ok, werr = f:seek("set", 0) end
  if ok then ok, werr = f:write(table.concat(header)) end
  if not ok then write_failed(f, path, werr) end
  local closed, cerr = f:close() -- a full disk shows at write or close
  if not closed then write_failed(nil, path, cerr) end
  return offset
end

--- Bucket j of the split file 'path' (nil when it is empty).
function ops.shuffle_read(path, j)
  local f, err = io.open(path, "rb")
  if not f then
    error(("bag.groupby: cannot read the shuffle file %s: %s"):format(
      path, io_reason(err, path)), 0)
  end
  f:setvbuf("no") -- two small reads: no 4 KB buffer to fill each time
  local entry = f:seek("set", (j - 1) * ENTRY) and f:read(ENTRY)
  local offset, len = (entry or ""):match("^(%d+) (%d+)\n$")
  offset, len = tonumber(offset), tonumber(len)
  local bytes = len and len > 0 and f:seek("set", offset) and f:read(len)
  f:close()
  if not len or (len > 0 and (not bytes or #bytes ~= len)) then
    error(("bag.groupby: the shuffle file %s is damaged or cut short")
          :format(path), 0)
  end
  if len == 0 then return nil end
  return core.deserialize(bytes)
end

function ops.shuffle_split(part, kf, n, dir, i)
  local hash = ops.key_hash
  local buckets, memo = {}, {} -- memo: key -> bucket (keys repeat)
  for k = 1, #part do
    local x = part[k]
    local key = kf(x)
    local j = memo[key]
    if not j then
      j = hash(key) % n + 1
      if key == key then memo[key] = j end -- not NaN
    end
    local b = buckets[j]
    if not b then
      b = {}
      buckets[j] = b
    end
    b[#b + 1] = x
  end
  if next(buckets) == nil then return 0 end
  local ok, err = pcall(core.mkdirs, dir)
  if not ok then
    error("bag.groupby: " .. tostring(err):gsub("^lask: ", ""), 0)
  end
  -- A count left by an earlier compute that did not run every gather
  -- (take): no gather of this one has counted yet, as each needs every
  -- split.
  os.remove(dir .. "/done")
  return ops.shuffle_write(shuffle_path(dir, i), buckets, n)
end

function ops.shuffle_gather(j, kf, dir, sizes, n)
  local groups, order, any = {}, {}, false
  for i = 1, #sizes do
    if sizes[i] > 0 then
      any = true
      local b = ops.shuffle_read(shuffle_path(dir, i), j)
      if b then ops.add_to_groups(groups, order, b, kf) end
    end
  end
  -- the last gather to finish removes the files (all are read by then)
  if any and core.count_up(dir .. "/done") == n then
    for i = 1, #sizes do
      if sizes[i] > 0 then os.remove(shuffle_path(dir, i)) end
    end
    os.remove(dir .. "/done")
    os.remove(dir)
  end
  return ops.groups_list(groups, order)
end

local split_to_disk = lask.delayed(ops.shuffle_split,
                                   {name = "bag-shuffle-split"})
local gather_from_disk = lask.delayed(ops.shuffle_gather,
                                      {name = "bag-shuffle-group"})

-- A fresh directory name under lask.config's temporary_directory, unique
-- to this groupby: the process id (Linux), the session of lask.delayed's
-- keys and a counter; a name already there (a crashed run's) is skipped.
local shuffle_count = 0
local function shuffle_dir()
  local root = tostring(lask.config.get("temporary_directory"))
  root = root:gsub("(.)/+$", "%1")
  local pid = "x"
  local f = io.open("/proc/self/stat", "r")
  if f then
    pid = f:read("*n") or pid
    f:close()
  end
  local session = require("lask.delayed").session
  while true do
    shuffle_count = shuffle_count + 1
    local dir = ("%s/lask-shuffle-%s-%s-%d"):format(root, tostring(pid),
                                                    session, shuffle_count)
    local taken = io.open(dir, "r") -- opens a directory too
    if not taken then return dir end
    taken:close()
  end
end

--- groupby(key [, {npartitions = n, shuffle = "disk" | "tasks"}]): a bag
-- of {key, list} pairs, built by a hash shuffle: each partition is split
-- into n buckets (default: as many as partitions) by the key's hash, and
-- output partition j groups bucket j of every input, in input order.
-- Keys must be strings, numbers or booleans.
-- shuffle = "tasks" passes the buckets between tasks in memory: every
-- input partition's buckets are held until the last output partition is
-- done, so the whole bag is in memory at once. shuffle = "disk" writes
-- the buckets to files in a fresh subdirectory of lask.config's
-- temporary_directory (default $TMPDIR or /tmp), one file per input
-- partition, and passes only sizes between tasks; output partition j
-- reads its bucket from each file, and the last one removes the files and
-- the directory (a computation that does not read every output partition,
-- as take does, leaves them). Memory then
-- holds an input partition per split task and an output partition per
-- group task, so data larger than memory can be grouped when npartitions
-- makes each group partition fit. The default is "disk" when lask.config's
-- memory_limit is set, else "tasks". A failed computation may leave files
-- in the directory (lask-shuffle-*).
function methods:groupby(key, opts)
  local kf = key_fn(key)
  opts = check_opts(opts, {npartitions = true, shuffle = true}, "bag.groupby")
  local n = opts.npartitions or self.npartitions
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("bag.groupby: npartitions must be a positive integer", 2)
  end
  local shuffle = opts.shuffle
  if shuffle == nil then
    shuffle = lask.config.get("memory_limit") and "disk" or "tasks"
  end
  if shuffle ~= "disk" and shuffle ~= "tasks" then
    error(('bag.groupby: shuffle must be "disk" or "tasks", got %s'):format(
      tostring(shuffle)), 2)
  end
  local splits, parts = {}, {}
  if shuffle == "tasks" then
    for i, p in ipairs(self:to_delayed()) do
      splits[i] = split_by_hash(p, kf, n)
    end
    local slices = bucket_slices(splits, n)
    for j = 1, n do parts[j] = gather_groups(j, kf, slices(j)) end
  else
    local dir = shuffle_dir()
    for i, p in ipairs(self:to_delayed()) do
      splits[i] = split_to_disk(p, kf, n, dir, i)
    end
    for j = 1, n do parts[j] = gather_from_disk(j, kf, dir, splits, n) end
  end
  return new_bag(parts)
end

--- join(other_list, key_self, key_other): {other_element, self_element}
-- for every pair with equal keys; other_list is held in memory.
local concat_parts = lask.delayed(function(list)
  local out = {}
  for _, p in ipairs(list) do
    for i = 1, #p do out[#out + 1] = p[i] end
  end
  return out
end, {name = "bag-concat"})

local join_index = lask.delayed(function(other, ko)
  local bag_mod = require "lask.bag"
  local index = {}
  for _, y in ipairs(bag_mod.check_list(other)) do
    local k = bag_mod.ops.check_by_value(ko(y), "bag.join")
    index[k] = index[k] or {}
    table.insert(index[k], y)
  end
  return index
end, {name = "bag-join-index"})

--- join(other, key [, other_key]): {y, x} for each x of this bag and each
-- y of 'other' with equal keys. 'other' is a list, a Delayed list or a bag
-- (gathered into one list, as Dask does with a one-partition bag).
function methods:join(other, key_self, key_other)
  local ks, ko = key_fn(key_self), key_fn(key_other or key_self)
  if bag.is_bag(other) then
    other = concat_parts(other:to_delayed())
  elseif getmetatable(other) == bag.Item then
    other = other.delayed
  elseif not lask.is_delayed(other) and type(other) ~= "table" then
    error("bag.join: argument 1 must be a list, a Delayed list or a bag", 2)
  end
  local index = join_index(other, ko)
  return self:map_partitions(function(p, idx)
    local out, by_value = {}, require("lask.bag").ops.check_by_value
    for i = 1, #p do
      local matches = idx[by_value(ks(p[i]), "bag.join")]
      if matches then
        for _, y in ipairs(matches) do out[#out + 1] = {y, p[i]} end
      end
    end
    return out
  end, index)
end

local zip_parts = lask.delayed(function(a, b)
  if #a ~= #b then
    error(("bag.zip: partitions of different lengths (%d and %d)"):format(
      #a, #b), 0)
  end
  local out = {}
  for i = 1, #a do out[i] = {a[i], b[i]} end
  return out
end, {name = "bag-zip"})

--- zip(other): {a, b} pairs; both bags must have the same partitioning.
function methods:zip(other)
  if not bag.is_bag(other) or other.npartitions ~= self.npartitions then
    error("bag.zip: argument 1 must be a Bag with the same partitions", 2)
  end
  local a, b = self:to_delayed(), other:to_delayed()
  local parts = {}
  for i = 1, #a do parts[i] = zip_parts(a[i], b[i]) end
  return new_bag(parts)
end

local product_parts = lask.delayed(function(a, b)
  local out = {}
  for i = 1, #a do
    for j = 1, #b do out[#out + 1] = {a[i], b[j]} end
  end
  return out
end, {name = "bag-product"})

--- product(other): every {a, b}; self.npartitions * other.npartitions
-- partitions.
function methods:product(other)
  if not bag.is_bag(other) then
    error("bag.product: argument 1 must be a Bag", 2)
  end
  local a, b = self:to_delayed(), other:to_delayed()
  local parts = {}
  for i = 1, #a do
    for j = 1, #b do parts[#parts + 1] = product_parts(a[i], b[j]) end
  end
  return new_bag(parts)
end


-- Piece k of n of the list p, balanced as from_sequence splits.
local slice_part = lask.delayed(function(p, k, n)
  local out, len = {}, #p
  for i = math.floor((k - 1) * len / n) + 1, math.floor(k * len / n) do
    out[#out + 1] = p[i]
  end
  return out
end, {name = "bag-split"})

--- repartition(n): n partitions, merging neighbours or splitting each.
function methods:repartition(n)
  if type(n) ~= "number" or n < 1 or n % 1 ~= 0 then
    error("bag.repartition: argument 1 must be a positive integer", 2)
  end
  local parts, old = {}, self:to_delayed()
  if n <= #old then -- n groups of neighbours, balanced
    for k = 0, n - 1 do
      local i0 = math.floor(k * #old / n) + 1
      local i1 = math.floor((k + 1) * #old / n)
      local group = {}
      for i = i0, i1 do group[#group + 1] = old[i] end
      parts[#parts + 1] = concat_parts(group)
    end
  else -- split: partition i into base (+1 for the first extra) pieces
    local base, extra = math.floor(n / #old), n % #old
    for i, p in ipairs(old) do
      local pieces = base + (i <= extra and 1 or 0)
      for k = 1, pieces do parts[#parts + 1] = slice_part(p, k, pieces) end
    end
  end
  return new_bag(parts)
end

local sample_part = lask.delayed(function(p, prob, seed)
  -- Park-Miller, exact in doubles: the same sample on Lua 5.4 and LuaJIT.
  local x = seed % 2147483646 + 1
  local out = {}
  for i = 1, #p do
    x = (x * 16807) % 2147483647
    if x / 2147483647 < prob then out[#out + 1] = p[i] end
  end
  return out
end, {name = "bag-sample"})

--- random_sample(p [, seed]): each element kept with probability p,
-- deterministic for a seed.
function methods:random_sample(prob, seed)
  if type(prob) ~= "number" or not (prob >= 0 and prob <= 1) then
    error("bag.random_sample: argument 1 must be a probability in [0, 1]", 2)
  end
  if seed ~= nil and (type(seed) ~= "number" or seed % 1 ~= 0) then
    error("bag.random_sample: argument 2 (the seed) must be a whole number",
          2)
  end
  if seed == nil then -- a fresh seed, without touching math.random's state
    local noise = tostring({}) .. os.time() .. os.clock()
    seed = tonumber(core.hash(noise):sub(1, 8), 16)
  end
  -- Reduced first (% is exact on floats and integers), the per-partition
  -- seeds stay below 2^53: the same sample on Lua 5.4 and LuaJIT.
  seed = math.fmod(seed, 2147483646) -- exact on floats, unlike LuaJIT's %
  if seed < 0 then seed = seed + 2147483646 end
  local parts = {}
  for i, p in ipairs(self:to_delayed()) do
    parts[i] = sample_part(p, prob, seed * 7919 + i * 104729)
  end
  return new_bag(parts)
end

local accumulate_part = lask.delayed(function(binop, p, carry, has_carry,
                                              lead)
  local out, acc = {}, carry
  if lead then out[1] = carry end -- the initial value starts the bag
  for i = 1, #p do
    if i == 1 and not has_carry then acc = p[1]
    else
      acc = binop(acc, p[i])
      if acc == nil then
        error("bag.accumulate: the function returned nil (a bag cannot " ..
              "hold nil)", 0)
      end
    end
    out[#out + 1] = acc
  end
  return {out, acc, has_carry or #p > 0}
end, {name = "bag-accumulate"})

--- accumulate(binop [, initial]): running totals, in order across
-- partitions; with initial, the bag starts with it (as Dask's does).
function methods:accumulate(binop, ...)
  check_fn(binop, "bag.accumulate", 1)
  local has_initial = select("#", ...) > 0
  local carry = (...)
  if has_initial and carry == nil then
    error("bag.accumulate: argument 2 (initial) is nil", 2)
  end
  local parts = {}
  local prev_acc, prev_has = carry, has_initial
  for i, p in ipairs(self:to_delayed()) do
    local r = accumulate_part(binop, p, prev_acc, prev_has,
                              has_initial and i == 1)
    parts[i] = r:get(1)
    prev_acc, prev_has = r:get(2), r:get(3)
  end
  return new_bag(parts)
end

-- ------------------------------------------------------- results, output

--- compute(opts): the whole bag as one Lua list.
function methods:compute(opts)
  if opts ~= nil then require("lask.config").check(opts, "bag.compute") end
  local parts = self:to_delayed()
  local lists = lask.compute(parts, opts or {})
  local out = {}
  for _, l in ipairs(lists) do
    bag.check_list(l)
    for i = 1, #l do out[#out + 1] = l[i] end
  end
  return out
end

--- take(n [, npartitions = 1]): computes at once; the first n elements
-- of the first npartitions partitions (Dask's default: the first one).
function methods:take(n, npartitions)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("bag.take: argument 1 must be a whole number >= 0", 2)
  end
  npartitions = npartitions or 1
  if npartitions == -1 then npartitions = self.npartitions end
  if type(npartitions) ~= "number" or npartitions < 1 or
     npartitions % 1 ~= 0 then
    error("bag.take: argument 2 (npartitions) must be a whole number >= 1 " ..
          "or -1 (all)", 2)
  end
  local parts = self:to_delayed()
  local some = {}
  for i = 1, math.min(npartitions, #parts) do some[i] = parts[i] end
  local lists = lask.compute(some)
  local out = {}
  for _, l in ipairs(lists) do
    bag.check_list(l)
    for i = 1, #l do
      if #out >= n then return out end
      out[#out + 1] = l[i]
    end
  end
  return out
end

return ops
