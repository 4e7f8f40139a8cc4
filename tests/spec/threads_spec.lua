-- Specs for values crossing OS threads: many Lua states at once, each
-- decoding, running and encoding. `make tsan` runs this file under
-- ThreadSanitizer.
local lask = require "lask"
local core = require "lask.core"

describe("Lua states on several OS threads", function()
  it("run calls at once and return each call's results", function()
    local base = 1000
    local calls = {}
    for i = 1, 8 do
      calls[i] = {function(n, t)
        local s = 0
        for k = 1, n do s = s + k end
        return s + base, #t
      end, i * 1000, {i, i}}
    end
    local results = core.call_in_threads(calls)
    for i = 1, 8 do
      local n = i * 1000
      assert.are.same({n * (n + 1) / 2 + base, 2}, results[i])
    end
  end)

  it("encode and decode concurrently without sharing state", function()
    local payload = {}
    for i = 1, 2000 do payload[i] = {i, tostring(i), i / 3} end
    local calls = {}
    for i = 1, 6 do
      calls[i] = {function(data)
        local l = require "lask"
        local total = 0
        for _ = 1, 20 do
          local back = l.deserialize(l.serialize(data))
          total = total + back[#back][1]
        end
        return total
      end, payload}
    end
    for _, r in ipairs(core.call_in_threads(calls)) do
      assert.are.same({40000}, r)
    end
  end)

  it("start threads from inside a thread", function()
    local r = core.call_in_thread(function()
      local c = require "lask.core"
      return c.call_in_thread(function(x) return x * 2 end, 21)
    end)
    assert.are.equal(42, r)
  end)

  it("report which call failed and keep working afterwards", function()
    local ok, err = pcall(core.call_in_threads, {
      {function() return 1 end},
      {function() error("second call failed") end},
    })
    assert.is_false(ok)
    assert.matches("second call failed", err)
    assert.are.same({{7}}, core.call_in_threads({{function() return 7 end}}))
  end)

  it("require modules in each state from the client's package.path", function()
    local calls = {}
    for i = 1, 4 do
      calls[i] = {function()
        return require("fixtures.lask_testmod").greet("t")
      end}
    end
    for _, r in ipairs(core.call_in_threads(calls)) do
      assert.are.same({"hello, t"}, r)
    end
  end)

  it("check their arguments", function()
    assert.has_error(function() core.call_in_threads({}) end)
    assert.has_error(function() core.call_in_threads({{1}}) end)
    assert.has_error(function() core.call_in_thread(42) end)
  end)
end)
