-- summary.lua: a busted output handler. It prints what busted's plain
-- terminal handler prints, then one line "lua: N passed, N failed, N skipped"
-- that tools/test-all.sh sums across suites. Errors count as failures.
-- Use: busted -o tests/summary.lua tests/spec
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.plainTerminal"(options)
  busted.subscribe({"suite", "end"}, function()
    local failed = handler.failuresCount + handler.errorsCount
    io.write(("lua: %d passed, %d failed, %d skipped\n"):format(
      handler.successesCount, failed, handler.pendingsCount))
    io.flush()
    return nil, true
  end)
  return handler
end
