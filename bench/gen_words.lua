-- gen_words.lua DIR MB: writes about MB megabytes of text (4 files) made
-- of words drawn from a 20k-word vocabulary with a Zipf-like law, for the
-- word count benchmarks. Same bytes for the same arguments.
local dir, mb = arg[1] or "bench/data", tonumber(arg[2] or "200")
os.execute("mkdir -p '" .. dir .. "'")
local vocab = {}
local x = 12345
local function rnd() -- Park-Miller: the same on every interpreter
  x = (x * 16807) % 2147483647
  return x / 2147483647
end
for i = 1, 20000 do
  local len, w = 2 + math.floor(rnd() * 8), {}
  for j = 1, len do w[j] = string.char(97 + math.floor(rnd() * 26)) end
  vocab[i] = table.concat(w)
end
local target = mb * 1e6 / 4
for f = 1, 4 do
  local out = assert(io.open(("%s/words-%d.txt"):format(dir, f), "wb"))
  local written, lines = 0, {}
  while written < target do
    local words = {}
    for k = 1, 12 do
      words[k] = vocab[math.floor(20000 ^ rnd())] -- Zipf-like ranks
    end
    local line = table.concat(words, " ") .. "\n"
    lines[#lines + 1] = line
    written = written + #line
    if #lines == 4096 then out:write(table.concat(lines)) lines = {} end
  end
  out:write(table.concat(lines))
  out:close()
end
