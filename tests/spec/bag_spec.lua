-- Specs for lask.bag: every operation against a plain sequential Lua
-- computation, with empty partitions and randomized inputs, on the sync
-- and threads schedulers.
local bag = require "lask.bag"
local lask = require "lask"

local helpers = require("helpers")
local errmsg = helpers.errmsg

local function sorted(list, key)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy, key)
  return copy
end

for _, sched in ipairs({"sync", "threads"}) do
  describe("lask.bag on " .. sched, function()
    setup(function() lask.config.set{scheduler = sched} end)
    teardown(function() lask.config.reset() end)

    it("partitions sequences as asked", function()
      local b = bag.from_sequence({1, 2, 3, 4, 5}, {npartitions = 2})
      assert.are.equal(2, b.npartitions)
      assert.are.same({1, 2, 3, 4, 5}, b:compute())
      assert.are.equal(5, bag.from_sequence({1, 2, 3, 4, 5},
                                            {npartitions = 9}).npartitions)
      assert.are.equal(3, bag.from_sequence({1, 2, 3, 4, 5},
                                            {partition_size = 2}).npartitions)
      local empty = bag.from_sequence({})
      assert.are.equal(1, empty.npartitions)
      assert.are.same({}, empty:compute())
    end)

    it("ranges inclusively, like a numeric for", function()
      assert.are.same({1, 2, 3}, bag.range(3):compute())
      assert.are.same({2, 4, 6}, bag.range(2, 6, 2):compute())
      assert.are.same({5, 4, 3}, bag.range(5, 3, -1):compute())
      assert.are.same({}, bag.range(0):compute())
      local b = bag.range(1000, {npartitions = 7})
      assert.are.equal(7, b.npartitions)
      assert.are.equal(500500, b:sum():compute())
    end)

    it("maps, filters, removes, flattens and plucks in one pass", function()
      local b = bag.from_sequence({{1, 2}, {3}, {}, {4, 5, 6}},
                                  {npartitions = 3})
      local out = b:flatten():map(function(x, k) return x * k end, 10)
                   :filter(function(x) return x > 10 end)
                   :remove(function(x) return x == 40 end):compute()
      assert.are.same({20, 30, 50, 60}, out)
      local recs = bag.from_sequence({{name = "a"}, {name = "b"}, {}})
      assert.are.same({"a", "b", "none"}, recs:pluck("name", "none"):compute())
      assert.matches("has no key 'name'", errmsg(function()
        return recs:pluck("name"):compute()
      end))
    end)

    it("maps with other bags, Delayed values and plain extras", function()
      local a = bag.range(6, {npartitions = 2})
      local b = bag.range(11, 16, 1, {npartitions = 2})
      local k = lask.delayed(100)
      assert.are.same({112, 114, 116, 118, 120, 122},
        a:map(function(x, y, z) return x + y + z end, b, k):compute())
      assert.matches("has 3 partitions, this bag has 2", errmsg(function()
        return a:map(function(x, y) return x + y end,
                     bag.range(6, {npartitions = 3}))
      end))
      -- the error blames the caller's line
      local ok, err = pcall(function()
        local m = a:map(function(x) return x end,
                        bag.range(6, {npartitions = 3}))
        return m
      end)
      assert.is_false(ok)
      assert.matches("^[^:]*bag_spec.lua:%d+: bag.map", err)
      -- same npartitions, different lengths: an error, not a misalignment
      local c = bag.from_sequence({10, 20, 30, 40, 50, 60, 70},
                                  {npartitions = 2})
      assert.matches("bag.map: partition 2 of argument 2 has 4 elements, " ..
                     "this bag's has 3", errmsg(function()
        return a:map(function(x, y) return x + y end, c):compute()
      end))
    end)

    it("maps with an Item as an extra argument", function()
      local b = bag.range(4, {npartitions = 2})
      local total = b:sum()
      assert.are.same({0.1, 0.2, 0.3, 0.4},
        b:map(function(x, t) return x / t end, total):compute())
    end)

    it("reduces: sum count min max mean var std any all", function()
      local b = bag.from_sequence({3, 1, 4, 1, 5, 9, 2, 6}, {npartitions = 3})
      assert.are.equal(31, b:sum():compute())
      assert.are.equal(8, b:count():compute())
      assert.are.equal(1, b:min():compute())
      assert.are.equal(9, b:max():compute())
      assert.are.equal(31 / 8, b:mean():compute())
      local m = 31 / 8
      local v = 0
      for _, x in ipairs({3, 1, 4, 1, 5, 9, 2, 6}) do v = v + (x - m) ^ 2 end
      assert.is_true(math.abs(b:var():compute() - v / 8) < 1e-12)
      assert.is_true(math.abs(b:std(1):compute() - math.sqrt(v / 7)) < 1e-12)
      assert.is_true(b:map(function(x) return x > 8 end):any():compute())
      assert.is_false(b:map(function(x) return x > 1 end):all():compute())
    end)

    it("sums and counts ranges and pipelines in one pass", function()
      local b = bag.range(1, 99, 2, {npartitions = 4})
      assert.are.equal(2500, b:sum():compute())
      assert.are.equal(50, b:count():compute())
      local p = b:map(function(x) return x * 3 end)
                 :filter(function(x) return x % 2 == 1 end)
      local expect_sum, expect_n = 0, 0
      for x = 1, 99, 2 do
        expect_sum = expect_sum + 3 * x
        expect_n = expect_n + 1
      end
      assert.are.equal(expect_sum, p:sum():compute())
      assert.are.equal(expect_n, p:count():compute())
      assert.are.same(p:compute(), bag.from_sequence(b:compute())
        :map(function(x) return x * 3 end)
        :filter(function(x) return x % 2 == 1 end):compute())
      local nested = bag.from_sequence({{1, 2}, {}, {3}}, {npartitions = 2})
      assert.are.equal(6, nested:flatten():sum():compute())
      assert.are.equal(3, nested:flatten():count():compute())
    end)

    it("reduces empty bags: sum and count 0, min and max raise", function()
      local e = bag.from_sequence({})
      assert.are.equal(0, e:sum():compute())
      assert.are.equal(0, e:count():compute())
      assert.matches("the bag is empty", errmsg(function()
        return e:min():compute()
      end))
      assert.matches("the bag is empty", errmsg(function()
        return e:max():compute()
      end))
    end)

    it("folds with initial once per partition, as Dask does", function()
      local b = bag.range(6, {npartitions = 3})
      local add = function(a, x) return a + x end
      assert.are.equal(21, b:fold(add):compute())
      assert.are.equal(21 + 3 * 100, b:fold(add, add, 100):compute())
    end)

    it("applies functions to items", function()
      assert.are.equal(42, bag.range(6):sum()
                             :apply(function(s) return s * 2 end):compute())
    end)

    it("counts frequencies and finds the top k", function()
      local words = {"b", "a", "c", "a", "b", "a"}
      local f = bag.from_sequence(words, {npartitions = 3}):frequencies(true)
      assert.are.same({{"a", 3}, {"b", 2}, {"c", 1}}, f:compute())
      assert.are.same({{"a", 3}, {"b", 2}}, f:topk(2, 2):compute())
      assert.are.same({9, 7}, bag.from_sequence({3, 9, 1, 7}):topk(2):compute())
      local neg = function(x) return -x end
      assert.are.same({1, 3},
                      bag.from_sequence({3, 9, 1, 7}):topk(2, neg):compute())
    end)

    it("finds distinct elements, by key too", function()
      local b = bag.from_sequence({1, 2, 1, 3, 2}, {npartitions = 2})
      assert.are.same({1, 2, 3}, sorted(b:distinct():compute()))
      local s = bag.from_sequence({"ab", "ac", "b"}):distinct(function(x)
        return x:sub(1, 1)
      end)
      assert.are.equal(2, #s:compute())
    end)

    it("folds by key and groups by key with a shuffle", function()
      local b = bag.range(20, {npartitions = 4})
      local sums = {}
      local folded = b:foldby(function(x) return x % 3 end,
                              function(a, x) return a + x end, 0)
      for _, kv in ipairs(folded:compute()) do
        sums[kv[1]] = kv[2]
      end
      assert.are.same({[0] = 63, [1] = 70, [2] = 77}, sums)
      local g = b:groupby(function(x) return x % 3 end, {npartitions = 2})
      assert.are.equal(2, g.npartitions)
      local groups = {}
      for _, kv in ipairs(g:compute()) do groups[kv[1]] = sorted(kv[2]) end
      assert.are.same({3, 6, 9, 12, 15, 18}, groups[0])
      assert.are.same({1, 4, 7, 10, 13, 16, 19}, groups[1])
    end)

    it("joins, zips and makes products", function()
      local b = bag.from_sequence({{1, "x"}, {2, "y"}, {3, "z"}})
      local other = {{1, "one"}, {3, "three"}, {3, "drei"}}
      local joined = b:join(other, 1, 1):compute()
      assert.are.equal(3, #joined)
      local a = bag.range(4, {npartitions = 2})
      assert.are.same({{1, 1}, {2, 4}, {3, 9}, {4, 16}},
                      a:zip(a:map(function(x) return x * x end)):compute())
      local p = bag.range(2):product(bag.from_sequence({"a", "b"}))
      assert.are.same({{1, "a"}, {1, "b"}, {2, "a"}, {2, "b"}}, p:compute())
    end)

    it("repartitions, samples deterministically and accumulates", function()
      local b = bag.range(10, {npartitions = 5})
      assert.are.equal(2, b:repartition(2).npartitions)
      assert.are.same(b:compute(), b:repartition(2):compute())
      assert.are.same(b:compute(), b:repartition(8):compute())
      assert.are.equal(8, b:repartition(8).npartitions)
      assert.are.equal(13, b:repartition(13).npartitions)
      assert.are.same(b:compute(), b:repartition(13):compute())
      local s1 = b:random_sample(0.5, 42):compute()
      assert.are.same(s1, b:random_sample(0.5, 42):compute())
      assert.are.same({1, 3, 6, 10, 15, 21, 28, 36, 45, 55},
        b:accumulate(function(a, x) return a + x end):compute())
      assert.are.same({1}, b:take(1))
      assert.are.same({1, 2}, b:take(5)) -- the first partition only
      assert.are.same({1, 2, 3, 4, 5}, b:take(5, 3))
    end)

    it("agrees with a sequential computation on random input", function()
      math.randomseed(99)
      for _ = 1, 10 do
        local list = {}
        for i = 1, math.random(0, 300) do list[i] = math.random(-50, 50) end
        local b = bag.from_sequence(list, {npartitions = math.random(1, 9)})
        local sq, evens, total = {}, 0, 0
        for _, x in ipairs(list) do
          if x % 2 == 0 then
            evens = evens + 1
            total = total + x * x
            sq[#sq + 1] = x * x
          end
        end
        local pipeline = b:filter(function(x) return x % 2 == 0 end)
                          :map(function(x) return x * x end)
        assert.are.same(sq, pipeline:compute())
        assert.are.equal(total, pipeline:sum():compute())
        assert.are.equal(evens, pipeline:count():compute())
      end
    end)

    it("counts frequencies in the fused pass as a sequential count does",
       function()
      math.randomseed(7)
      local words = {"a", "b", "\xff\0", "日本", 1, 2.5, true}
      for _ = 1, 10 do
        local lines = {}
        for i = 1, math.random(0, 60) do
          local l = {}
          for j = 1, math.random(0, 5) do l[j] = words[math.random(#words)] end
          lines[i] = l
        end
        -- map gives a list per line (a copy, some with a repeat)
        local want = {}
        local function expand(l)
          local out = {}
          for j, w in ipairs(l) do out[j] = w end
          if #l == 3 then out[#out + 1] = l[1] end
          return out
        end
        for _, l in ipairs(lines) do
          for _, w in ipairs(expand(l)) do want[w] = (want[w] or 0) + 1 end
        end
        local b = bag.from_sequence(lines, {npartitions = math.random(1, 7)})
        local got = {}
        for _, kv in ipairs(b:map(expand):flatten():frequencies():compute()) do
          assert.is_nil(got[kv[1]], "each value once")
          got[kv[1]] = kv[2]
        end
        assert.are.same(want, got)
      end
    end)

    it("refuses NaN in frequencies and nil elements, whatever the sink",
       function()
      local function fails(x)
        return errmsg(function() return x:compute() end)
      end
      local nan = bag.from_sequence({1, 0 / 0, 2}, {npartitions = 2})
      -- fused (after a map) and the whole-list path (no step)
      assert.matches("bag.frequencies: cannot count NaN",
                     fails(nan:map(function(x) return x end):frequencies()))
      assert.matches("bag.frequencies: cannot count NaN",
                     fails(nan:frequencies()))
      local holes = bag.from_sequence({1, 2, 3, 4}):map(function(x)
        if x > 1 then return x end
      end)
      for _, r in ipairs{holes, holes:sum(), holes:count(),
                         holes:frequencies()} do
        assert.matches("an element is nil", fails(r))
      end
      -- flatten after a C step (map_partitions) as after a Lua one
      local lists = bag.from_sequence({1}):map_partitions(function()
        local t = {}
        for i = 1, 8 do t[i] = i end
        t[4] = nil -- # is still 8 on both interpreters
        return {t, {4}}
      end):flatten()
      for _, r in ipairs{lists, lists:sum(), lists:count(),
                         lists:map(function(x) return x end)} do
        assert.matches("an element is nil", fails(r))
      end
      -- str.match gives false where nothing matches, so nothing is lost
      local m = bag.from_sequence({"ab", "cd", "ef"}, {npartitions = 2})
        .str:match("c(d)")
      assert.are.same({false, "d", false}, m:compute())
      assert.are.equal(3, m:count():compute())
    end)

    it("reduces min and max when whole branches of the tree are empty",
       function()
      local b = bag.range(20, {npartitions = 10}):filter(function(x)
        return x > 18
      end)
      assert.are.equal(19, b:min({split_every = 2}):compute())
      assert.are.equal(20, b:max():compute())
      local none = b:filter(function() return false end)
      assert.matches("bag.min: the bag is empty", errmsg(function()
        return none:min():compute()
      end))
    end)

    it("gives variances without cancellation or integer wrap-around",
       function()
      local function near(want, got)
        assert.is_true(math.abs(want - got) <= 1e-9 * math.max(1, want),
                       ("%.17g vs %.17g"):format(want, got))
      end
      near(0, bag.from_sequence({0.1, 0.1, 0.1}):std():compute())
      near(2 / 3, bag.from_sequence({1e9 + 1, 1e9 + 2, 1e9 + 3},
                                    {npartitions = 2}):var():compute())
      near(1, bag.from_sequence({4294967296, 4294967298}):var():compute())
      -- randomized, merged across partitions, against two passes in Lua
      math.randomseed(21)
      for _ = 1, 20 do
        local xs = {}
        for i = 1, math.random(2, 80) do
          xs[i] = 1e6 + math.random() * (math.random() < 0.5 and 1 or 1e4)
        end
        local mean = 0
        for _, x in ipairs(xs) do mean = mean + x / #xs end
        local ss = 0
        for _, x in ipairs(xs) do ss = ss + (x - mean) ^ 2 end
        local b = bag.from_sequence(xs, {npartitions = math.random(1, 9)})
        near(ss / (#xs - 1), b:var(1):compute())
        near(mean, b:mean():compute())
      end
    end)

    it("gives exactly the partitions asked for, balanced", function()
      local b = bag.from_sequence({1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                                  {npartitions = 4})
      assert.are.equal(4, b.npartitions)
      assert.are.equal(3, b:repartition(3).npartitions)
      assert.are.same({1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                      b:repartition(3):compute())
      assert.are.equal(5, bag.range(6, {npartitions = 5}).npartitions)
      assert.are.equal(5, bag.from_sequence({1, 2, 3, 4, 5, 6},
                                            {npartitions = 5}).npartitions)
      local sizes = bag.range(6, {npartitions = 5}):map_partitions(
        function(p) return {#p} end):compute()
      assert.are.same({1, 1, 1, 1, 2}, sizes)
      -- zip lines up bags made with the same npartitions
      local z = bag.range(6, {npartitions = 5}):zip(
        bag.from_sequence({"a", "b", "c", "d", "e", "f"}, {npartitions = 5}))
      assert.are.same({6, "f"}, z:compute()[6])
    end)

    it("passes a lazy reduction to map_partitions as its value", function()
      local b = bag.from_sequence({1, 2, 3}, {npartitions = 2})
      local got = b:map_partitions(function(p, total)
        local out = {}
        for i, x in ipairs(p) do out[i] = x / total end
        return out
      end, b:sum()):compute()
      assert.are.same({1 / 6, 2 / 6, 3 / 6}, got)
      assert.matches("argument 2 is a bag", errmsg(b.map_partitions, b,
        function(p) return p end, b))
    end)

    it("checks arguments where the operation is built", function()
      assert.matches("bag.take: argument 1", errmsg(function()
        return bag.range(3):take("2")
      end))
      assert.matches("the seed", errmsg(function()
        return bag.range(3):random_sample(0.5, "x")
      end))
      assert.matches("bag.concat: argument 1 must be a list of bags",
                     errmsg(bag.concat, 5))
      assert.matches("a partition must be a list, got a number",
                     errmsg(function()
        return bag.from_delayed({lask.delayed(5)}):compute()
      end))
      for _, o in ipairs{{npartitions = "2"}, {npartitions = 0},
                         {npartitions = -3}, {partition_size = 0},
                         {npartitions = 1.5}} do
        assert.matches("must be a whole number >= 1",
                       errmsg(bag.from_sequence, {1, 2}, o))
      end
      assert.matches("non%-empty string", errmsg(function()
        return bag.from_sequence({"ab"}).str:split("")
      end))
      assert.matches("the replacement", errmsg(function()
        return bag.from_sequence({"ab"}).str:gsub("a")
      end))
      assert.matches("finite numbers", errmsg(bag.range, math.huge))
      assert.matches("finite numbers", errmsg(bag.range, 0 / 0))
    end)

    it("gives reduction's aggregate a plain list", function()
      local b = bag.from_sequence({1, 2, 3, 4, 5, 6}, {npartitions = 3})
      local keys = b:reduction(function(p) return #p end, function(v)
        local n = 0
        for _ in pairs(v) do n = n + 1 end
        return n
      end, {split_every = 8}):compute()
      assert.are.equal(3, keys)
    end)

    it("folds by key with combine_initial once, whatever the partitions",
       function()
      local add = function(a, b) return a + b end
      local ones = {}
      for i = 1, 20 do ones[i] = 1 end
      for _, np in ipairs{1, 3, 9, 20} do
        local b = bag.from_sequence(ones, {npartitions = np})
        local key = function() return "k" end
        assert.are.same({{"k", 120}},
          b:foldby(key, add, 0, add, 100):compute())
        -- initial once per partition (as Dask), no combine_initial: none
        assert.are.same({{"k", 20 + 10 * np}},
          b:foldby(key, add, 10):compute())
        assert.are.same({{"k", 20}}, b:foldby(key, add):compute())
      end
    end)

    it("refuses a nil from foldby's binop or combine", function()
      local b = bag.from_sequence({1, 2, 3, 4}, {npartitions = 2})
      local odd = function(x) return x % 2 end
      local add = function(a, x) return a + x end
      local bad = function(a, x) if x > 2 then return nil end return a + x end
      assert.matches("bag.foldby: the binop function returned nil",
                     errmsg(function()
                       return b:foldby(odd, bad, 0):compute() end))
      assert.matches("bag.foldby: the binop function returned nil",
                     errmsg(function() return b:foldby(odd, bad):compute() end))
      local none = function() end
      assert.matches("bag.foldby: the combine function returned nil",
                     errmsg(function()
                       return b:foldby(odd, add, 0, none):compute() end))
      assert.matches("bag.foldby: the combine function returned nil",
                     errmsg(function()
                       return bag.from_sequence({1}):foldby(odd, add, 0,
                         none, 0):compute() end))
    end)

    it("ranges with a fractional step across partitions as in one",
       function()
      math.randomseed(31)
      for _ = 1, 50 do
        local first = math.random(-50, 50) / 10
        local step = math.random(1, 30) / 10 * (math.random() < 0.3 and -1 or 1)
        local last = first + step * math.random(0, 40) + step / 3
        local want = bag.range(first, last, step, {npartitions = 1}):compute()
        for _, np in ipairs{2, 3, 7} do
          local b = bag.range(first, last, step, {npartitions = np})
          assert.are.same(want, b:compute())
          assert.are.equal(#want, b:count():compute())
        end
        for k, x in ipairs(want) do
          assert.are.equal(first + (k - 1) * step, x)
        end
      end
    end)

    it("refuses nil from map with bag arguments and non-lists everywhere",
       function()
      local b = bag.from_sequence({1, 2, 3, 4, 5}, {npartitions = 2})
      local m = b:map(function(x) if x ~= 2 then return x end end, b)
      assert.matches("an element is nil", errmsg(m.compute, m))
      local h = b:map_partitions(function() return 5 end)
      assert.matches(
        "bag.map_partitions: a partition must be a list, got a number",
        errmsg(h.compute, h))
      local d = bag.from_delayed({lask.delayed({1}), lask.delayed(5)})
      for _, r in ipairs{d, d:min(), d:topk(1), d:distinct(), d:mean(),
                         d:repartition(1)} do
        assert.matches("a partition must be a list, got a number",
                       errmsg(r.compute, r))
      end
      local s = bag.from_sequence({1, "ab"})
      assert.matches("bag.flatten: an element is a number",
                     errmsg(function() return s:flatten():compute() end))
      assert.matches("bag.pluck: cannot take key 1 of a number",
                     errmsg(function() return s:pluck(1):compute() end))
    end)

    it("refuses lists with holes from map_partitions and from_delayed",
       function()
      local b = bag.from_sequence({1, 2, 3, 4}, {npartitions = 2})
      local holes = {
        function(p) return {p[1], nil, p[2]} end, -- inside
        function(p) local t = {p[1]}; t[3] = p[2]; return t end, -- past #
        function(p) return {[2] = p[1]} end,
        function(p) return {p[1], p[2], [2 ^ 63] = 1} end, -- far past #
      }
      for _, f in ipairs(holes) do
        local h = b:map_partitions(f)
        for _, r in ipairs{h, h:count(), h:map(tostring)} do
          assert.matches("bag.map_partitions: the list has a hole at index",
                         errmsg(r.compute, r))
        end
      end
      -- other keys are let be; a list ending in nil is a list
      local ok = b:map_partitions(function(p)
        return {p[1], p[2], nil, n = 2, name = "x"}
      end)
      assert.are.same({1, 2, 3, 4}, ok:compute())
      local d = bag.from_delayed({lask.delayed({1, 2}),
                                  lask.delayed({1, nil, 3})})
      assert.matches("bag.from_delayed: the list has a hole at index 2",
                     errmsg(d.compute, d))
    end)

    it("joins with a list, a Delayed list, an Item or a bag", function()
      local b = bag.from_sequence({1, 2, 3}, {npartitions = 2})
      local other = {{1, "a"}, {3, "c"}, {3, "C"}}
      local id = function(x) return x end
      local first = function(y) return y[1] end
      local want = {{{1, "a"}, 1}, {{3, "c"}, 3}, {{3, "C"}, 3}}
      for _, o in ipairs{other, lask.delayed(other),
                         bag.from_sequence(other, {npartitions = 2})} do
        assert.are.same(want, b:join(o, id, first):compute())
      end
      assert.matches("argument 1 must be a list", errmsg(b.join, b, 5, id))
    end)

    it("names NaN and missing keys in topk, distinct and foldby", function()
      local b = bag.from_sequence({1, 0 / 0, 3}, {npartitions = 2})
      assert.matches("bag.topk: a key is NaN",
                     errmsg(function() return b:topk(2):compute() end))
      assert.matches("bag.distinct: a key is NaN",
                     errmsg(function() return b:distinct():compute() end))
      local t = bag.from_sequence({{1}, {}})
      assert.matches("bag.topk: an element has no key",
                     errmsg(function() return t:topk(1, 1):compute() end))
      assert.matches("bag.foldby: an element has no key",
        errmsg(function()
          return t:foldby(1, function(a) return a end):compute()
        end))
    end)

    it("ranks and dedups numbers and strings in C as the Lua path does",
       function()
      local core = require "lask.core"
      math.randomseed(11)
      for trial = 1, 60 do
        local n, strs, pairs_ = math.random(0, 300), trial % 2 == 0,
                                trial % 3 == 0
        local list = {}
        for i = 1, n do
          local v = math.random(1, 20) + (math.random() < 0.2 and 0.5 or 0)
          if strs then
            v = ("k%05.1f"):format(v) .. (math.random() < 0.3 and "\0x" or "")
          end
          list[i] = pairs_ and {i, v} or v
        end
        local key = pairs_ and 2 or nil
        local function kv(i) return key and list[i][key] or list[i] end
        local order = {}
        for i = 1, n do order[i] = i end
        table.sort(order, function(a, b)
          if kv(a) ~= kv(b) then return kv(a) > kv(b) end
          return a < b
        end)
        local k = math.random(0, 40)
        local want = {}
        for i = 1, math.min(k, n) do want[i] = list[order[i]] end
        assert.are.same(want, core.topk_values(list, k, key))
        local b = bag.from_sequence(list, {npartitions = math.random(1, 5)})
        assert.are.same(want, b:topk(k, key):compute())
        local seen, first = {}, {}
        for i = 1, n do
          if not seen[kv(i)] then
            seen[kv(i)] = true
            first[#first + 1] = list[i]
          end
        end
        assert.are.same(first, b:distinct(key):compute())
      end
      -- C leaves what it cannot take to Lua: a mixed list, a metatable,
      -- integers a double cannot tell apart (Lua 5.4)
      assert.is_nil(core.topk_values({1, "a"}, 1))
      if math.type then
        for _, e in ipairs{62, 53} do
          local big = load("return 1 << " .. e)()
          assert.are.same({big + 1, big},
            bag.from_sequence({big, big + 1}):topk(2):compute())
        end
      end
      assert.matches("below 2%^53", errmsg(function()
        return bag.range(3):topk(2 ^ 63)
      end))
      local odd = setmetatable({}, {__index = function() return 2 end})
      local list = {{1}, {2}, odd, {3}, {2}}
      local here = {scheduler = "sync"} -- a metatable does not travel
      assert.are.same({{1}, {2}, {3}},
        bag.from_sequence(list, {npartitions = 1}):distinct(1):compute(here))
      assert.are.same({{3}, {2}, odd},
        bag.from_sequence(list, {npartitions = 2}):topk(3, 1):compute(here))
    end)

    it("runs every string helper as the string library does", function()
      local lines = {"  Héllo Wörld \t", "", "a,b,,c", "MiXeD 42 x\r\n",
                     "\0bin\255 "}
      local b = bag.from_sequence(lines, {npartitions = 3})
      local function each(f)
        local out = {}
        for i, l in ipairs(lines) do out[i] = f(l) end
        return out
      end
      assert.are.same(each(string.upper), b.str:upper():compute())
      assert.are.same(each(string.lower), b.str:lower():compute())
      assert.are.same(each(function(l) return #l end), b.str:len():compute())
      assert.are.same(each(function(l)
        return (l:gsub("^[\t\n\v\f\r ]+", ""):gsub("[\t\n\v\f\r ]+$", ""))
      end), b.str:strip():compute())
      assert.are.same(each(function(l) return (l:gsub("%d", "#")) end),
                      b.str:gsub("%d", "#"):compute())
      assert.are.same(each(function(l)
                        return (l:gsub("%a+", {MiXeD = "m"}))
                      end),
                      b.str:gsub("%a+", {MiXeD = "m"}):compute())
      assert.are.same(each(function(l) return l:match("(%a)%a") or false end),
                      b.str:match("(%a)%a"):compute())
      -- with a separator, as Python's str.split: empty pieces are kept
      assert.are.same({{"  Héllo Wörld \t"}, {""}, {"a", "b", "", "c"}},
        bag.from_sequence({lines[1], lines[2], lines[3]}).str:split(",")
          :compute())
    end)

    it("names the string helper and its pattern in errors", function()
      local b = bag.from_sequence({"ab", 3})
      assert.matches("bag.str.match: invalid pattern '%[a': malformed",
                     errmsg(function() return b.str:match("[a") end))
      assert.matches("bag.str.gsub with pattern 'a': invalid capture index",
        errmsg(function()
          return bag.from_sequence({"ab"}).str:gsub("a", "%2"):compute()
        end))
      assert.matches("bag.str.gsub with pattern 'a': table", errmsg(function()
        return bag.from_sequence({"ab"}).str:gsub("a", function()
          error({}) end):compute()
      end))
      -- arguments a helper does not take are refused, not dropped; gsub
      -- takes string.gsub's most replacements
      assert.matches("bag.str.split takes at most 1 argument, got 2",
                     errmsg(function() return b.str:split(",", 1) end))
      assert.matches("bag.str.upper takes at most 0 arguments, got 1",
                     errmsg(function() return b.str:upper("x") end))
      assert.matches("bag.str.match takes at most 1 argument, got 2",
                     errmsg(function() return b.str:match("a", 2) end))
      assert.matches("bag.str.gsub: argument 3 .* whole number",
                     errmsg(function() return b.str:gsub("a", "b", 1.5) end))
      assert.matches("bag.str.gsub: argument 3 .* below 2%^31",
                     errmsg(function() return b.str:gsub("a", "b", 2^31) end))
      assert.are.same({"bba", "bb", "b"}, bag.from_sequence({"aaa", "aa", "a"})
        .str:gsub("a", "b", 2):map(function(x) return x end)
        .str:gsub("b", "y", 0):compute())
      assert.matches("bag.str.upper: call it with a colon", errmsg(function()
        return b.str.upper()
      end))
      assert.matches("bag.str.upper: element 2 of a partition is a " ..
                     "number, not a string",
                     errmsg(function() return b.str:upper():compute() end))
      assert.matches("bag.read_text: the list of paths is empty",
                     errmsg(bag.read_text, {}))
      assert.matches("bag.read_text: path 1 of the list is a table",
                     errmsg(bag.read_text, {{}}))
      assert.matches("bag.to_textfiles: the path has a NUL byte",
                     errmsg(b.to_textfiles, b, "/tmp/x\0/*.txt"))
    end)

    it("refuses sequences with holes and records, instead of dropping",
       function()
      assert.matches("bag.from_sequence: the list has a hole at index 2",
                     errmsg(bag.from_sequence, {1, nil, 3}))
      -- a proxy partition would read differently in C and Lua steps
      assert.matches("bag.map_partitions: the list has a metatable with " ..
                     "__len or __index", errmsg(function()
        return bag.from_sequence({1}):map_partitions(function()
          return setmetatable({}, {__index = function() return 1 end})
        end).str:upper():compute()
      end))
      -- filled out of order, a key past # may sit anywhere in the table
      for _, order in ipairs{{3, 4, 5, 1}, {2, 5, 3, 1}, {5, 1, 2, 3}} do
        local t = {}
        for _, k in ipairs(order) do t[k] = k end
        assert.matches("bag.from_sequence: the list has a hole at index",
                       errmsg(bag.from_sequence, t))
        assert.matches("bag.map_partitions: the list has a hole", errmsg(
          function()
            return bag.from_sequence({1}):map_partitions(function()
              return t end):compute()
          end))
      end
      assert.matches("bag.from_sequence: the table has key 'a' and no " ..
                     "element 1", errmsg(bag.from_sequence, {a = 1}))
      assert.are.same({1, 2}, bag.from_sequence({1, 2, n = 2}):compute())
      -- table.pack's "n" alone is an empty list, not a record
      assert.are.same({}, bag.range(2):map_partitions(function()
        return {n = 0}
      end):compute())
      assert.matches("bag.map_partitions: the table has key 'x' and no " ..
                     "element 1", errmsg(function()
        return bag.range(2):map_partitions(function() return {x = 1} end)
                 :compute()
      end))
    end)

    it("gives frequencies in an order fixed by the keys, or by counts",
       function()
      local words = {}
      for i = 1, 300 do words[i] = "w" .. (i * 7919) % 37 end
      words[#words + 1] = 5
      words[#words + 1] = true
      local b = bag.from_sequence(words, {npartitions = 4})
      local got = b:frequencies():compute()
      for i = 2, #got do
        local a, c = got[i - 1][1], got[i][1]
        assert.is_true(type(a) == type(c) and a < c or
                       type(a) == "number" or type(c) == "boolean")
      end
      local sorted_ = b:frequencies(true):compute()
      for i = 2, #sorted_ do
        local a, c = sorted_[i - 1], sorted_[i]
        assert.is_true(a[2] > c[2] or a[2] == c[2] and (type(a[1]) ==
          type(c[1]) and a[1] < c[1] or type(a[1]) == "number" or
          type(c[1]) == "boolean"))
      end
    end)

    it("refuses table keys where elements are counted, matched or grouped",
       function()
      local t = {1}
      local b = bag.from_sequence({t, t, {2}}, {npartitions = 2})
      local id = function(x) return x end
      local cases = {
        frequencies = function() return b:frequencies() end,
        frequencies_mapped = function()
          return b:map(id):frequencies()
        end,
        distinct = function() return b:distinct() end,
        foldby = function() return b:foldby(id, function(a) return a end) end,
        join = function() return bag.range(2):join(b:compute(), id, id) end,
        join_self = function()
          return b:join({1, 2}, id, function(x) return x end)
        end,
      }
      for name, make in pairs(cases) do
        local msg = errmsg(function() return make():compute() end)
        assert.is_truthy(msg:find("a key is a table (keys are compared by " ..
                                  "value", 1, true), name .. ": " .. msg)
      end
    end)

    it("splits a partition into balanced pieces that zip with others",
       function()
      local a = bag.range(10, {npartitions = 1}):repartition(3)
      local z = a:zip(bag.from_sequence({1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
                                        {npartitions = 3}))
      assert.are.equal(10, #z:compute())
      local sizes = bag.range(5, {npartitions = 1}):repartition(4)
        :map_partitions(function(p) return {#p} end):compute()
      assert.are.same({1, 1, 1, 2}, sizes)
    end)

    it("keeps the variance of data far from zero", function()
      math.randomseed(41)
      local xs = {}
      for i = 1, 200 do xs[i] = 1e15 + math.random(0, 20) end
      local mean = 0
      for _, x in ipairs(xs) do mean = mean + (x - 1e15) end
      mean = mean / #xs
      local ss = 0
      for _, x in ipairs(xs) do ss = ss + ((x - 1e15) - mean) ^ 2 end
      local got = bag.from_sequence(xs, {npartitions = 7}):var():compute()
      assert.is_true(math.abs(got - ss / #xs) < 1e-6 * ss / #xs,
                     ("%.17g vs %.17g"):format(got, ss / #xs))
    end)

    it("groups 0 and -0.0 together, and names a NaN key", function()
      for _, how in ipairs{"tasks", "disk"} do
        local g = bag.from_sequence({0, -0.0, 1}, {npartitions = 2})
          :groupby(function(x) return x end, {npartitions = 4, shuffle = how})
          :compute()
        local sizes = {}
        for _, kv in ipairs(g) do sizes[#sizes + 1] = #kv[2] end
        table.sort(sizes)
        assert.are.same({1, 2}, sizes)
      end
      assert.matches("a key is NaN", errmsg(function()
        return bag.from_sequence({0 / 0}):groupby(function(x) return x end)
          :compute()
      end))
    end)

    it("checks reduction options and the arguments of built-in reductions",
       function()
      local b = bag.range(100, {npartitions = 20})
      local sum = function(l)
        local t = 0
        for _, v in ipairs(l) do t = t + v end
        return t
      end
      assert.are.equal(5050, b:reduction(sum, sum, {split_every = 2})
                               :compute())
      for _, bad in ipairs{0 / 0, 2.5, 1, "4"} do
        assert.matches("split_every must be a whole number >= 2",
                       errmsg(b.reduction, b, sum, sum, {split_every = bad}))
      end
      -- the widest aggregation in the tree under Delayed d
      local function fan_in(d, seen)
        seen = seen or {}
        if seen[d] then return 0 end
        seen[d] = true
        local most = d[5] == "bag-reduce-agg" and #d[4] or 0
        for _, dep in ipairs(d[4]) do
          most = math.max(most, fan_in(dep, seen))
        end
        return most
      end
      local two = {split_every = 2}
      local items = {
        sum = function(o) return b:sum(o) end,
        count = function(o) return b:count(o) end,
        min = function(o) return b:min(o) end,
        max = function(o) return b:max(o) end,
        mean = function(o) return b:mean(o) end,
        var = function(o) return b:var(o) end,
        std = function(o) return b:std(1, o) end,
        any = function(o) return b:any(o) end,
        all = function(o) return b:all(o) end,
        sum_mapped = function(o)
          return b:map(function(x) return -x end):sum(o)
        end,
        frequencies = function(o) return b:frequencies(true, o) end,
        topk = function(o) return b:topk(3, nil, o) end,
        distinct = function(o) return b:distinct(nil, o) end,
        fold = function(o)
          return b:fold(function(a, x) return a + x end, nil, nil, o)
        end,
        fold_initial = function(o)
          return b:fold(function(a, x) return a + x end, nil, 0, o)
        end,
        foldby = function(o)
          return b:foldby(function(x) return x % 3 end,
                          function(a, x) return a + x end, 0, nil, nil, o)
        end,
      }
      for name, make in pairs(items) do
        local whole, split = make(), make(two)
        assert.are.equal(8, fan_in(whole.delayed or whole.parts[1]), name)
        assert.are.equal(2, fan_in(split.delayed or split.parts[1]), name)
        assert.are.same(lask.compute(whole), lask.compute(split), name)
        assert.matches("bag%.%a+: unknown option 'split_evry'", errmsg(make,
                       {split_evry = 2}))
        assert.matches("bag%.%a+: split_every must be a whole number",
                       errmsg(make, {split_every = 1.5}))
      end
      assert.matches("bag.frequencies: argument 1 %(sort%) must be a boolean",
                     errmsg(b.frequencies, b, 1))
      for _, k in ipairs{0 / 0, 2.5, -1} do
        assert.matches("bag.topk: argument 1 must be a whole number",
                       errmsg(b.topk, b, k))
      end
      assert.matches("bag.var: ddof must be a number",
                     errmsg(b.var, b, 0 / 0))
    end)

    it("ranks equal topk keys in the bag's order, and names mixed keys",
       function()
      local pairs_ = {}
      for i = 1, 60 do pairs_[i] = {i, i % 3} end -- keys 0, 1, 2 repeat
      local b = bag.from_sequence(pairs_, {npartitions = 7})
      local want = {}
      for i = 2, 60, 3 do want[#want + 1] = pairs_[i] end -- key 2 in order
      for i = 1, 60, 3 do want[#want + 1] = pairs_[i] end
      local got = b:topk(40, 2):compute()
      for i = 1, 40 do assert.are.equal(want[i][1], got[i][1]) end
      assert.matches("bag.topk: cannot compare a number key with a string",
        errmsg(function()
          return bag.from_sequence({1, "a"}, {npartitions = 1}):topk(1)
                   :compute()
        end))
    end)

    it("folds an empty bag only with an initial value", function()
      local e = bag.range(3, {npartitions = 3})
                  :filter(function() return false end)
      local add = function(a, x) return a + x end
      assert.matches("bag.fold: the bag is empty and fold has no initial",
                     errmsg(function() return e:fold(add):compute() end))
      assert.are.equal(0, e:fold(add, add, 0):compute())
      -- a nil from the function is not an empty bag
      assert.matches("bag.fold: the function returned nil", errmsg(function()
        return bag.range(3):fold(function() return nil end, nil, 0):compute()
      end))
    end)

    it("accumulates from the initial value, which starts the bag", function()
      local b = bag.from_sequence({1, 2, 3}, {npartitions = 3})
      local add = function(a, x) return a + x end
      assert.are.same({10, 11, 13, 16}, b:accumulate(add, 10):compute())
      assert.are.same({1, 3, 6}, b:accumulate(add):compute())
      assert.matches("bag.accumulate: the function returned nil",
        errmsg(function()
          return b:accumulate(function(_, x) if x > 1 then return nil end
                                               return x end):compute()
        end))
    end)

    it("samples the same for a seed on every interpreter, and checks p",
       function()
      local b = bag.range(10000, {npartitions = 4})
      -- the first kept elements for these seeds, on Lua 5.4 and LuaJIT
      assert.are.same({3, 8, 10, 11, 12}, b:random_sample(0.5, 2^53):take(5))
      assert.are.same({2, 3, 4, 12, 13}, b:random_sample(0.5, 1e15):take(5))
      assert.are.same({2, 3, 5, 7, 8}, b:random_sample(0.5, 1e300):take(5))
      assert.matches("argument 1 must be a probability",
                     errmsg(b.random_sample, b, 0 / 0, 1))
    end)

    it("ranges up to math.maxinteger (Lua 5.4)", function()
      if not math.maxinteger then return pending("LuaJIT has no integers") end
      local m = math.maxinteger
      assert.are.same({m - 2, m - 1, m}, bag.range(m - 2, m):compute())
      -- spans past math.maxinteger, counted as a numeric for counts them
      local lo = math.mininteger
      -- (no // here: LuaJIT parses this file too)
      local half, quarter = math.floor(m / 2), math.floor(m / 4)
      local cases = {{-half - 1, half + 1, quarter + 1}, {lo, 0, quarter},
                     {m, lo, -quarter}, {lo, m, m}, {m, lo, lo},
                     {lo, m, math.floor(m / 3)}, {5, 1, 1}, {1, 5, -1}}
      for _, c in ipairs(cases) do
        local want = {}
        for v = c[1], c[2], c[3] do want[#want + 1] = v end
        assert.are.same(want, bag.range(c[1], c[2], c[3], {npartitions = 3})
                                :compute(), table.concat(c, " "))
      end
      assert.matches("bag.range: too many numbers",
                     errmsg(bag.range, lo, m))
      assert.matches("bag.range: too many numbers",
                     errmsg(bag.range, lo, m, 2))
    end)

    it("ranges with fractional steps never past the last value", function()
      for i = 1, 200 do
        for _, step in ipairs{0.1, 0.01, 1 / 3, 0.7, -0.1} do
          local first, last = (i % 7) * 0.13, i * 0.1 + (i % 3) * 0.07
          if step < 0 then first, last = last, first end
          local got = bag.range(first, last, step, {npartitions = 1})
                        :compute()
          local n = 0
          while (step > 0 and first + n * step <= last) or
                (step < 0 and first + n * step >= last) do n = n + 1 end
          assert.are.equal(n, #got)
          if n > 0 then
            local v = got[#got]
            assert.is_true(step > 0 and v <= last or step < 0 and v >= last)
          end
        end
      end
    end)

    it("names the reduction whose own code fails on an element", function()
      local function first_line(f)
        return (errmsg(function() return f():compute() end)
                :match("raised an error:\n([^\n]*)"))
      end
      local mixed = bag.from_sequence({1, "a"}, {npartitions = 1})
      local words = bag.from_sequence({"a", "b"}, {npartitions = 2})
      local cases = {
        {"^bag%.min: attempt to compare", function() return mixed:min() end},
        {"^bag%.max: attempt to compare", function() return mixed:max() end},
        {"^bag%.topk: attempt to compare", function()
          return bag.from_sequence({{1}, {2}}):topk(1) end},
        {"^bag%.sum: attempt to ", function() return words:sum() end},
        {"^bag%.sum: attempt to ", function()
          return words:map(function(x) return x end):sum() end},
        {"^bag%.mean: attempt to ", function() return words:mean() end},
        {"^bag%.std: attempt to ", function() return words:std() end},
      }
      for _, c in ipairs(cases) do
        assert.matches(c[1], first_line(c[2]))
      end
      -- a user's own error is left as it is
      local mine = bag.from_sequence({1}):reduction(
        function() error("mine") end, function(v) return v end)
      assert.matches("^[^\n]*bag_spec%.lua:%d+: mine",
                     first_line(function() return mine end))
      assert.matches("bag.std: not enough elements",
                     errmsg(function()
                       return bag.from_sequence({1}):std(1):compute() end))
    end)

    it("flattens proxy lists the same after a C step as after Lua",
       function()
      local function proxy()
        local data = {"x", "y"}
        return setmetatable({}, {__len = function() return #data end,
                                 __index = function(_, k) return data[k] end})
      end
      local b = bag.from_sequence({1, 2}, {npartitions = 1})
      local by_map = b:map(function() return proxy() end):flatten():compute()
      local by_c = b:map_partitions(function() return {proxy(), proxy()} end)
                    :flatten():compute()
      assert.are.same(by_map, by_c)
      -- Lua 5.4's # calls __len; LuaJIT's (5.1) does not on a table
      assert.are.equal(math.type and 4 or 0, #by_c)
    end)

    it("gives its partitions as Delayed lists (to_delayed)", function()
      local b = bag.from_sequence({1, 2, 3, 4, 5}, {npartitions = 2})
                  :map(function(x) return x * 10 end)
      local parts = b:to_delayed()
      assert.are.equal(2, #parts)
      local got = {}
      for i, d in ipairs(parts) do
        assert.is_true(require("lask.delayed").is_delayed(d))
        got[i] = d:compute()
      end
      assert.are.same({{10, 20}, {30, 40, 50}}, got)
      assert.are.same({10, 20, 30, 40, 50},
                      bag.from_delayed(parts):compute())
    end)

    it("rejects bad arguments, naming the method", function()
      local b = bag.range(3)
      assert.matches("bag.map: argument 1 must be callable",
                     errmsg(b.map, b, 5))
      assert.matches("unknown option 'npartition'", errmsg(bag.range, 3,
                                                           {npartition = 2}))
      assert.matches("bag.from_sequence: argument 1 must be a list",
                     errmsg(bag.from_sequence, 5))
    end)
  end)
end

-- groupby's two shuffles: "tasks" (buckets passed in memory) and "disk"
-- (buckets written to files under lask.config's temporary_directory).
for _, sched in ipairs({"sync", "threads"}) do
  describe("bag groupby shuffles on " .. sched, function()
    local core = require "lask.core"
    local dir
    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      core.mkdirs(dir)
      lask.config.set{scheduler = sched, temporary_directory = dir}
    end)
    after_each(function()
      lask.config.reset()
      os.execute("rm -rf '" .. dir .. "'")
    end)

    -- {key, list} pairs in a canonical order (by key type, then key).
    local function canonical(groups)
      local out = sorted(groups, function(a, b)
        local ta, tb = type(a[1]), type(b[1])
        if ta ~= tb then return ta < tb end
        if ta == "boolean" then return not a[1] and b[1] end
        return a[1] < b[1]
      end)
      for i = 2, #out do -- each key in one group only
        assert.are_not.equal(out[i - 1][1], out[i][1])
      end
      return out
    end

    -- The same grouping, sequentially: groups in first-seen order.
    local function group_seq(list, kf)
      local groups, out = {}, {}
      for _, x in ipairs(list) do
        local k = kf(x)
        if not groups[k] then
          groups[k] = {}
          out[#out + 1] = {k, groups[k]}
        end
        table.insert(groups[k], x)
      end
      return out
    end

    local KEYS = {"a", "b", "c", "", "é", -3, 0, 1, 2, 7, 0.5, 1e15, true,
                  false}

    it("groups over hundreds of partitions, through bucket slices",
       function()
      -- 300 x 300 buckets: each gather reads slices of 2 buckets per split
      local list = {}
      for i = 1, 3000 do list[i] = (i * 7919) % 1009 end
      local b = bag.from_sequence(list, {npartitions = 300})
      local kf = function(x) return x % 97 end
      local expect = canonical(group_seq(list, kf))
      local got = canonical(b:groupby(kf, {shuffle = "tasks"}):compute())
      assert.are.equal(#expect, #got)
      for i, g in ipairs(expect) do
        assert.are.equal(g[1], got[i][1])
        assert.are.same(sorted(g[2]), sorted(got[i][2]))
      end
    end)

    it("shuffles, repartitions and joins 9000 partitions (LuaJIT's unpack " ..
       "limit is 8000)", function()
      local b = bag.range(9000, {npartitions = 9000})
      assert.are.equal(9000, b:repartition(2):count():compute())
      assert.are.equal(9000 * 9001 / 2, b:sum{split_every = 9000}:compute())
      for _, how in ipairs{"tasks", "disk"} do
        assert.are.equal(3, b:groupby(function(x) return x % 3 end,
                                      {npartitions = 1, shuffle = how})
                              :count():compute())
      end
      assert.are.equal(3, bag.range(3):join(b, function(x) return x end)
                            :count():compute())
    end)

    it("groups as a sequential computation does, on random input",
       function()
      math.randomseed(7)
      for _ = 1, 12 do
        local list = {}
        for i = 1, math.random(0, 400) do
          list[i] = {KEYS[math.random(1, #KEYS)], i, math.random() < 0.1 and
                     {nested = i} or ("v" .. i)}
        end
        local b = bag.from_sequence(list, {npartitions = math.random(1, 9)})
        local n = math.random(1, 7)
        local expect = canonical(group_seq(list, function(x) return x[1] end))
        local disk = b:groupby(1, {npartitions = n, shuffle = "disk"})
        local tasks = b:groupby(1, {npartitions = n, shuffle = "tasks"})
        assert.are.equal(n, disk.npartitions)
        -- within a group, elements keep their input order in both
        assert.are.same(expect, canonical(disk:compute()))
        assert.are.same(expect, canonical(tasks:compute()))
      end
    end)

    it("groups by a function and keeps closures in elements", function()
      local b = bag.range(50, {npartitions = 5}):map(function(x)
        return {x, function() return x * 2 end}
      end)
      local g = b:groupby(function(e) return e[1] % 4 == 0 end,
                          {npartitions = 3, shuffle = "disk"}):compute()
      assert.are.equal(2, #g)
      for _, kv in ipairs(g) do
        for _, e in ipairs(kv[2]) do
          assert.are.equal(kv[1], e[1] % 4 == 0)
          assert.are.equal(e[1] * 2, e[2]())
        end
      end
    end)

    it("handles empty partitions and empty bags", function()
      local b = bag.from_delayed({lask.delayed({}), lask.delayed({1, 2, 3}),
                                  lask.delayed({}), lask.delayed({2})})
      for _, shuffle in ipairs({"disk", "tasks"}) do
        local g = b:groupby(nil, {npartitions = 5, shuffle = shuffle})
        assert.are.equal(5, g.npartitions)
        assert.are.same({{1, {1}}, {2, {2, 2}}, {3, {3}}},
                        canonical(g:compute()))
        assert.are.same({}, bag.from_sequence({})
          :groupby(nil, {shuffle = shuffle}):compute())
      end
    end)

    it("leaves no file behind, and can compute again", function()
      local b = bag.range(300, {npartitions = 6})
      local g = b:groupby(function(x) return x % 10 end,
                          {npartitions = 4, shuffle = "disk"})
      local counts = g:map(function(kv) return #kv[2] end)
      assert.are.equal(300, counts:sum():compute())
      assert.are.same({}, core.glob(dir .. "/*"))
      assert.are.equal(10, #g:compute())
      assert.are.same({}, core.glob(dir .. "/*"))
      -- a compute that reads only some output partitions (take) leaves
      -- files, which the next whole compute uses and then removes
      assert.are.equal(1, #g:take(1, 1, false))
      assert.are.equal(10, #g:compute())
      assert.are.same({}, core.glob(dir .. "/*"))
      -- a failure in the user's key function leaves the run in error
      assert.matches("bad key", errmsg(function()
        return b:groupby(function() error("bad key", 0) end,
                         {shuffle = "disk"}):compute()
      end))
    end)

    it("writes one file per input partition and reads buckets from it",
       function()
      local part = {}
      for i = 1, 200 do part[i] = {i % 13, "v" .. i} end
      local kf = function(x) return x[1] end
      local sub = dir .. "/split"
      local bytes = bag.ops.shuffle_split(part, kf, 7, sub, 3)
      assert.is_true(bytes > 0)
      assert.are.same({sub .. "/3.bin"}, core.glob(sub .. "/*"))
      local seen = 0
      for j = 1, 7 do
        local b = bag.ops.shuffle_read(sub .. "/3.bin", j)
        for _, x in ipairs(b or {}) do
          assert.are.equal(j, bag.ops.key_hash(x[1]) % 7 + 1)
          seen = seen + 1
        end
      end
      assert.are.equal(200, seen)
      -- an empty partition writes nothing
      assert.are.equal(0, bag.ops.shuffle_split({}, kf, 7, sub, 4))
      assert.are.same({sub .. "/3.bin"}, core.glob(sub .. "/*"))
      -- a damaged or cut file is named, not misread
      local f = assert(io.open(sub .. "/3.bin", "r+b"))
      local size = f:seek("end")
      f:close()
      f = assert(io.open(sub .. "/3.bin", "rb"))
      local head = f:read(size - 5)
      f:close()
      f = assert(io.open(sub .. "/3.bin", "wb"))
      f:write(head)
      f:close()
      local last -- the bucket stored last is the one cut
      for j = 7, 1, -1 do
        if not last and not pcall(bag.ops.shuffle_read, sub .. "/3.bin", j)
        then last = j end
      end
      assert.is_truthy(last)
      assert.matches("the shuffle file .*3.bin is damaged or cut short",
                     errmsg(bag.ops.shuffle_read, sub .. "/3.bin", last))
      assert.matches("damaged", errmsg(bag.ops.shuffle_read, sub .. "/3.bin",
                                       1e6))
    end)

    it("counts the gathers that are done under a lock (count_up)",
       function()
      local path = dir .. "/done"
      local counts = {}
      for i = 1, 64 do
        counts[i] = lask.delayed(function(p)
          return require("lask.core").count_up(p)
        end, {pure = false})(path)
      end
      local got = {lask.compute((table.unpack or unpack)(counts))}
      table.sort(got)
      for i = 1, 64 do assert.are.equal(i, got[i]) end
      assert.matches("cannot open", errmsg(core.count_up,
                                           dir .. "/no/such/dir/done"))
    end)

    it("names the path when the directory cannot be written", function()
      local file = dir .. "/a-file"
      assert(io.open(file, "w")):close()
      local bad = file .. "/sub"
      lask.config.set{temporary_directory = bad}
      local b = bag.range(20, {npartitions = 2})
      local msg = errmsg(function()
        return b:groupby(function(x) return x % 3 end,
                         {shuffle = "disk"}):compute()
      end)
      assert.matches("bag.groupby: cannot create directory", msg, 1, true)
      assert.is_truthy(msg:find(bad, 1, true), msg)
      -- "tasks" does not touch the disk
      assert.are.equal(3, #b:groupby(function(x) return x % 3 end,
                                     {shuffle = "tasks"}):compute())
      -- with a memory_limit the default is "disk", else "tasks"
      assert.are.equal(3, #b:groupby(function(x) return x % 3 end):compute())
      lask.config.set{memory_limit = "1GB"}
      assert.is_truthy(errmsg(function()
        return b:groupby(function(x) return x % 3 end):compute()
      end):find(bad, 1, true))
      lask.config.set{memory_limit = false} -- cleared: "tasks" again
      assert.are.equal(3, #b:groupby(function(x) return x % 3 end):compute())
    end)

    it("names the file when a write fails (a full disk)", function()
      if not io.open("/dev/full", "wb") then
        pending("needs /dev/full")
        return
      end
      local link = dir .. "/full.bin"
      if not helpers.sh("ln -s /dev/full '" .. link .. "'") then
        return pending("cannot run a shell command here")
      end
      local msg = errmsg(bag.ops.shuffle_write, link, {{("x"):rep(1e5)}}, 3)
      assert.is_truthy(msg:find("cannot write the shuffle file " .. link,
                                1, true), msg)
    end)

    it("rejects a bad shuffle or npartitions", function()
      local b = bag.range(3)
      assert.matches('shuffle must be "disk" or "tasks"',
                     errmsg(b.groupby, b, nil, {shuffle = "memory"}))
      assert.matches("npartitions must be a positive integer",
                     errmsg(b.groupby, b, nil, {npartitions = 0}))
    end)
  end)
end

describe("bag text files", function()
  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    require("lask.core").mkdirs(dir)
  end)
  after_each(function()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  local function write(name, text)
    local f = assert(io.open(dir .. "/" .. name, "wb"))
    f:write(text)
    f:close()
    return dir .. "/" .. name
  end

  it("splits files on line boundaries, losing and repeating nothing",
     function()
    math.randomseed(5)
    for _ = 1, 20 do
      local lines = {}
      for i = 1, math.random(0, 40) do
        lines[i] = ("x"):rep(math.random(0, 30)) .. (math.random() < 0.2 and
                   "\r\n" or "\n")
      end
      local text = table.concat(lines)
      if math.random() < 0.5 then text = text .. "tail without newline" end
      local path = write("f.txt", text)
      local bs = math.random(1, 50)
      local got = bag.read_text(path, {blocksize = bs}):compute()
      assert.are.equal(text, table.concat(got))
      local expected = {}
      for line in (text .. "\0"):gmatch("([^\n]*\n?)") do
        if line ~= "" and line ~= "\0" then
          expected[#expected + 1] = line:gsub("%z$", "")
        end
      end
      assert.are.equal(#expected, #got)
    end
  end)

  it("reads a line many blocks long once, as the word counter does",
     function()
    local long = ("word "):rep(300000) -- 1.5 MB, 366 blocks of 4096
    local path = write("long.txt", "first\n" .. long .. "\nlast")
    local b = bag.read_text(path, {blocksize = 4096})
    assert.is_true(b.npartitions > 300)
    local got = b:compute()
    assert.are.same({"first\n", long .. "\n", "last"}, got)
    local counts = {}
    for _, kv in ipairs(b.str:split():flatten():frequencies():compute()) do
      counts[kv[1]] = kv[2]
    end
    assert.are.same({first = 1, word = 300000, last = 1}, counts)
  end)

  it("reads pipes and files whose size stat does not tell; refuses devices",
     function()
    local f = io.open("/proc/self/mounts", "r")
    if f then
      local n = 0
      for _ in f:lines() do n = n + 1 end
      f:close()
      assert.is_true(n > 1)
      -- stat gives /proc files size 0: they are read to their end
      assert.are.equal(n, bag.read_text("/proc/self/mounts"):count():compute())
    end
    assert.are.same({}, bag.read_text(write("empty.txt", "")):compute())
    if helpers.sh("mkfifo '" .. dir .. "/fifo' 2>/dev/null") then
      os.execute("(printf 'a\\nb\\nc' > '" .. dir .. "/fifo') &")
      assert.are.same({"a\n", "b\n", "c"},
                      bag.read_text(dir .. "/fifo"):compute())
    end
    assert.matches("cannot read /dev/zero: not a regular file or a pipe",
                   errmsg(bag.read_text, "/dev/zero"))
    assert.matches("cannot read " .. dir .. ": it is a directory",
                   errmsg(bag.read_text, dir))
    assert.matches("a path with a NUL byte", errmsg(bag.read_text,
                                                    dir .. "/a\0b"))
  end)

  it("keeps unicode and binary bytes, and CRLF as data", function()
    local text = "héllo wörld ✓\n\0\1\255 binary\r\nend"
    local path = write("u.txt", text)
    local got = bag.read_text(path, {blocksize = 7}):compute()
    assert.are.same({"héllo wörld ✓\n", "\0\1\255 binary\r\n", "end"}, got)
  end)

  it("reads globs and lists, and gzip files whole", function()
    write("a.txt", "1\n2\n")
    write("b.txt", "3\n")
    local b = bag.read_text(dir .. "/*.txt")
    assert.are.same({"1\n", "2\n", "3\n"}, b:compute())
    assert.are.equal(2, bag.read_text({dir .. "/a.txt", dir .. "/b.txt"})
                        .npartitions)
    write("c.txt", "gz line 1\ngz line 2")
    if helpers.sh("gzip '" .. dir .. "/c.txt'") then
      assert.are.same({"gz line 1\n", "gz line 2"},
                      bag.read_text(dir .. "/c.txt.gz"):compute())
    end
  end)

  it("refuses a truncated gzip file", function()
    local lines = {}
    for i = 1, 20000 do lines[i] = tostring(i * 7919) end
    write("big.txt", table.concat(lines, "\n") .. "\n")
    if not helpers.sh("gzip '" .. dir .. "/big.txt'") then
      return pending("gzip is not installed")
    end
    local f = assert(io.open(dir .. "/big.txt.gz", "rb"))
    local bytes = f:read("a")
    f:close()
    assert.are.equal(20000, bag.read_text(dir .. "/big.txt.gz"):count()
                              :compute())
    write("cut.txt.gz", bytes:sub(1, math.floor(#bytes / 2)))
    for _, q in ipairs{function(b) return b:count() end,
                       function(b) return b.str:split():flatten()
                                     :frequencies() end} do
      assert.matches("cut.txt.gz: truncated gzip file", errmsg(function()
        return q(bag.read_text(dir .. "/cut.txt.gz")):compute()
      end))
    end
  end)

  it("refuses what is not gzip data and reads gzip members in a row",
     function()
    write("m.txt", "member 1\nmember 1 end\n")
    write("n.txt", "member 2\n")
    if not helpers.sh("gzip '" .. dir .. "/m.txt' '" .. dir .. "/n.txt'") then
      return pending("gzip is not installed")
    end
    local function bytes(name)
      local f = assert(io.open(dir .. "/" .. name, "rb"))
      local s = f:read("a")
      f:close()
      return s
    end
    local m, n = bytes("m.txt.gz"), bytes("n.txt.gz")
    write("mn.txt.gz", m .. n) -- what `cat m.gz n.gz` makes
    assert.are.same({"member 1\n", "member 1 end\n", "member 2\n"},
                    bag.read_text(dir .. "/mn.txt.gz"):compute())
    local bad = {
      ["plain.gz"] = {"plain text\nnot gzip\n", "not gzip data"},
      ["magic.gz"] = {"\30" .. m:sub(2), "not gzip data"}, -- 0x1f becomes 0x1e
      ["empty.gz"] = {"", "empty file, not gzip data"},
      ["tail.gz"] = {m .. "GARBAGE", "bytes after the gzip data"},
      ["zeros_tail.gz"] = {m .. "\0\0GARBAGE", "bytes after the gzip data"},
    }
    -- zero padding after the data is allowed, as gzip -t does
    write("padded.txt.gz", m .. ("\0"):rep(100000))
    assert.are.same({"member 1\n", "member 1 end\n"},
                    bag.read_text(dir .. "/padded.txt.gz"):compute())
    for name, case in pairs(bad) do
      write(name, case[1])
      assert.matches(name .. ": " .. case[2], errmsg(function()
        return bag.read_text(dir .. "/" .. name):count():compute()
      end), 1, true)
    end
  end)

  it("reports a write that fails (a full disk)", function()
    local f = io.open("/dev/full", "wb")
    if not f then return pending("this system has no /dev/full") end
    f:close()
    require("lask.core").mkdirs(dir .. "/full")
    if not helpers.sh("ln -s /dev/full '" .. dir .. "/full/1.txt'") then
      return pending("cannot run a shell command here")
    end
    assert.matches("cannot write .*1.txt: No space left on device",
      errmsg(function()
        return bag.from_sequence({("z"):rep(100000)}, {npartitions = 1})
          :to_textfiles(dir .. "/full/*.txt")
      end))
  end)

  it("takes byte sizes in any case, and checks memory_limit when set",
     function()
    write("m.txt", "a\nb\n")
    assert.are.same({"a\n", "b\n"},
      bag.read_text(dir .. "/m.txt", {blocksize = "1kb"}):compute())
    assert.matches("memory_limit", errmsg(lask.config.set,
      {memory_limit = "bogus"}))
    assert.matches("memory_limit", errmsg(lask.config.set,
      {memory_limit = 0.5}))
    lask.config.set{memory_limit = "64mb"}
    lask.config.reset()
  end)

  it("sizes blocks by memory_limit until it is cleared with false",
     function()
    write("big.txt", ("0123456789abcde\n"):rep(200000)) -- 3.2 MB
    lask.config.set{memory_limit = "16MB", num_workers = 2}
    assert.are.equal(4, bag.read_text(dir .. "/big.txt").npartitions)
    lask.config.set{memory_limit = false}
    assert.are.equal(1, bag.read_text(dir .. "/big.txt").npartitions)
    assert.is_false(lask.config.get("memory_limit"))
    assert.matches("or false", errmsg(lask.config.set, {memory_limit = true}))
    lask.config.reset()
  end)

  it("writes names that sort in partition order", function()
    local paths = bag.range(11, {npartitions = 11})
      :to_textfiles(dir .. "/n/*.txt")
    assert.are.equal(dir .. "/n/01.txt", paths[1])
    assert.are.equal(dir .. "/n/11.txt", paths[11])
    local back = bag.read_text(dir .. "/n/*.txt"):map(tonumber):compute()
    assert.are.same(bag.range(11):compute(), back)
  end)

  it("names missing files and empty globs", function()
    assert.matches("cannot read .*nope.txt", errmsg(bag.read_text,
                                                    dir .. "/nope.txt"))
    assert.matches("no file matches", errmsg(bag.read_text, dir .. "/*.none"))
    for _, bs in ipairs{"lots", 0.5, "0", -1, 1 / 0} do
      assert.matches("as a number of bytes", errmsg(bag.read_text,
        dir .. "/x", {blocksize = bs}))
    end
  end)

  it("writes one file per partition, creating directories", function()
    local b = bag.from_sequence({"a", "b\n", 3}, {npartitions = 2})
    local paths = b:to_textfiles(dir .. "/out/deeper/*.txt")
    assert.are.equal(2, #paths)
    assert.are.same({"a\n", "b\n", "3\n"},
                    bag.read_text(dir .. "/out/deeper/*.txt"):compute())
    -- a '*' in a directory: one directory per partition
    paths = b:to_textfiles(dir .. "/per/*/data.txt")
    assert.are.same({dir .. "/per/1/data.txt", dir .. "/per/2/data.txt"},
                    paths)
    assert.are.same({"a\n", "b\n", "3\n"},
                    bag.read_text(dir .. "/per/*/data.txt"):compute())
    assert.matches("element 1 of the partition written to .*/t/1.txt is a " ..
                   "table, not a string or number", errmsg(function()
      return bag.from_sequence({{1}, {2}}):to_textfiles(dir .. "/t/*.txt")
    end))
  end)

  it("counts words from file blocks exactly as the generic path", function()
    math.randomseed(11)
    local vocab = {"a", "bb", "a", "ccc", "é", "x\0y", ("long"):rep(5),
                   ("z"):rep(70), "\xff\xfe", "a\vb", "q\f", "sixteen-bytes-16",
                   "seventeen-bytes-1"}
    local gaps = {" ", "\t ", "  \r", "\f", " \v "}
    for _ = 1, 15 do
      local lines = {}
      for i = 1, math.random(0, 60) do
        local ws = {}
        for k = 1, math.random(0, 8) do
          ws[k] = vocab[math.random(1, #vocab)]
        end
        lines[i] = table.concat(ws, gaps[math.random(1, #gaps)]) ..
                   (math.random() < 0.3 and "\r\n" or "\n")
      end
      local text = table.concat(lines) ..
                   (math.random() < 0.5 and "last words" or "")
      local path = write("r.txt", text)
      local bs = math.random(1, 64)
      local fast = bag.read_text(path, {blocksize = bs})
                      .str:split():flatten():frequencies(true):compute()
      -- against Lua's own patterns: the six ASCII whitespace bytes
      local want, got = {}, {}
      for w in text:gmatch("[^ \t\n\v\f\r]+") do
        want[w] = (want[w] or 0) + 1
      end
      for _, kv in ipairs(fast) do got[kv[1]] = kv[2] end
      assert.are.same(want, got)
      local slow = bag.from_sequence(bag.read_text(path):compute())
                      :map(function(l) return l end)
                      .str:split():flatten():frequencies(true):compute()
      assert.are.same(slow, fast)
      local seps = bag.read_text(path, {blocksize = bs})
                      .str:split("a"):flatten():frequencies(true):compute()
      local seps_slow = bag.from_sequence(bag.read_text(path):compute())
                          .str:split("a"):flatten():frequencies(true):compute()
      assert.are.same(seps_slow, seps)
      -- distinct: the same words, in first-seen order, fast or not
      local order, seen = {}, {}
      for w in text:gmatch("[^ \t\n\v\f\r]+") do
        if not seen[w] then
          seen[w] = true
          order[#order + 1] = w
        end
      end
      for _, how in ipairs{"block", "lines", "generic"} do
        local b = bag.read_text(path, {blocksize = bs})
        if how ~= "block" then b = b:map(function(l) return l end) end
        b = b.str:split()
        if how == "generic" then b = b:map(function(t) return t end) end
        assert.are.same(order, b:flatten():distinct():compute(), how)
      end
    end
  end)

  it("ends lines with any linedelimiter, by blocks, fused and in C",
     function()
    -- gzip files are made by the gzip command (not under a sanitizer)
    local gz = helpers.sh("gzip --version >/dev/null 2>&1")
    -- each line keeps its delimiter; occurrences are found left to right
    local function lines_of(text, d)
      local out, i = {}, 1
      while i <= #text do
        local a, b = text:find(d, i, true)
        if not a then
          out[#out + 1] = text:sub(i)
          break
        end
        out[#out + 1] = text:sub(i, b)
        i = b + 1
      end
      return out
    end
    local function words(lines, sep)
      local n, order, seen = {}, {}, {}
      for _, l in ipairs(lines) do
        local list = {}
        if sep then
          local i = 1
          while true do
            local a, b = l:find(sep, i, true)
            list[#list + 1] = l:sub(i, (a or 0) - 1)
            if not a then break end
            i = b + 1
          end
        else
          for w in l:gmatch("[^ \t\n\v\f\r]+") do list[#list + 1] = w end
        end
        for _, w in ipairs(list) do
          n[w] = (n[w] or 0) + 1
          if not seen[w] then
            seen[w] = true
            order[#order + 1] = w
          end
        end
      end
      return n, order
    end
    local function as_map(pairs_)
      local m = {}
      for _, kv in ipairs(pairs_) do m[kv[1]] = kv[2] end
      return m
    end
    local alphabet = {"a", "b", "c", " ", "\n", "\r", "|", "\0"}
    -- "\n\n" and "aa" can overlap themselves: read as one block a file
    local delims = {"\n", "|", "\r\n", "ab", "\0", "abc", "\n\n", "aa",
                    " \n"}
    math.randomseed(17)
    for round = 1, 60 do
      local d = delims[(round - 1) % #delims + 1]
      local t = {}
      for i = 1, math.random(0, 120) do
        t[i] = math.random() < 0.1 and d or
               alphabet[math.random(1, #alphabet)]
      end
      local text = table.concat(t)
      local path = write("d.txt", text)
      local bs = math.random(1, 40)
      local want = lines_of(text, d)
      local opts = {blocksize = bs, linedelimiter = d}
      local why = ("round %d, delimiter %q, blocksize %d, text %q"):format(
        round, d, bs, text)
      local b = bag.read_text(path, opts)
      assert.are.same(want, b:compute(), why)
      -- the fused loop reads its block a chunk of lines at a time
      assert.are.same(want, b:map(function(l) return l end):compute(), why)
      assert.are.equal(#want, b:count():compute(), why)
      -- the words: from the block's bytes in C, and from the lines
      for _, sep in ipairs{false, "b"} do
        local n, order = words(want, sep or nil)
        local s = b.str:split(sep or nil):flatten()
        assert.are.same(n, as_map(s:frequencies():compute()), why)
        assert.are.same(order, s:distinct():compute(), why)
      end
      -- a gzip file is read whole, with the same lines
      if round % 6 == 0 and gz then
        assert.is_true(helpers.sh("gzip -kf '" .. path .. "'"))
        local g = bag.read_text(path .. ".gz", {linedelimiter = d})
        assert.are.same(want, g:compute(), why)
        assert.are.same((words(want)), as_map(g.str:split():flatten()
                                              :frequencies():compute()), why)
      end
    end
    -- long lines: delimiters across the 64 KB chunks of the reader and
    -- of gzip's inflate
    for _, d in ipairs{"\r\n", "abc", "\n"} do
      local t = {("x"):rep(65535) .. d} -- d across the first 64 KB
      for i = 2, 120 do
        t[i] = ("xy"):rep(math.random(0, 3000)) .. d
      end
      local text = table.concat(t) .. "end"
      local path = write("long.txt", text)
      local want = lines_of(text, d)
      for _, bs in ipairs{65535, 65536, 70001, 4096} do
        assert.are.same(want, bag.read_text(path, {blocksize = bs,
                        linedelimiter = d}):compute(), ("%q %d"):format(d, bs))
      end
      if gz then
        assert.is_true(helpers.sh("gzip -kf '" .. path .. "'"))
        assert.are.same(want, bag.read_text(path .. ".gz",
          {linedelimiter = d}):compute(), ("%q gzip"):format(d))
      end
    end
    local p = write("e.txt", "x")
    assert.matches("linedelimiter must be a string of 1 to 255 bytes, got " ..
                   "0 bytes", errmsg(bag.read_text, p, {linedelimiter = ""}))
    assert.matches("got 256 bytes", errmsg(bag.read_text, p,
                                           {linedelimiter = ("x"):rep(256)}))
    assert.matches("got number", errmsg(bag.read_text, p,
                                        {linedelimiter = 10}))
    if not gz then
      pending("all but the gzip files passed: cannot run gzip here")
    end
  end)

  it("reads a block's lines a chunk at a time (core.next_lines)", function()
    local core = require "lask.core"
    local path = write("c.txt", "a\nbb\r\n\nccc")
    local rd, buf = core.block_lines(path, 0, 100), {}
    assert.are.equal(2, core.next_lines(rd, buf, 2))
    assert.are.same({"a\n", "bb\r\n"}, buf)
    assert.are.equal(2, core.next_lines(rd, buf, 5))
    assert.are.same({"\n", "ccc"}, buf)
    assert.are.equal(0, core.next_lines(rd, buf, 5))
    assert.are.equal(0, core.next_lines(rd, buf, 5))
    -- the second block owns the lines starting in it, as read_block says
    rd = core.block_lines(path, 3, 100)
    assert.are.equal(2, core.next_lines(rd, buf, 9))
    assert.are.same({"\n", "ccc"}, buf)
    -- a chunk stops after 1 MB, but always takes one line
    path = write("l.txt", ("x"):rep(3e6) .. "\n" .. ("y"):rep(10) .. "\n")
    rd = core.block_lines(path, 0, 4e6)
    assert.are.equal(1, core.next_lines(rd, buf, 1024))
    assert.are.equal(3e6 + 1, #buf[1])
    assert.are.equal(1, core.next_lines(rd, buf, 1024))
    assert.are.equal(("y"):rep(10) .. "\n", buf[1])
    assert.matches("at least 1", errmsg(core.next_lines, rd, buf, 0))
    assert.matches("lask.TextBlock expected",
                   errmsg(core.next_lines, {}, buf, 1))
    assert.matches("cannot open .*nope", errmsg(core.block_lines,
                                                 dir .. "/nope", 0, 10))
  end)

  it("gives a block's memory back when a streamed step fails", function()
    local function rss_mb()
      local f = io.open("/proc/self/status")
      if not f then return nil end
      local s = f:read("a")
      f:close()
      local kb = s:match("VmRSS:%s+(%d+)")
      return kb and tonumber(kb) / 1024
    end
    if not rss_mb() then return pending("needs /proc/self/status") end
    local path = write("big.txt", (("x"):rep(63) .. "\n"):rep(2 ^ 19)) -- 32 MB
    local b = bag.read_text(path, {blocksize = false})
    local before = rss_mb()
    for _ = 1, 10 do
      assert.matches("boom", errmsg(function()
        return b:map(function() error("boom") end):count()
                :compute{scheduler = "sync"}
      end))
    end
    -- each failed run would keep its 32 MB block until a collection
    local grown = rss_mb() - before
    assert.is_true(grown < 100, ("RSS grew by %.0f MB"):format(grown))
  end)

  it("streams a block's lines through fused steps as the list path would",
     function()
    -- more than one chunk of lines (1024) and of bytes (1 MB) per block,
    -- CRLF, empty lines, a last line without "\n", and a gzip file
    math.randomseed(17)
    local lines = {}
    for i = 1, 3000 do
      local r = math.random()
      lines[i] = r < 0.05 and "\n" or r < 0.1 and "é ✓ \0 x\r\n" or
                 ("w%d "):format(math.random(1, 50)):rep(math.random(1, 9)) ..
                 "\n"
    end
    lines[1500] = ("long "):rep(300000) .. "\n" -- 1.5 MB: a chunk alone
    local text = table.concat(lines) .. "tail w1"
    write("s.txt", text)
    local gz = helpers.sh("cp '" .. dir .. "/s.txt' '" .. dir ..
                          "/t.txt' && gzip '" .. dir .. "/t.txt'")
    local words = function(line)
      local t = {}
      for w in line:gmatch("%S+") do t[#t + 1] = w end
      return t
    end
    local want, nwords, nlong = {}, 0, 0
    for _, l in ipairs(lines) do
      for _, w in ipairs(words(l)) do want[w] = (want[w] or 0) + 1 end
      nwords = nwords + #words(l)
      if #l > 40 then nlong = nlong + 1 end
    end
    want.tail, want.w1 = 1, (want.w1 or 0) + 1
    nwords = nwords + 2
    for _, sched in ipairs({"sync", "threads"}) do
      lask.config.set{scheduler = sched}
      for _, bs in ipairs({false, 5000, 700000}) do
        local b = bag.read_text(dir .. "/s.txt", {blocksize = bs})
        assert.are.same(lines, (function()
          local got = b:map(function(l) return l end):compute()
          assert.are.equal("tail w1", table.remove(got))
          return got
        end)())
        local freq = {}
        for _, kv in ipairs(b:map(words):flatten():frequencies():compute()) do
          freq[kv[1]] = kv[2]
        end
        assert.are.same(want, freq)
        assert.are.equal(nwords, b:map(words):flatten():count():compute())
        assert.are.equal(nlong, b:filter(function(l) return #l > 40 end)
                                 :count():compute())
        assert.are.equal(#text, b:map(function(l) return #l end):sum()
                                  :compute())
        if gz then -- a gzip file is read whole, beside the streamed one
          local both = bag.read_text({dir .. "/s.txt", dir .. "/t.txt.gz"},
                                     {blocksize = bs})
          assert.are.equal(2 * nwords, both:map(words):flatten():count()
                                            :compute())
        end
      end
      local msg = errmsg(function()
        bag.read_text(dir .. "/s.txt", {blocksize = 5000}):map(function(l)
          if l:find("long long") then error("no long lines here") end
          return l
        end):compute()
      end)
      assert.matches("no long lines here", msg)
    end
    lask.config.reset()
  end)

  it("counts words with the C string helpers", function()
    write("w.txt", "the cat\nThe dog the end\n")
    local top = bag.read_text(dir .. "/w.txt", {blocksize = 4})
      .str:lower().str:split():flatten():frequencies():topk(2, 2):compute()
    assert.are.same({"the", 3}, top[1])
    assert.are.equal(1, top[2][2]) -- a tie: cat, dog or end
    assert.is_truthy(({cat = true, dog = true, ["end"] = true})[top[2][1]])
  end)
end)

describe("bag memory", function()
  -- Counts the words of dir/c*.txt in a child under a 24 MB limit on 2
  -- workers, then removes dir: the number of words, the peak RSS in MB,
  -- and the child's output.
  local function count_words_within_24mb(dir)
    local out = helpers.run_child(table.concat{
      'local lask = require "lask"\n',
      'local bag = require "lask.bag"\n',
      'lask.config.set{memory_limit = "24MB", num_workers = 2}\n',
      'local f = bag.read_text("', dir, '/c*.txt")',
      '.str:split():flatten():frequencies()\n',
      'io.write(#f:compute(), " ")\n', helpers.PRINT_PEAK})
    os.execute("rm -rf '" .. dir .. "'")
    local n, peak = out:match("^(%d+)%s+([%d%.]+)")
    return n, peak, out
  end

  -- A fresh directory for a corpus, or nil (the spec then pending) when
  -- no child process can be measured.
  local function corpus_dir()
    local why = helpers.child_unavailable()
    if why then
      pending(why)
      return nil
    end
    local dir = helpers.tmp_path()
    require("lask.core").mkdirs(dir)
    return dir
  end

  it("counts words in a corpus 3x the memory limit within about the limit",
     function()
    local dir = corpus_dir()
    if not dir then return end
    -- A 1 MB chunk of words, written 72 times: a 72 MB corpus.
    local words, x = {}, 1
    for i = 1, 3000 do
      x = (x * 16807) % 2147483647
      words[i] = ("w%d"):format(x % 5000)
    end
    local line = table.concat(words, " ")
    local chunk = {}
    while #table.concat(chunk) < 1e6 do chunk[#chunk + 1] = line .. "\n" end
    chunk = table.concat(chunk)
    for f = 1, 4 do
      local out = io.open(("%s/c%d.txt"):format(dir, f), "wb")
      for _ = 1, 18 do out:write(chunk) end
      out:close()
    end
    local n, peak, out = count_words_within_24mb(dir)
    assert.is_truthy(n, out)
    assert.is_true(tonumber(n) > 1000 and tonumber(n) <= 5000, out)
    -- 72 MB read in blocks of 1.5 MB: the process stays near the limit.
    assert.is_true(tonumber(peak) < 24 * 1.5, ("peak %s MB"):format(peak))
  end)

  it("counts a 50,000-word vocabulary within the limit plus its tables",
     function()
    local dir = corpus_dir()
    if not dir then return end
    -- 6 different 1 MB chunks over 50,000 words, 72 MB in 4 files
    local x, chunks = 1, {}
    for c = 1, 6 do
      local lines, size = {}, 0
      while size < 1e6 do
        local ws = {}
        for k = 1, 12 do
          x = (x * 16807) % 2147483647
          ws[k] = "w" .. x % 50000
        end
        lines[#lines + 1] = table.concat(ws, " ") .. "\n"
        size = size + #lines[#lines]
      end
      chunks[c] = table.concat(lines)
    end
    for f = 1, 4 do
      local out = io.open(("%s/c%d.txt"):format(dir, f), "wb")
      for i = 1, 18 do out:write(chunks[(f + i) % 6 + 1]) end
      out:close()
    end
    -- what one table of the 50,000 counts takes in a Lua state
    collectgarbage()
    local before = collectgarbage("count")
    local t = {}
    for i = 0, 49999 do t["w" .. i] = i end
    local table_mb = (collectgarbage("count") - before) / 1024
    assert.are.equal(49999, t.w49999) -- (t stays alive until measured)
    local n, peak, out = count_words_within_24mb(dir)
    assert.are.equal(50000, tonumber(n), out)
    -- The blocks read keep to the limit; the counts cannot: each worker
    -- holds a merge's two tables, the partial count of a block and the
    -- collector's slack, about 4 tables on Lua 5.4 and 6 on LuaJIT (whose
    -- allocator keeps more of what is freed). Before fan-in 2, in-place
    -- merges and an earlier collector under a limit, the peak was 103 MB
    -- on Lua 5.4 and 113 MB on LuaJIT (52 and 66 MB now).
    local bound = 24 * 1.5 + 2 * (jit and 6 or 4) * table_mb
    assert.is_true(tonumber(peak) < bound,
                   ("peak %s MB, bound %.1f MB"):format(peak, bound))
  end)

  it("groups data 3x the memory limit within about the limit", function()
    local why = helpers.child_unavailable()
    if why then
      pending(why)
      return
    end
    local dir = os.tmpname()
    os.remove(dir)
    -- 500,000 strings of 100 bytes, made by the tasks: about 68 MB in Lua
    -- memory, against a 20 MB limit. The limit makes the shuffle default
    -- to "disk"; with shuffle = "tasks" every bucket is held until the last
    -- group is made, and the peak is over 300 MB.
    local out = helpers.run_child(table.concat{
      'local lask = require "lask"\n',
      'local bag = require "lask.bag"\n',
      'lask.config.set{memory_limit = "20MB", num_workers = 2, ',
      'temporary_directory = "', dir, '"}\n',
      'local b = bag.range(500000, {npartitions = 32}):map(',
      'function(x) return ("%07d"):format(x) .. ("x"):rep(93) end)\n',
      'local g = b:groupby(function(s) ',
      'return tonumber(s:sub(1, 7)) % 997 end, {npartitions = 32})\n',
      'local n = g:map(function(kv) return #kv[2] end):sum():compute()\n',
      'io.write(n, " ")\n', helpers.PRINT_PEAK})
    local left = require("lask.core").glob(dir .. "/*")
    os.execute("rm -rf '" .. dir .. "'")
    local n, peak = out:match("^(%d+)%s+([%d%.]+)")
    assert.is_truthy(n, out)
    assert.are.equal(500000, tonumber(n), out)
    assert.are.same({}, left)
    assert.is_true(tonumber(peak) < 20 * 1.5, ("peak %s MB"):format(peak))
  end)
end)
