-- wrk script for the ipt-workflow benchmarks (configured through the environment,
-- because setup() runs before init() sees any argument):
--   BENCH_MODE   "measure": POST /cases/{id}/measures over the ids in BENCH_LIST
--                "get":     GET each path in BENCH_LIST
--   BENCH_LIST   file with one case id (measure) or one path (get) per line
--   BENCH_TOKEN  bearer token (optional for get)
--   BENCH_TAG    prefix of the Idempotency-Key, unique per run (measure)
--   BENCH_DAY    measured_on, YYYY-MM-DD (measure)
--   BENCH_DELAY  milliseconds each connection waits between requests (optional)
--   BENCH_PORTS  comma-separated ports: the threads spread over them (optional)
--   BENCH_CHECK  "1": remember case id and ETag of every 2xx (measure)
--   BENCH_OUT    where done() writes its JSON summary

local mode = os.getenv("BENCH_MODE") or "get"
local token = os.getenv("BENCH_TOKEN")
local tag = os.getenv("BENCH_TAG") or "bench"
local day = os.getenv("BENCH_DAY") or "2026-01-05"
local delay_ms = tonumber(os.getenv("BENCH_DELAY") or "")
local ports = os.getenv("BENCH_PORTS")
local check = os.getenv("BENCH_CHECK") == "1"
local out = os.getenv("BENCH_OUT")

local threads = {}

function setup(thread)
   local n = #threads + 1
   thread:set("tid", n)
   if ports and ports ~= "" then
      local list = {}
      for p in string.gmatch(ports, "[^,]+") do list[#list + 1] = p end
      thread.addr = wrk.lookup("127.0.0.1", list[(n - 1) % #list + 1])[1]
   end
   threads[n] = thread
end

local items = {}
sent = 0
statuses = {}
seen = {}

function init(args)
   for line in io.lines(os.getenv("BENCH_LIST")) do
      if line ~= "" then items[#items + 1] = line end
   end
   math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
end

if delay_ms then
   function delay()
      return delay_ms
   end
end

local headers = {}
if token then headers["Authorization"] = "Bearer " .. token end

function request()
   sent = sent + 1
   local item = items[math.random(#items)]
   if mode == "measure" then
      headers["Content-Type"] = "application/json"
      headers["Idempotency-Key"] = tag .. "-" .. tid .. "-" .. sent
      local body = string.format(
         '{"instrument":"phq9","score":%d,"measured_on":"%s"}',
         math.random(0, 27), day)
      return wrk.format("POST", "/cases/" .. item .. "/measures", headers, body)
   end
   return wrk.format("GET", item, headers)
end

function response(status, hdrs, body)
   statuses[status] = (statuses[status] or 0) + 1
   if check and status >= 200 and status < 300 then
      local id = string.match(body, '"id"%s*:%s*"([0-9a-f%-]+)"')
      local etag = hdrs["etag"] or hdrs["ETag"] or ""
      seen[#seen + 1] = (id or "?") .. " " .. string.gsub(etag, '"', "")
   end
end

function done(summary, latency, requests)
   local total_statuses = {}
   local total_sent = 0
   local pairs_file = out and io.open(out .. ".pairs", "w")
   for _, thread in ipairs(threads) do
      total_sent = total_sent + (thread:get("sent") or 0)
      for code, count in pairs(thread:get("statuses") or {}) do
         total_statuses[code] = (total_statuses[code] or 0) + count
      end
      if pairs_file then
         for _, line in ipairs(thread:get("seen") or {}) do
            pairs_file:write(line, "\n")
         end
      end
   end
   if pairs_file then pairs_file:close() end
   local codes = {}
   for code, count in pairs(total_statuses) do
      codes[#codes + 1] = string.format('"%d": %d', code, count)
   end
   local e = summary.errors
   local json = string.format(
      '{"requests": %d, "sent": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
      '"timeout": %d}, "statuses": {%s}, "latency_us": {"mean": %.1f, ' ..
      '"max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}',
      summary.requests, total_sent, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout, table.concat(codes, ", "),
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9))
   if out then
      local f = io.open(out, "w")
      f:write(json, "\n")
      f:close()
   else
      io.write(json, "\n")
   end
end
