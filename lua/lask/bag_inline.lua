--- Inlining of small user functions into the fused loops of bag
-- pipelines, on Lua 5.4 (LuaJIT's compiler inlines the calls itself).
--
-- A map, filter or remove function with no upvalues and no varargs whose
-- whole body is `return <expression>` goes into the loop as its
-- expression, its parameters bound as locals around it: per element the
-- loop makes no call. The expression's text is read from the function's
-- source (its file, or the string it was loaded from, as debug.getinfo
-- names it) and used only when the text compiles to the very bytecode of
-- the function itself (string.dump, stripped, line numbers included): a
-- file changed since, a stripped function or a text this reader does not
-- follow leaves the call in place. An error raised in an inlined
-- expression is reported at the user's source and line, as the call's
-- would have been.
-- Dependencies: none.
-- @module lask.bag_inline
local M = {}

M.enabled = type(jit) ~= "table"

local MAX_CACHE = 256
local by_dump, cached = {}, 0 -- string.dump(f) -> info or false

-- The position after the line break at or after 'pos' in 'text' (Lua's
-- lexer ends a line with \n, \r, \r\n or \n\r), and where that break
-- starts; nil when no break follows.
local function next_line(text, pos)
  local a = text:find("[\r\n]", pos)
  if not a then return nil end
  local c, d = text:byte(a, a + 1)
  if (d == 10 or d == 13) and d ~= c then return a + 2, a end
  return a + 1, a
end

local function count_lines(s)
  local n, pos = 0, 1
  while true do
    pos = next_line(s, pos)
    if not pos then return n end
    n = n + 1
  end
end

-- Offsets of the start of line l1 and the end of line l2 of 'text'.
local function line_span(text, l1, l2)
  local line, pos, start = 1, 1, nil
  while true do
    if line == l1 then start = pos end
    local nxt, brk = next_line(text, pos)
    if line == l2 then return start, brk and brk - 1 or #text end
    if not nxt then return nil end
    pos, line = nxt, line + 1
  end
end

local KEYWORDS = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  KEYWORDS[w] = true
end

-- The parameter names of a list "a, b" (nil if any is not a plain name).
local function param_names(list)
  local names = {}
  if list:match("^%s*$") then return names end
  for p in (list .. ","):gmatch("%s*([^,]*),") do
    p = p:match("^(.-)%s*$")
    if not p:match("^[%a_][%w_]*$") or KEYWORDS[p] or p:match("^lask_") then
      return nil
    end
    names[#names + 1] = p
  end
  return names
end

local function source_text(source)
  local c = source:sub(1, 1)
  if c == "=" then return nil end
  if c ~= "@" then return source end
  local f = io.open(source:sub(2), "rb")
  if not f then return nil end
  local t = f:read("a")
  f:close()
  return t
end

-- Runs chunk (a candidate text's "return function ... end"), which must
-- only make the function: a candidate that runs past the function's own
-- end could hold anything that follows it on its lines, so an instruction
-- count hook stops it (with an empty environment, it reaches no global).
local function make(chunk)
  local h, mask, count = debug.gethook()
  debug.sethook(function() error("inline: not a function's text", 0) end,
                "", 100)
  local ok, g = pcall(chunk)
  if h then debug.sethook(h, mask, count) else debug.sethook() end
  return ok and type(g) == "function" and g or nil
end

-- Looks in 'seg' (the text of lines l1.. of the source) for the text of a
-- function whose full dump (bytecode and debug information: every
-- instruction's line, the local names) is 'want'; returns its info or nil.
local function find(seg, l1, want, d)
  local tries, p = 0, 1
  while tries < 64 do
    local s = seg:find("%f[%w_]function%f[^%w_]", p)
    if not s then return nil end
    p = s + 8
    local name, params, after = seg:match(
      "^function(%s*[%w_%.]*%s*)%(([%w_%s,]*)%)()", s)
    local names = params and param_names(params)
    local expr0 = after and seg:match("^%s*return%f[^%w_]()", after)
    if names and expr0 then
      local line0 = l1 + count_lines(seg:sub(1, s - 1))
      local head = "function" .. name:gsub("[^\r\n]", "") .. "(" .. params ..
                   ")" .. seg:sub(after, expr0 - 1)
      local q = expr0
      while tries < 64 do
        local e = seg:find("%f[%w_]end%f[^%w_]", q)
        if not e then break end
        tries = tries + 1
        q = e + 3
        local expr = seg:sub(expr0, e - 1)
        local chunk = load(("\n"):rep(line0 - 1) .. "return " .. head ..
                           expr .. "end", d.source, "t", {})
        local g = chunk and make(chunk)
        -- The expression goes in the loop as "(\n<expr>)": trimmed, so
        -- that its last operation is on its last token's line, as Lua
        -- places it (and not on a line of its own); with no comment, which
        -- could hold the closing parenthesis or move that line.
        local lead = expr:match("^%s*")
        local body = expr:sub(#lead + 1):match("^(.-)%s*$")
        if g and string.dump(g) == want and not body:find("--", 1, true) and
           load("return (\n" .. body .. ")", "=inline", "t", {}) then
          return {params = names, expr = body, short = d.short_src,
                  line = line0 + count_lines(seg:sub(s, expr0 - 1) .. lead),
                  defined = d.linedefined,
                  -- a closure made by the expression keeps its parameters
                  closure = body:find("%f[%w_]function%f[^%w_]") ~= nil,
                  -- Lua 5.4 raises an integer division by zero with the pc
                  -- saved last, the call's start (the line defined)
                  saves_pc = body:find("[/%%]") ~= nil}
        end
      end
    end
  end
  return nil
end

--- What inlining 'f' takes: {params = {names}, expr = text, line = the
-- expression's first line in its source, short = the source's short
-- name, defined = the line the function starts on, closure = whether the
-- expression makes a function, saves_pc = whether it divides}; nil when f
-- is not inlined.
function M.info(f)
  if not M.enabled or type(f) ~= "function" then return nil end
  local d = debug.getinfo(f, "Su")
  if d.what ~= "Lua" or d.nups ~= 0 or d.isvararg or d.linedefined < 1 then
    return nil
  end
  local ok, dump = pcall(string.dump, f)
  if not ok then return nil end
  local r = by_dump[dump]
  if r ~= nil then return r or nil end
  r = false
  local text = source_text(d.source)
  local a, b
  if text then a, b = line_span(text, d.linedefined, d.lastlinedefined) end
  if a then r = find(text:sub(a, b), d.linedefined, dump, d) or false end
  if cached >= MAX_CACHE then by_dump, cached = {}, 0 end
  by_dump[dump], cached = r, cached + 1
  return r or nil
end

--- Replaces the markers of a generated loop's source: "\0<k>\0" (at the
-- start of a line, a closing parenthesis after it) by infos[k].expr, and
-- "\1<k>\1" (a line of its own, just before) by a statement that saves
-- the pc for an expression that divides. Returns the source and the line
-- map for remap: {first generated line, last, short name, first line}.
function M.substitute(src, infos)
  local map, pos = {}, 1
  while true do
    local a, b, c, k = src:find("([\0\1])(%d+)[\0\1]", pos)
    if not a then return src, map end
    local inf = infos[tonumber(k)]
    local g = count_lines(src:sub(1, a - 1)) + 1
    local text
    if c == "\0" then
      text = inf.expr
      map[#map + 1] = {g, g + count_lines(text), inf.short, inf.line}
    else
      text = "lask_n = #lask_e" -- OP_LEN always saves the pc
      map[#map + 1] = {g, g, inf.short, inf.defined}
    end
    src = src:sub(1, a - 1) .. text .. src:sub(b + 1)
    pos = a + #text
  end
end

--- A cache key for a loop's source with its map (two functions with the
-- same expression in different places give the same source).
function M.key(src, map)
  local t = {src}
  for _, m in ipairs(map) do t[#t + 1] = m[3] .. ":" .. m[4] end
  return table.concat(t, "\0")
end

--- An error message from the loop 'chunk' whose position falls in an
-- inlined expression, moved to the user's source and line.
function M.remap(msg, chunk, map)
  if type(msg) ~= "string" then return msg end
  local n = #chunk
  if msg:sub(1, n + 1) ~= chunk .. ":" then return msg end
  local g, rest = msg:match("^(%d+):(.*)$", n + 2)
  g = tonumber(g)
  if not g then return msg end
  for _, m in ipairs(map) do
    if g >= m[1] and g <= m[2] then
      return ("%s:%d:%s"):format(m[3], m[4] + g - m[1], rest)
    end
  end
  return msg
end

return M
