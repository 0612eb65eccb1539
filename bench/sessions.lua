-- wrk script: each request signs in as the next officer of WRK_SESSIONS (one "sessionid csrftoken"
-- line per officer), as a GET or a form POST with the CSRF token. WRK_LIMIT stops the run after
-- that many responses; WRK_EXPECT is the status every response must have (others are counted
-- as bad, and so are redirects whose Location lacks WRK_EXPECT_LOCATION). Prints one JSON line.
-- With WRK_LIMIT, it touches WRK_DONE_FILE when done; the bench then interrupts wrk (SIGINT).
local sessions, count, next_index = {}, 0, 0
local limit = tonumber(os.getenv("WRK_LIMIT") or "0")
local offset = tonumber(os.getenv("WRK_OFFSET") or "0")
local method = os.getenv("WRK_METHOD") or "GET"
local target = os.getenv("WRK_PATH") or "/"
local form = os.getenv("WRK_BODY") or ""
local expect = tonumber(os.getenv("WRK_EXPECT") or "200")
local expect_location = os.getenv("WRK_EXPECT_LOCATION") or ""
local done_file = os.getenv("WRK_DONE_FILE") or ""
local threads = {}
responses, bad = 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("WRK_SESSIONS")) do
    local sid, csrf = line:match("(%S+) (%S+)")
    count = count + 1
    sessions[count] = {sid, csrf}
  end
end

function request()
  local s = sessions[((next_index + offset) % count) + 1]
  next_index = next_index + 1
  local headers = {Cookie = "sessionid=" .. s[1] .. "; csrftoken=" .. s[2]}
  local body = nil
  if method == "POST" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    body = form .. "&csrfmiddlewaretoken=" .. s[2]
  end
  return wrk.format(method, target, headers, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= expect or (expect_location ~= "" and
      not string.find(headers["Location"] or "", expect_location, 1, true)) then
    bad = bad + 1
  end
  if limit > 0 and responses == limit then
    -- wrk's main thread sleeps for -d whatever the threads do: tell the bench to interrupt it.
    local marker = io.open(done_file, "w")
    marker:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, thread in ipairs(threads) do
    total_bad = total_bad + (thread:get("bad") or 0)
  end
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "bad": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, total_bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
