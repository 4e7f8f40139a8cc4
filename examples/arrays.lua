-- arrays.lua: a chunked array computation, checked against its closed form.
-- Run: build/lask examples/arrays.lua [n]   (n x n float64, default 4000)
--
-- x holds the values i + j (1-based row i, column j) in 500 x 500 blocks.
-- The sum of (x + x^T) / 2, of sin^2 + cos^2 (1 everywhere), the row means
-- and a blocked product with a vector all have closed forms to compare
-- with. A progress bar shows the tasks as they finish.
local lask = require "lask"
local la = require "lask.array"

local n = tonumber(arg and arg[1]) or 4000
lask.config.set{progress = true}

local i = la.arange(1, n + 1, {chunks = 500}):reshape({n, 1})
local j = la.arange(1, n + 1, {chunks = 500}):reshape({1, n})
local x = (i + j):astype("float64"):rechunk({500, 500}):persist()

local s = ((x + x:T()) / 2):sum():compute()
print(("sum of (x + x^T) / 2: %.0f (expected %.0f)"):format(s, n * n * (n + 1)))

local one = (la.sin(x) ^ 2 + la.cos(x) ^ 2):mean():compute()
print(("mean of sin^2 + cos^2: %.12f"):format(one))

local rows = x:mean{axis = 2}:compute()
print(("row 1 mean: %.1f (expected %.1f)"):format(rows:get(1), 1 + (n + 1) / 2))

local v = la.ones({n}, {chunks = 500})
local xv = x:matmul(v):compute()
print(("(x @ 1)[n]: %.0f (expected %.0f)"):format(xv:get(n), n * n + n * (n + 1) / 2))
