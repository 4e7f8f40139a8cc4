-- helpers.lua: small functions the specs share.
local helpers = {}

--- Calls f(...), which must raise; returns the error as a string.
function helpers.errmsg(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

--- Why a spec cannot run lask in a child process (no LASK_BIN, a
-- sanitizer preloaded, no /proc), for pending(); nil when it can.
function helpers.child_unavailable()
  local preload = os.getenv("LD_PRELOAD") or ""
  if not os.getenv("LASK_BIN") or preload:find("san") or
     not io.open("/proc/self/status") then
    return "needs LASK_BIN and /proc, without a sanitizer (make test)"
  end
end

--- run_child(src): runs the Lua source 'src' with the lask interpreter in a
-- child process and returns what it printed; or nil and the reason above.
function helpers.run_child(src)
  local why = helpers.child_unavailable()
  if why then return nil, why end
  local bin = os.getenv("LASK_BIN")
  local script = os.tmpname()
  local s = io.open(script, "w")
  s:write(src)
  s:close()
  local p = io.popen(bin .. " " .. script .. " 2>&1")
  local out = p:read("*a")
  p:close()
  os.remove(script)
  return out
end

--- Lua source that prints the process's peak RSS in MB.
helpers.PRINT_PEAK = 'local st = io.open("/proc/self/status"):read("*a")\n' ..
  'io.write(tonumber(st:match("VmHWM:%s*(%d+)")) / 1024, "\\n")\n'

--- Runs a shell command; true when it succeeded, on Lua 5.4 (true/nil)
-- and LuaJIT (an exit status) alike.
function helpers.sh(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

--- A fresh temporary path ending in 'suffix': os.tmpname makes (and
-- leaves) a file of the name it gives, so that file is removed first.
function helpers.tmp_path(suffix)
  local base = os.tmpname()
  os.remove(base)
  return base .. (suffix or "")
end

return helpers
