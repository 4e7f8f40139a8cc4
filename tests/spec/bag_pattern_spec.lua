-- str:match and str:gsub match Lua patterns in C (bindings/pattern.c):
-- compared here with the string library of the running interpreter on
-- random patterns and subjects, results and errors alike.
local core = require "lask.core"

-- A random pattern from the pieces patterns are made of (some of them
-- malformed on purpose).
local ITEMS = {"a", "b", ".", "%a", "%d", "%s", "%w", "%p", "%S", "%A", "%%",
  "%.", "[ab]", "[^a]", "[a-c]", "[%d_]", "[]a]", "[^]]", "[a-]", "%z", "%g",
  "%u", "%l", "%x", "%c", "%W", "\0", "\255", "é", "[%]a]", "[a%-]", "[%a-]"}
local QUANT = {"", "", "", "*", "+", "-", "?"}
local SPECIAL = {"%b()", "%bab", "%f[%w]", "%f[%s]", "%f[^a]", "%1", "()",
  "$", "^", "(", ")", "[", "%", "%b", "%f", "[a", "%2", "%0"}

local function random_pattern()
  local t = {}
  if math.random() < 0.15 then t[#t + 1] = "^" end
  local open = 0
  for _ = 1, math.random(0, 6) do
    local r = math.random()
    if r < 0.12 then
      t[#t + 1] = "("
      open = open + 1
    elseif r < 0.24 and open > 0 then
      t[#t + 1] = ")"
      open = open - 1
    elseif r < 0.32 then
      t[#t + 1] = SPECIAL[math.random(1, #SPECIAL)]
    else
      t[#t + 1] = ITEMS[math.random(1, #ITEMS)] ..
                  QUANT[math.random(1, #QUANT)]
    end
  end
  while open > 0 and math.random() < 0.8 do
    t[#t + 1] = ")"
    open = open - 1
  end
  if math.random() < 0.1 then t[#t + 1] = "$" end
  return table.concat(t)
end

local CHARS = {"a", "b", "c", " ", "1", "_", "(", ")", "\0", "\255", "é", ".",
               "%", "]", "\n", "A", "Z"}
local function random_subject()
  local t = {}
  for i = 1, math.random(0, 12) do t[i] = CHARS[math.random(1, #CHARS)] end
  return table.concat(t)
end

-- string.<f>'s first result (false for nil) or its error.
local function lua_side(f, ...)
  local ok, r = pcall(string[f], ...)
  if not ok then return false, r end
  if r == nil then r = false end
  return true, r
end

local function c_side(f, s, ...)
  local ok, r = pcall(core["str_" .. f], {s}, ...)
  if not ok then return false, r end
  return true, r[1]
end

local REPLS = {"<%0>", "%1", "x", "%%", "", "%2-%1", 7, "%a", "a%",
  {a = "A", b = false, ["1"] = 1}, false}

describe("str:match and str:gsub patterns in C", function()
  it("agree with string.match on random patterns and subjects", function()
    math.randomseed(2024)
    local errors, matches = 0, 0
    for _ = 1, 20000 do
      local p, s = random_pattern(), random_subject()
      local ok1, r1 = lua_side("match", s, p)
      local ok2, r2 = c_side("match", s, p)
      local why = ("string.match(%q, %q)"):format(s, p)
      assert.are.equal(ok1, ok2, why .. ": " .. tostring(r1) .. " / " ..
                       tostring(r2))
      if ok1 then
        assert.are.equal(r1, r2, why)
        if r1 then matches = matches + 1 end
      else
        errors = errors + 1
      end
    end
    -- the sample reaches both sides of each answer
    assert.is_true(errors > 500, "errors " .. errors)
    assert.is_true(matches > 2000, "matches " .. matches)
  end)

  it("agree with string.gsub on random patterns, subjects and repls",
     function()
    math.randomseed(99)
    local fn = function(a, b)
      if a == "b" then return nil end
      return "[" .. tostring(a) .. "|" .. tostring(b) .. "]"
    end
    for _ = 1, 20000 do
      local p, s = random_pattern(), random_subject()
      local repl = REPLS[math.random(1, #REPLS)]
      if repl == false then repl = fn end
      local n = ({nil, nil, nil, -1, 0, 1, 2})[math.random(1, 7)]
      local ok1, r1 = lua_side("gsub", s, p, repl, n)
      local ok2, r2 = c_side("gsub", s, p, repl, n)
      local why = ("string.gsub(%q, %q, %s, %s)"):format(s, p, tostring(repl),
                                                       tostring(n))
      assert.are.equal(ok1, ok2, why .. ": " .. tostring(r1) .. " / " ..
                       tostring(r2))
      if ok1 then assert.are.equal(r1, r2, why) end
    end
  end)

  it("stop at the same depth as string.match", function()
    for _, k in ipairs{150, 199, 200, 201, 300} do
      local p, s = ("a?"):rep(k), ("a"):rep(k)
      local ok1, r1 = lua_side("match", s, p)
      local ok2, r2 = c_side("match", s, p)
      assert.are.equal(ok1, ok2, k .. ": " .. tostring(r1) .. " / " ..
                       tostring(r2))
      if ok1 then assert.are.equal(r1, r2) end
    end
  end)

  it("name the helper and the pattern in errors", function()
    assert.matches("bag.str.match with pattern '%(a': unfinished capture",
                   select(2, pcall(core.str_match, {"ab"}, "(a")))
    assert.matches("bag.str.gsub with pattern 'a': invalid replacement " ..
                   "value %(a table%)", select(2, pcall(core.str_gsub, {"a"},
                   "a", function() return {} end)))
    assert.matches("bag.str.match: element 2 of a partition is a number",
                   select(2, pcall(core.str_match, {"a", 5}, "a")))
  end)

  it("gives positions, keeps false for no match, and calls repl per match",
     function()
    assert.are.same({2, false, 1}, core.str_match({"xa", "b", "a"}, "()a"))
    local calls = 0
    local out = core.str_gsub({"a-b-c", ""}, "%w", function(w)
      calls = calls + 1
      return w:upper()
    end)
    assert.are.same({"A-B-C", ""}, out)
    assert.are.equal(3, calls)
  end)
end)
