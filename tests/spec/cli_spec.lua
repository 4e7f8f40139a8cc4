--- Specs for the `lask` interpreter (bindings/main.c): it must behave like
-- the stock lua5.4 command, with lask built in.
-- The interpreter comes from LASK_BIN (the Makefile sets an absolute path),
-- else build/lask under the current directory. Runs under Lua 5.4 and
-- LuaJIT: exit statuses are read from the shell, not from os.execute, whose
-- results differ between the two.

local LASK = os.getenv("LASK_BIN") or (os.getenv("PWD") .. "/build/lask")

--- Quotes `s` for the POSIX shell.
local function q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Writes `text` to a new temporary file and returns its name.
local function write_temp(text, suffix)
  local name = os.tmpname()
  if suffix then
    os.remove(name)
    name = name .. suffix
  end
  local f = assert(io.open(name, "wb"))
  f:write(text)
  f:close()
  return name
end

--- Returns the contents of file `name`, then removes it.
local function slurp(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("*a")
  f:close()
  os.remove(name)
  return s
end

--- Runs the interpreter with the (already quoted) argument string
-- `opts.args`, stdin from `opts.stdin` (empty by default), in directory
-- `opts.cwd` and with `opts.env` (a shell prefix such as "X=1").
-- Returns stdout, stderr and the exit status.
local function run(opts)
  local input = write_temp(opts.stdin or "")
  local errfile = os.tmpname()
  local cmd = (opts.env or "") .. " " .. q(LASK) .. " " .. (opts.args or "")
  if opts.cwd then
    cmd = "cd " .. q(opts.cwd) .. " && " .. cmd
  end
  cmd = "(" .. cmd .. ") <" .. q(input) .. " 2>" .. q(errfile)
  local p = assert(io.popen(cmd .. '; echo "rc=$?"'))
  local out = p:read("*a")
  p:close()
  os.remove(input)
  local body, rc = out:match("^(.-)rc=(%d+)\n$")
  return body, slurp(errfile), tonumber(rc)
end

--- The lines of `out` with any REPL prompts ("> ", ">> ") removed.
local function unprompted_lines(out)
  local lines = {}
  for line in out:gmatch("([^\n]*)\n") do
    lines[#lines + 1] = (line:gsub("^[> ]*", ""))
  end
  return lines
end

--- Whether list `t` holds value `v`.
local function has(t, v)
  for _, x in ipairs(t) do
    if x == v then return true end
  end
  return false
end

describe("the lask interpreter", function()
  local script

  after_each(function()
    if script then os.remove(script) end
    script = nil
  end)

  it("has an interpreter to test", function()
    local f = io.open(LASK, "rb")
    assert.is_truthy(f, "no interpreter at " .. LASK .. " (set LASK_BIN)")
    f:close()
  end)

  it("runs a script with the 'arg' table lua5.4 builds", function()
    script = write_temp([[
      for i = -3, 3 do print(i, arg[i]) end
      print("#", #arg)
    ]])
    local out, err, rc = run{args = "-e 'x = 1' " .. q(script) .. " a 'b c'"}
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal(table.concat({
      "-3\t" .. LASK, "-2\t-e", "-1\tx = 1", "0\t" .. script, "1\ta",
      "2\tb c", "3\tnil", "#\t2", ""}, "\n"), out)
  end)

  it("passes the script's arguments as '...'", function()
    script = write_temp("print(select('#', ...), ...)")
    local out, _, rc = run{args = q(script) .. " one '' three"}
    assert.are.equal(0, rc)
    assert.are.equal("3\tone\t\tthree\n", out)
  end)

  it("stops handling options at '--'", function()
    script = write_temp("print(...)")
    local out, _, rc = run{args = "-- " .. q(script) .. " -v"}
    assert.are.equal(0, rc)
    assert.are.equal("-v\n", out) -- no banner: -v went to the script
  end)

  it("runs several -e options in order", function()
    local out, _, rc = run{args =
      "-e 'io.write(1)' -e'io.write(2)' -e 'print(3)'"}
    assert.are.equal(0, rc)
    assert.are.equal("123\n", out)
  end)

  it("requires -l modules into globals, in order with -e", function()
    local out, _, rc = run{args = "-e 'print(lask)' -l lask " ..
      "-l c=lask.core -e 'print(lask.version == c.version)'"}
    assert.are.equal(0, rc)
    assert.are.equal("nil\ntrue\n", out)
  end)

  it("finds -l modules on LUA_PATH", function()
    script = write_temp("return {answer = 42}", ".lua")
    local dir, mod = script:match("^(.*)/([%w_]+)%.lua$")
    local out, _, rc = run{env = "LUA_PATH=" .. q(dir .. "/?.lua;;"),
      args = "-l " .. mod .. " -e " .. q("print(" .. mod .. ".answer)")}
    assert.are.equal(0, rc)
    assert.are.equal("42\n", out)
  end)

  it("runs stdin as the script for '-'", function()
    local out, _, rc = run{args = "- x y",
      stdin = "print(arg[0], ...)"}
    assert.are.equal(0, rc)
    assert.are.equal("-\tx\ty\n", out)
  end)

  it("runs a script piped on stdin when given no arguments", function()
    local out, err, rc = run{stdin = "print('from' .. ' stdin')\n"}
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal("from stdin\n", out)
  end)

  it("reports an error with 'lask:', a traceback and status 1", function()
    script = write_temp([[
      local function inner() error("boom") end
      inner()
      print("not reached")
    ]])
    local out, err, rc = run{args = q(script)}
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.is_truthy(err:find("^lask: [^\n]*:1: boom\n"), err)
    assert.is_truthy(err:find("stack traceback:", 1, true), err)
    assert.is_truthy(err:find("inner", 1, true), err)
  end)

  it("fails with status 1 on an error in -e code", function()
    local _, err, rc = run{args = "-e 'error(\"bad\")' -e 'print(1)'"}
    assert.are.equal(1, rc)
    assert.is_truthy(err:find("^lask: %(command line%):1: bad"), err)
  end)

  it("prints an error object through its __tostring", function()
    local _, err, rc = run{args = "-e " .. q(
      "error(setmetatable({}, {__tostring = function() return 'OBJ' end}))")}
    assert.are.equal(1, rc)
    assert.are.equal("lask: OBJ\n", err)
  end)

  it("names a script it cannot open", function()
    local out, err, rc = run{args = "nosuch_lask_script.lua"}
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.is_truthy(
      err:find("^lask: cannot open nosuch_lask_script%.lua"), err)
  end)

  it("prints the usage for an unknown option, status 1", function()
    local out, err, rc = run{args = "-z"}
    assert.are.equal(1, rc)
    assert.are.equal("", out)
    assert.is_truthy(err:find("unrecognized option '-z'", 1, true), err)
    assert.is_truthy(err:find("usage: lask", 1, true), err)
  end)

  it("passes os.exit's status on", function()
    local _, _, rc = run{args = "-e 'os.exit(3)'"}
    assert.are.equal(3, rc)
  end)

  it("prints its version and the Lua version with -v", function()
    local version = run{args = "-e 'io.write(require(\"lask\").version)'"}
    local out, _, rc = run{args = "-v"}
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("lask " .. version, 1, true), out)
    assert.is_truthy(out:find("Lua 5%.4%.%d") or out:find("LuaJIT 2%.1"),
      out)
  end)

  it("finds the lask modules from any working directory", function()
    local out, err, rc = run{cwd = "/tmp",
      args = "-e 'print(require(\"lask\").version)'"}
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.are.equal("0.1.0\n", out)
  end)

  it("serializes values with the built-in lask module", function()
    local out, _, rc = run{args = "-e " .. q([[
      local lask = require "lask"
      local s = lask.serialize({1, 2, x = "y"})
      local t = lask.deserialize(s)
      print(type(s), t[2], t.x)]])}
    assert.are.equal(0, rc)
    assert.are.equal("string\t2\ty\n", out)
  end)

  it("runs LUA_INIT first, and ignores it with -E", function()
    local env = "env -u LUA_INIT_5_4 LUA_INIT='print(\"init\")'"
    local out = run{env = env, args = "-e 'print(1)'"}
    assert.are.equal("init\n1\n", out)
    out = run{env = env, args = "-E -e 'print(1)'"}
    assert.are.equal("1\n", out)
    script = write_temp("print('init file')")
    out = run{env = "env -u LUA_INIT_5_4 LUA_INIT=" .. q("@" .. script),
      args = "-e 'print(2)'"}
    assert.are.equal("init file\n2\n", out)
  end)

  it("evaluates expressions at the -i prompt", function()
    local out, err, rc = run{args = "-i", stdin = "1+1\nx = 5\nx * 2\n"}
    assert.are.equal("", err)
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("^lask "), out) -- -i shows the banner
    local lines = unprompted_lines(out)
    assert.is_true(has(lines, "2"), out)
    assert.is_true(has(lines, "10"), out)
  end)

  it("reads more lines while a chunk is incomplete at the prompt", function()
    local out, _, rc = run{args = "-i",
      stdin = "function f()\nreturn 3\nend\nf()\n"}
    assert.are.equal(0, rc)
    assert.is_truthy(out:find("> >> >> > ", 1, true), out) -- 2 more lines
    assert.is_true(has(unprompted_lines(out), "3"), out)
  end)

  it("goes on after an error at the prompt", function()
    local out, err, rc = run{args = "-i",
      stdin = "error('oops')\nprint('after')\n"}
    assert.are.equal(0, rc)
    assert.is_truthy(err:find("oops", 1, true), err)
    assert.is_true(has(unprompted_lines(out), "after"), out)
  end)

  it("prompts after running the script with -i", function()
    script = write_temp("y = 7")
    local out, _, rc = run{args = "-i " .. q(script), stdin = "y * 6\n"}
    assert.are.equal(0, rc)
    assert.is_true(has(unprompted_lines(out), "42"), out)
  end)

  it("reserves the worker and scheduler commands, status 2", function()
    for _, name in ipairs({"worker", "scheduler"}) do
      local out, err, rc = run{args = name}
      assert.are.equal(2, rc)
      assert.are.equal("", out)
      assert.are.equal("lask: the '" .. name ..
        "' command is not available yet (distributed scheduler)\n", err)
    end
  end)
end)
