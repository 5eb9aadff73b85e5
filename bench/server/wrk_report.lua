-- POST the file named by $WRK_BODY when set (else GET); add $WRK_AUTH as a bearer token;
-- print one JSON line of results when done.
local body = os.getenv("WRK_BODY")
if body then
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  local f = assert(io.open(body, "rb"))
  wrk.body = f:read("*a")
  f:close()
end
local auth = os.getenv("WRK_AUTH")
if auth then
  wrk.headers["Authorization"] = "Bearer " .. auth
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
