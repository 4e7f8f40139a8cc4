--- The synchronous scheduler: runs a graph in the calling Lua state, one
-- task at a time, with no threads and no serialization. It is the
-- reference semantics of every other scheduler, and the one to debug with.
-- Dependencies: `lask.delayed`, `lask.graph`, `lask.core`.
-- @module lask.sync
local delayed = require "lask.delayed"
local graph = require "lask.graph"
local core = require "lask.core"
local unpack = table.unpack or unpack -- LuaJIT has only the global

local M = {}
local is_delayed = delayed.is_delayed
local NIL = {} -- stands for a nil result in the values table

-- Replaces the Delayed inside 'v' by their values, in a copy of each table
-- on the way (the caller calls it only where a Delayed is inside).
local function substitute(v, values, copies)
  if is_delayed(v) then
    local x = values[v]
    if x == NIL then return nil end
    return x
  end
  if type(v) ~= "table" or getmetatable(v) ~= nil then return v end
  if copies[v] then return copies[v] end
  local out = {}
  copies[v] = out
  for k, x in next, v do out[k] = substitute(x, values, copies) end
  return out
end

-- A failing task's message and traceback, made by the threads scheduler's
-- own message handler (lask.core.task_traceback), cut where this
-- scheduler called the task.
local task_traceback = core.task_traceback
local function cut(tb)
  return (tb:gsub("\n%s*%[C%]: in function 'xpcall'.*$", ""))
end

--- Formats a task failure the way every scheduler reports it.
function M.task_error(key, msg)
  return ("lask: task '%s' raised an error:\n%s"):format(key, tostring(msg))
end

--- Runs the tasks `outputs` need; returns their values in a list.
-- `hooks` (optional) gets start(total), task(done, total), finish().
function M.run(outputs, hooks)
  local order = graph.toposort(outputs)
  local values, consumers = {}, {}
  for _, d in ipairs(order) do
    for _, dep in ipairs(d[4]) do consumers[dep] = (consumers[dep] or 0) + 1 end
  end
  for _, d in ipairs(outputs) do consumers[d] = math.huge end
  local profile = hooks and hooks.wants_profile and {} or nil
  local now = profile and core.now
  if hooks then hooks.start(#order) end
  for done, d in ipairs(order) do
    local t0 = now and now()
    local result
    local args = d[3]
    if d[2] == nil then -- a value, copied only when a Delayed is inside
      result = args[1]
      if #d[4] > 0 then result = substitute(result, values, {}) end
    else
      local call = args
      if #d[4] > 0 then
        call = {n = args.n}
        local copies = d[6] and {} or nil
        for i = 1, args.n do
          local a = args[i]
          if copies or is_delayed(a) then
            call[i] = substitute(a, values, copies)
          else
            call[i] = a
          end
        end
      end
      local ok, res = xpcall(d[2], task_traceback, unpack(call, 1, call.n))
      if not ok then
        error(M.task_error(delayed.key(d), cut(tostring(res))), 0)
      end
      result = res
    end
    if result == nil then result = NIL end
    values[d] = result
    for _, dep in ipairs(d[4]) do -- release what nothing needs any more
      consumers[dep] = consumers[dep] - 1
      if consumers[dep] == 0 then values[dep] = nil end
    end
    if profile then
      profile[done] = {key = delayed.key(d), start = t0, finish = now(),
                       executor = 0}
    end
    if hooks then hooks.task(done, #order) end
  end
  if hooks then hooks.finish(profile) end
  local out = {}
  for i, d in ipairs(outputs) do
    local v = values[d]
    if v == NIL then v = nil end
    out[i] = v
  end
  return out
end

return M
