--- Task graphs as the schedulers see them: the Delayed reachable from some
-- outputs, in an order where every task comes after its dependencies; raw
-- graphs (lask.get) turned into Delayed; Graphviz output.
-- Dependencies: `lask.delayed`.
-- @module lask.graph
local delayed = require "lask.delayed"

local M = {}
local is_delayed = delayed.is_delayed

--- The Delayed that `outputs` need, dependencies first (an iterative
-- depth-first walk, so chains of any length are fine).
function M.toposort(outputs)
  local order, state = {}, {}
  for _, root in ipairs(outputs) do
    if not state[root] then
      local stack, pos, top = {root}, {1}, 1
      state[root] = 1
      while top > 0 do
        local d = stack[top]
        local deps = d[4]
        local i = pos[top]
        if i <= #deps then
          pos[top] = i + 1
          local c = deps[i]
          if not state[c] then
            state[c] = 1
            top = top + 1
            stack[top], pos[top] = c, 1
          end
        else
          state[d] = 2
          order[#order + 1] = d
          stack[top], pos[top] = nil, nil
          top = top - 1
        end
      end
    end
  end
  return order
end

-- Raw graphs: key -> literal | {fn, arg, ...}; a string argument equal to
-- a key refers to that key's result, inside nested plain tables too.
local function is_task(v)
  return type(v) == "table" and getmetatable(v) == nil and
         type(v[1]) == "function"
end

--- Turns a raw graph into a table key -> Delayed (keys kept).
--- Returns its argument (a task that renames a value in a raw graph).
function M.identity(x) return x end

function M.from_raw(graph)
  if type(graph) ~= "table" then
    error("lask.get: argument 1 must be a graph table, got " .. type(graph), 3)
  end
  local built, building = {}, {}
  local build
  local function convert(v)
    if type(v) == "string" and graph[v] ~= nil then return build(v) end
    if is_task(v) then
      local args = {n = 0}
      for i = 2, #v do args[i - 1] = convert(v[i]); args.n = i - 1 end
      return delayed.make_call(v[1], args, "task", false)
    end
    if type(v) == "table" and getmetatable(v) == nil then
      local copy = {}
      for k, x in pairs(v) do copy[k] = convert(x) end
      return copy
    end
    return v
  end
  -- The keys that value v refers to (in tasks and plain tables).
  local function deps_of(v, out)
    if type(v) == "string" then
      if graph[v] ~= nil then out[#out + 1] = v end
    elseif is_task(v) then
      for i = 2, #v do deps_of(v[i], out) end
    elseif type(v) == "table" and getmetatable(v) == nil then
      for _, x in pairs(v) do deps_of(x, out) end
    end
  end
  -- The Delayed of one key whose dependencies are all built.
  local function make(key)
    local v = graph[key]
    local d
    if is_task(v) then
      d = convert(v)
    else
      local c = convert(v)
      if is_delayed(c) then
        -- another key's value (an alias, b = "a") or the caller's own
        -- Delayed: named through a copy, the original keeps its name
        d = delayed.make_call(M.identity, {n = 1, c}, "task", false)
      else
        d = delayed.delayed(c)
        if not is_delayed(d) then d = delayed.delayed({c}):get(1) end
      end
    end
    d[1] = key
    return d
  end
  -- Depth first with a stack of its own (a chain of 100k keys would
  -- overflow the C stack through recursion), dependencies first.
  function build(root)
    if built[root] then return built[root] end
    local stack = {}
    local function push(key)
      if type(key) ~= "string" and type(key) ~= "number" then
        error(("lask.get: keys must be strings or numbers, got a %s"):format(
          type(key)), 0)
      end
      building[key] = true
      local deps = {}
      deps_of(graph[key], deps)
      stack[#stack + 1] = {key, deps, 1}
    end
    push(root)
    while #stack > 0 do
      local top = stack[#stack]
      local deps, i = top[2], top[3]
      if i <= #deps then
        top[3] = i + 1
        local k = deps[i]
        if building[k] then
          error(("lask.get: the graph has a cycle through key '%s'"):format(
            k), 0)
        end
        if not built[k] then push(k) end
      else
        stack[#stack] = nil
        built[top[1]] = make(top[1])
        building[top[1]] = nil
      end
    end
    return built[root]
  end
  return build, built
end

local function dot_escape(s)
  return (tostring(s):gsub('[\\"]', "\\%0"))
end

--- Graphviz text for the graph behind `outputs`.
function M.to_dot(outputs)
  local order = M.toposort(outputs)
  local lines = {"digraph lask {", "  rankdir=BT;",
                 '  node [fontname="Helvetica", fontsize=10];'}
  local id = {}
  for i, d in ipairs(order) do
    id[d] = "t" .. i
    local shape = d[2] and "ellipse" or "box"
    lines[#lines + 1] = ('  %s [label="%s", shape=%s];'):format(
      id[d], dot_escape(delayed.key(d)), shape)
  end
  for _, d in ipairs(order) do
    for _, dep in ipairs(d[4]) do
      lines[#lines + 1] = ("  %s -> %s;"):format(id[dep], id[d])
    end
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

return M
