--- Diagnostics: a live progress bar and a per-task profiler, fed by the
-- callbacks every scheduler calls (lask.add_callback).
-- Dependencies: `lask`, `lask.core`.
-- @module lask.diagnostics
local core = require "lask.core"

local diag = {}

local function register(self)
  self._remove = require("lask").add_callback(self)
  return self
end

local function unregister(self)
  if self._remove then self._remove() end
  self._remove = nil
  return self
end

local ProgressBar = {}
ProgressBar.__index = ProgressBar
ProgressBar.register = register
ProgressBar.unregister = unregister

--- A progress bar drawn on `out` (default io.stdout) while a computation
-- runs: elapsed time, tasks done/total, rate. It stays quiet when `out` is
-- not a terminal, unless `force` is set.
-- @param[opt] opts {out = file, width = 30, force = false, minimum = 0}
--   minimum: draw nothing for computations shorter than this many seconds
function diag.ProgressBar(opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local self = setmetatable({out = out, width = opts.width or 30,
                             minimum = opts.minimum or 0,
                             enabled = opts.force or core.isatty(out)},
                            ProgressBar)
  return self
end

function ProgressBar:start(total)
  self.t0 = core.now()
  self.total = total
  self.last = -1
  self.drawn = false
end

function ProgressBar:draw(done, total, final)
  local elapsed = core.now() - self.t0
  if not self.enabled or elapsed < self.minimum then return end
  if not final and elapsed - self.last < 0.1 then return end
  self.last = elapsed
  local frac = total > 0 and done / total or 1
  local fill = math.floor(frac * self.width + 0.5)
  local rate = elapsed > 0.05 and ("%.0f tasks/s"):format(done / elapsed)
               or "- tasks/s"
  self.out:write(("\r[%s%s] | %3d%% | %6.1fs | %d/%d tasks | %s")
    :format(("#"):rep(fill), (" "):rep(self.width - fill),
            math.floor(frac * 100), elapsed, done, total, rate))
  self.out:flush()
  self.drawn = true
end

function ProgressBar:task(done, total)
  self:draw(done, total, false)
end

function ProgressBar:finish()
  self:draw(self.total or 0, self.total or 0, true)
  if self.drawn then
    self.out:write("\n")
    self.out:flush()
  end
end

local Profiler = {}
Profiler.__index = Profiler
Profiler.register = register
Profiler.unregister = unregister
Profiler.wants_profile = true

--- Records, for every task of every computation while registered, its
-- key, start and finish times (seconds, monotonic clock) and the executor
-- that ran it (0 for the sync scheduler), in `profiler.results`. On the
-- threads scheduler a fused chain runs as one task and is one record,
-- under the key of its last member (optimize_graph = false shows each).
function diag.Profiler()
  return setmetatable({results = {}}, Profiler)
end

function Profiler:start() end
function Profiler:task() end

function Profiler:finish(profile)
  for _, rec in ipairs(profile or {}) do
    self.results[#self.results + 1] = rec
  end
end

--- Forgets what was recorded.
function Profiler:clear()
  self.results = {}
end

return diag
