--- lask: parallel computing for Lua.
-- The top-level module: the value codec, lazy task graphs (`delayed`),
-- `compute`/`persist`/`get`, the scheduler choice and configuration.
-- Dependencies: `lask.core`, `lask.config`, `lask.delayed`, `lask.graph`,
-- `lask.sync`.
-- @module lask
local core = require "lask.core"
local config = require "lask.config"
local delayed = require "lask.delayed"
local graph = require "lask.graph"
local sync = require "lask.sync"
local unpack = table.unpack or unpack -- LuaJIT has only the global

local lask = {}

--- The library version, "X.Y.Z".
lask.version = core.version

--- The interpreter lask was built for: "Lua 5.4" or "LuaJIT 2.1".
lask.flavour = core.flavour

--- Encodes any supported Lua value (closures with upvalues included) as a
-- binary string that another Lua state, thread or process can decode.
-- @raise when the value holds something that cannot travel (a file handle,
-- a coroutine, foreign userdata); the message names the path to it.
lask.serialize = core.serialize

--- Decodes a string made by `lask.serialize`.
-- @param[opt] opts `{code = false}` refuses values that carry bytecode
-- @raise "lask: corrupt serialized value ..." for damaged input
lask.deserialize = core.deserialize

--- Registers metatable `mt` under `name`, so that tables carrying it can be
-- serialized; the receiving state must register the same name.
lask.register_metatable = core.register_metatable

lask.config = config
lask.delayed = delayed.delayed
lask.is_delayed = delayed.is_delayed

-- Callbacks run around every computation (diagnostics register here).
local callbacks = {}

--- Adds `cb` to every computation: its methods start(total),
-- task(done, total) and finish(profile), those it has, are called (profile is a list of
-- {key, start, finish, executor} when cb.wants_profile is true). Returns a
-- function that removes it.
function lask.add_callback(cb)
  callbacks[#callbacks + 1] = cb
  return function()
    for i = #callbacks, 1, -1 do
      if callbacks[i] == cb then table.remove(callbacks, i) end
    end
  end
end

local function hooks_for(opts)
  local list = {}
  for i = 1, #callbacks do list[i] = callbacks[i] end
  if config.get("progress", opts) then
    list[#list + 1] = require("lask.diagnostics").ProgressBar()
  end
  if #list == 0 then return nil end
  local wants = false
  for _, c in ipairs(list) do wants = wants or c.wants_profile == true end
  return {
    wants_profile = wants,
    start = function(n)
      for _, c in ipairs(list) do if c.start then c:start(n) end end
    end,
    task = function(d, n)
      for _, c in ipairs(list) do if c.task then c:task(d, n) end end
    end,
    finish = function(p)
      for _, c in ipairs(list) do if c.finish then c:finish(p) end end
    end,
  }
end

-- Splits lask.compute's arguments: values, then an options table if the
-- last argument is a plain, non-empty table whose keys are all options.
local function split_opts(...)
  local args = {n = select("#", ...), ...}
  local last = args[args.n]
  if args.n > 0 and type(last) == "table" and getmetatable(last) == nil and
     next(last) ~= nil then
    local all = true
    for k in pairs(last) do
      if not config.is_option(k) then all = false break end
    end
    if all then
      args[args.n] = nil
      args.n = args.n - 1
      return args, last
    end
  end
  return args, nil
end

--- Runs the graph behind the Delayed `outputs` with the configured
-- scheduler; returns their values in a list.
local function run(outputs, opts, who)
  if opts then config.check(opts, who) end
  local scheduler = config.get("scheduler", opts)
  if #outputs == 0 then return {} end
  local hooks = hooks_for(opts)
  if scheduler == "sync" then return sync.run(outputs, hooks) end
  if scheduler == "threads" then
    return require("lask.threads").run(outputs, {
      num_workers = config.get("num_workers", opts),
      optimize_graph = config.get("optimize_graph", opts),
      profile = config.get("profile", opts) or
                (hooks ~= nil and hooks.wants_profile),
    }, hooks)
  end
  return scheduler:compute_graph(outputs, opts, hooks)
end

-- The Delayed among 'args', and inside plain tables among them (one
-- level: a list or map of Delayed), in a list of outputs.
local function gather(args)
  local outputs = {}
  for i = 1, args.n do
    local a = args[i]
    if delayed.is_delayed(a) then
      outputs[#outputs + 1] = a
    elseif type(a) == "table" and getmetatable(a) == nil then
      for _, v in pairs(a) do
        if delayed.is_delayed(v) then outputs[#outputs + 1] = v end
      end
    end
  end
  return outputs
end

-- Rebuilds 'args' with each Delayed replaced by its value (same walk
-- order as gather).
local function scatter(args, values, make)
  local out, j = {}, 0
  for i = 1, args.n do
    local a = args[i]
    if delayed.is_delayed(a) then
      j = j + 1
      out[i] = make(a, values[j])
    elseif type(a) == "table" and getmetatable(a) == nil then
      local copy = {}
      for k, v in pairs(a) do
        if delayed.is_delayed(v) then
          j = j + 1
          copy[k] = make(v, values[j])
        else
          copy[k] = v
        end
      end
      out[i] = copy
    else
      out[i] = a
    end
  end
  return out
end

--- Computes Delayed values together, in one graph. A plain table among
-- the arguments (a list or map of Delayed) comes back as a table of their
-- values; other values are returned as they are.
-- @usage local a, b = lask.compute(x, y, {scheduler = "sync"})
-- @usage local list = lask.compute(list_of_delayed)
-- A lask collection (bag, array, Item): its metatable says so.
local function is_collection(a)
  local mt = getmetatable(a)
  return type(mt) == "table" and rawget(mt, "__lask_collection") == true
end

function lask.compute(...)
  local args, opts = split_opts(...)
  local values = run(gather(args), opts, "lask.compute")
  local out = scatter(args, values, function(_, v) return v end)
  for i = 1, args.n do -- collections compute themselves, in turn
    if is_collection(args[i]) then out[i] = args[i]:compute(opts) end
  end
  return unpack(out, 1, args.n)
end

--- Like compute, but returns Delayed values backed by the results (same
-- keys), so later graphs start from them.
function lask.persist(...)
  local args, opts = split_opts(...)
  local values = run(gather(args), opts, "lask.persist")
  local out = scatter(args, values, function(d, v)
    local p = delayed.delayed({v}):get(1)
    p[1] = delayed.key(d)
    return p
  end)
  for i = 1, args.n do
    if is_collection(args[i]) and args[i].persist then
      out[i] = args[i]:persist(opts)
    end
  end
  return unpack(out, 1, args.n)
end

--- Runs a raw graph (key -> literal | {fn, arg, ...}); `keys` is one key
-- or a list of keys.
function lask.get(g, keys, opts)
  local build, _ = graph.from_raw(g)
  local list = type(keys) == "table" and keys or {keys}
  local outputs = {}
  for i, k in ipairs(list) do
    if g[k] == nil then
      error(("lask.get: key '%s' is not in the graph"):format(tostring(k)), 2)
    end
    outputs[i] = build(k)
  end
  local values = run(outputs, opts, "lask.get")
  if type(keys) == "table" then return values end
  return values[1]
end

-- Quotes 's' for /bin/sh: single quotes, each ' written as '\''. (Lua's %q
-- is not shell quoting: "$(...)" would still run.)
local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Draws the graph behind Delayed `x` (or a list of them) with Graphviz;
-- the file's extension picks the format (svg, png, pdf, dot).
-- The Delayed outputs of visualize's argument: a Delayed, a collection
-- (bag, array, Item) or a list of those.
local function visual_outputs(x)
  local list = (delayed.is_delayed(x) or is_collection(x)) and {x} or x
  if type(list) ~= "table" then
    error("lask.visualize: argument 1 must be a Delayed, a collection or " ..
          "a list of them", 3)
  end
  local outputs = {}
  for i, v in ipairs(list) do
    if is_collection(v) and v.to_delayed then v = v:to_delayed() end
    if delayed.is_delayed(v) then
      outputs[#outputs + 1] = v
    elseif type(v) == "table" and getmetatable(v) == nil then
      for _, d in ipairs(v) do outputs[#outputs + 1] = d end
    else
      error(("lask.visualize: element %d is a %s, not a Delayed or a " ..
             "collection"):format(i, type(v)), 3)
    end
  end
  return outputs
end

function lask.visualize(x, filename)
  local outputs = visual_outputs(x)
  filename = filename or "graph.svg"
  local text = graph.to_dot(outputs)
  local fmt = filename:match("%.(%w+)$") or "svg"
  if fmt == "dot" then
    local f = assert(io.open(filename, "w"))
    f:write(text)
    f:close()
    return filename
  end
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(text)
  f:close()
  local cmd = ("dot -T%s -o %s %s 2>&1"):format(fmt, shell_quote(filename),
                                                 shell_quote(tmp))
  os.remove(filename)
  local p = io.popen(cmd)
  local out = p:read("*a")
  local ok, _, code = p:close()
  os.remove(tmp)
  -- LuaJIT's pipes always close with true: the file must exist to count.
  local made = io.open(filename, "r")
  if made then made:close() elseif ok == true then ok, code = false, 1 end
  if ok ~= true and (code or 1) ~= 0 or out:find("not found") then
    if out:find("not found") or code == 127 then
      error("lask.visualize: Graphviz 'dot' was not found: install " ..
            "Debian's graphviz package", 2)
    end
    error("lask.visualize: dot failed: " .. out, 2)
  end
  return filename
end

return lask
