-- Every request a new, validly signed delivery from the prepared file (bench_tool webhooks).
-- Each wrk thread takes every n-th line so no delivery is sent twice. Optional args 3 and 4
-- (first, total) split one file between several wrk processes: this one's threads take lines
-- first, first + 1, … modulo total (P6: two processes, two instances).
dofile(os.getenv("BENCH_DIR") .. "/report.lua")
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  local file, nthreads = args[1], tonumber(args[2])
  local first, total = tonumber(args[3] or 0), tonumber(args[4] or nthreads)
  reqs, idx = {}, 0
  local i = 0
  for line in io.lines(file) do
    if i % total == first + tid then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", "/api/webhooks/clerk", {
        ["svix-id"] = id, ["svix-timestamp"] = ts, ["svix-signature"] = sig,
        ["Content-Type"] = "application/json" }, body)
    end
    i = i + 1
  end
end
function request()
  idx = idx + 1
  if idx > #reqs then
    -- Out of prepared deliveries: repeat the last (a duplicate, counted apart) and stop.
    wrk.thread:stop()
    return reqs[#reqs]
  end
  return reqs[idx]
end
