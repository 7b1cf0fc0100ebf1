-- wrk script for B4: each thread sends its own slice of pre-signed Stripe events (one event
-- per request, never repeated), read from the file given after `--`.
-- Usage: wrk -t2 -c16 -d10s -s stripe_events.lua http://127.0.0.1:PORT -- events.tsv THREADS [delay_ms]
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  local path = args[1]
  nthreads = tonumber(args[2])
  delay_ms = tonumber(args[3] or "0")
  events = {}
  local index = 0
  for line in io.lines(path) do
    if index % nthreads == id then
      local tab = string.find(line, "\t", 1, true)
      table.insert(events, { string.sub(line, 1, tab - 1), string.sub(line, tab + 1) })
    end
    index = index + 1
  end
  next_event = 1
end

function request()
  local event = events[next_event]
  if event == nil then
    -- Out of prepared events: a duplicate would be cheaper than a real one, so stop sending.
    wrk.thread:stop()
    event = events[#events]
  end
  next_event = next_event + 1
  return wrk.format("POST", "/functions/v1/stripe-webhook",
    { ["Content-Type"] = "application/json", ["Stripe-Signature"] = event[1] }, event[2])
end

function delay()
  return delay_ms
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
