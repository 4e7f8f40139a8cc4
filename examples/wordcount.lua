-- wordcount.lua: the top words of a text corpus, on every core.
-- Generates its own input (about 20 MB in 4 files under /tmp, or the size
-- in MB given as argument 1), then counts words with the bag API: files
-- read in blocks of lines, split and counted in C, partial counts merged
-- in a tree. A progress bar shows on a terminal.
-- Run: build/lask examples/wordcount.lua [MB]
local lask = require "lask"
local bag = require "lask.bag"
local core = require "lask.core"

local mb = tonumber(arg and arg[1]) or 20
local dir = os.tmpname()
os.remove(dir)
core.mkdirs(dir)

-- A small corpus: sentences from a fixed vocabulary, reproducible.
local vocab = {"the", "of", "and", "lua", "task", "graph", "bag", "array",
               "thread", "core", "value", "table", "closure", "worker",
               "partition", "block", "line", "word", "count", "parallel"}
local x = 7
local function rnd(n) -- Park-Miller, the same on Lua 5.4 and LuaJIT
  x = (x * 16807) % 2147483647
  return 1 + x % n
end
local function generate()
  for f = 1, 4 do
    local out = assert(io.open(("%s/part-%d.txt"):format(dir, f), "wb"))
    local size, lines = 0, {}
    while size < mb * 1e6 / 4 do
      local words = {}
      for k = 1, 10 do words[k] = vocab[rnd(rnd(#vocab))] end
      local line = table.concat(words, " ") .. "\n"
      lines[#lines + 1] = line
      size = size + #line
      if #lines == 1000 then
        assert(out:write(table.concat(lines)))
        lines = {}
      end
    end
    assert(out:write(table.concat(lines)))
    assert(out:close())
  end
end

local function count()
  local t0 = core.now()
  local top = bag.read_text(dir .. "/part-*.txt", {blocksize = "4MB"})
    .str:lower().str:split():flatten():frequencies():topk(5, 2)
    :compute{progress = true}
  print(("top words in %d MB of text (%.2f s on %d workers):"):format(
    mb, core.now() - t0, lask.config.get("num_workers")))
  for i, wc in ipairs(top) do
    print(("%d. %-10s %d"):format(i, wc[1], wc[2]))
  end
end

-- The input is removed whatever happens (a full disk, Ctrl-C).
local ok, err = pcall(function() generate() count() end)
os.execute("rm -rf '" .. dir .. "'")
if not ok then error(err, 0) end
