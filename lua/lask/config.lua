--- Global configuration: defaults for every computation, overridable per
-- call through an options table.
-- Dependencies: none.
-- @module lask.config
local config = {}

local function cores()
  local ok, core = pcall(require, "lask.core")
  local n = ok and core.cpu_count and core.cpu_count() or 1
  return n > 0 and n or 1
end

-- name -> {check = function(v) -> ok, default = value}
-- Byte units, case-insensitive as Dask's parse_bytes ("64MB", "64mb").
local UNITS = {[""] = 1, b = 1, kb = 1e3, mb = 1e6, gb = 1e9, tb = 1e12,
               kib = 1024, mib = 1024 ^ 2, gib = 1024 ^ 3, tib = 1024 ^ 4}

--- A number of bytes from 64e6 or "64MB" / "1.5GiB" / "512kb": a whole
-- number >= 1, or nil when v is not one.
function config.bytes(v)
  local n
  if type(v) == "number" then
    n = v
  elseif type(v) == "string" then
    local num, unit = v:match("^%s*([%d%.]+)%s*(%a*)%s*$")
    local mult = unit and UNITS[unit:lower()]
    if num and tonumber(num) and mult then n = tonumber(num) * mult end
  end
  if n and n >= 1 and n < math.huge then return math.floor(n) end
  return nil
end

local schema = {
  scheduler = {
    check = function(v)
      return v == "threads" or v == "sync" or
             (type(v) == "table" and type(v.compute_graph) == "function")
    end,
    what = '"threads", "sync" or a distributed Client',
    default = "threads",
  },
  num_workers = {
    check = function(v)
      return type(v) == "number" and v >= 1 and v <= 1024 and v % 1 == 0
    end,
    what = "a whole number from 1 to 1024",
  },
  optimize_graph = {
    check = function(v) return type(v) == "boolean" end,
    what = "a boolean", default = true,
  },
  progress = {
    check = function(v) return type(v) == "boolean" end,
    what = "a boolean", default = false,
  },
  -- false: no limit (the default), so that a limit set can be cleared
  memory_limit = {
    check = function(v) return v == false or config.bytes(v) ~= nil end,
    what = 'a number of bytes, a string like "2GB" or false (no limit)',
  },
  profile = {
    check = function(v) return type(v) == "boolean" end,
    what = "a boolean", default = false,
  },
  -- Where tasks write scratch files (bag.groupby's disk shuffle): each
  -- user makes and removes its own subdirectory there.
  temporary_directory = {
    check = function(v) return type(v) == "string" and v ~= "" end,
    what = "a directory path",
    default = (os.getenv("TMPDIR") or "") ~= "" and os.getenv("TMPDIR") or
              "/tmp",
  },
}

local values = {}

--- Is `name` a known option?
function config.is_option(name)
  return schema[name] ~= nil
end

--- Checks an options table: raises on an unknown key or a bad value,
-- naming the caller `who`.
function config.check(opts, who)
  if type(opts) ~= "table" then
    error(("%s: options must be a table, got %s"):format(who, type(opts)), 3)
  end
  for k, v in pairs(opts) do
    local s = schema[k]
    if not s then
      error(("%s: unknown option '%s'"):format(who, tostring(k)), 3)
    end
    if not s.check(v) then
      error(("%s: option '%s' must be %s, got %s"):format(
        who, k, s.what, tostring(v)), 3)
    end
  end
end

--- Sets defaults: `lask.config.set{scheduler = "sync", num_workers = 4}`.
function config.set(opts)
  if type(opts) ~= "table" then
    error("lask.config.set: argument 1 must be a table of options", 2)
  end
  config.check(opts, "lask.config.set")
  for k, v in pairs(opts) do values[k] = v end
end

--- The value of option `name`: per-call `opts` first, then what
-- `config.set` stored, then the default.
function config.get(name, opts)
  if opts and opts[name] ~= nil then return opts[name] end
  if values[name] ~= nil then return values[name] end
  if name == "num_workers" then return cores() end
  return schema[name] and schema[name].default
end

--- Forgets every value given to `config.set`.
function config.reset()
  values = {}
end

return config
