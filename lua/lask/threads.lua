--- The threaded scheduler: runs a graph on a pool of executor threads, each
-- with its own Lua state (bindings/engine.c). The pool is made on first use
-- and kept for the next computation; it is stopped when this Lua state
-- closes.
-- Dependencies: `lask.core`, `lask.delayed`, `lask.config`.
-- @module lask.threads
local core = require "lask.core"
local delayed = require "lask.delayed"

local M = {}

--- Runs the tasks `outputs` need; returns their values in a list (and the
-- per-task profile when opts.profile is set).
-- opts: num_workers, optimize_graph, profile. hooks: see lask.add_callback.
function M.run(outputs, opts, hooks)
  local job = core.build_job(outputs, delayed.Delayed,
                             opts.optimize_graph == false, delayed.session)
  local progress
  if hooks then
    hooks.start(core.job_size(job)) -- the clock starts before the run
    progress = function(done, total) hooks.task(done, total) end
  end
  -- With a memory budget the executors collect sooner (see run_job in
  -- bindings/engine.c).
  local limit = opts.memory_limit
  if limit == nil then limit = require("lask.config").get("memory_limit") end
  local values, profile = core.run_job(job, opts.num_workers,
                                       opts.profile, progress,
                                       limit and 125 or nil)
  if hooks then hooks.finish(profile) end
  return values, profile
end

return M
