-- Shared by the wrk scripts: per-thread seeding and a JSON summary line the Python runner parses.
-- wrk runs one Lua state per thread; `setup` (main state) hands each thread its number.
local M = {}

local thread_count = 0

function M.setup(thread)
  thread:set("tid", thread_count)
  thread_count = thread_count + 1
end

-- Environment variables configure a script: wrk passes no options of its own to Lua but `args`.
function M.env_number(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then return default end
  return tonumber(v)
end

-- One line, prefixed so the runner can find it among wrk's own report.
function M.done(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s": %d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "errors": {"connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}, "latency_us": {"mean": %.1f, "max": %d, "stdev": %.1f, ' ..
    '"percentiles": {%s}}}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.max, latency.stdev, table.concat(p, ", ")))
end

return M
