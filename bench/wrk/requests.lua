-- Requests for wrk, from a prepared file of "token<TAB>ip<TAB>payload" lines.
--
-- wrk <url> -s requests.lua -- MODE FILE OFFSET THREADS TAG
--   MODE   "file":  POST /api/v1/complaints with payload as the JSON body and a
--                   unique Idempotency-Key;
--          "track": GET /api/v1/complaints/<payload>.
--   OFFSET where this run starts in the file, so successive runs move on to
--          fresh residents and stay under the per-resident filing limit.
--   TAG    makes Idempotency-Keys unique across runs.
-- Each resident also sends its own X-Forwarded-For address (trusted from
-- loopback by uvicorn's proxy headers, as behind a reverse proxy), so the
-- per-IP limit counts phones, not the load driver.
-- done() prints one JSON line, prefixed BENCH_JSON, for the runner.

local threads = {}
local made = 0

function setup(thread)
   thread:set("tid", made)
   made = made + 1
   table.insert(threads, thread)
end

function init(args)
   mode, offset, nthreads, tag = args[1], tonumber(args[3]), tonumber(args[4]), args[5]
   rows = {}
   for line in io.lines(args[2]) do
      local token, ip, payload = line:match("([^\t]*)\t([^\t]*)\t(.*)")
      rows[#rows + 1] = {
         headers = {
            ["Authorization"] = "Bearer " .. token,
            ["X-Forwarded-For"] = ip,
            ["Content-Type"] = "application/json",
         },
         payload = payload,
      }
   end
   counter = 0
end

function request()
   local row = rows[(offset + counter * nthreads + tid) % #rows + 1]
   counter = counter + 1
   if mode == "file" then
      row.headers["Idempotency-Key"] = tag .. "-" .. tid .. "-" .. counter
      return wrk.format("POST", "/api/v1/complaints", row.headers, row.payload)
   end
   row.headers["Idempotency-Key"] = nil
   return wrk.format("GET", "/api/v1/complaints/" .. row.payload, row.headers)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, '
         .. '"latency_us": {"mean": %.1f, "p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max))
end
