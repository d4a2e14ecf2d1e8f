-- wrk script for `make bench` (bench/loadwrk.py writes the spec this reads).
-- The spec file (BENCH_WRK_SPEC) returns a table:
--   expect = HTTP status an operation must answer (anything else is an error),
--   limit  = a cycle or chain leg prints BENCH_LIMIT at `limit` answers; the bench stops wrk (SIGINT)
--            once the leg has also run its least seconds (wrk's duration is only a ceiling);
--   mode   = "cycle": send `reqs` round and round;
--            "once":  send each of `reqs` once (single-use tokens, TOTP codes); after the last answer it
--                     prints BENCH_DONE and the bench stops wrk with SIGINT (or the duration ends first);
--            "chain": POST `path` with body prefix..token..suffix; the answer's body carries the next
--                     token (Lua pattern `pattern`), which goes back into the queue (refresh with rotation),
--   reqs   = raw HTTP requests (cycle, once); tokens, path, headers, prefix, suffix, pattern (chain).
-- One wrk thread (-t 1), so the counters below are this thread's; done() prints them as JSON.
local spec = dofile(os.getenv("BENCH_WRK_SPEC"))
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, bad, sent, sample, finished = 0, 0, 0, "", false
  queue = {}
  for _, t in ipairs(spec.tokens or {}) do table.insert(queue, t) end
end

function request()
  if not primed then
    -- wrk 4.1 calls request() once per thread before any connection and discards the answer
    -- (checked by tests/test_bench_wrk.py): nothing is taken from the queue for it.
    primed = true
    return wrk.format("GET", "/")
  end
  if spec.mode == "chain" then
    local token = table.remove(queue, 1)
    if token == nil then return "" end -- every chain is in flight: this connection idles
    return wrk.format("POST", spec.path, spec.headers, spec.prefix .. token .. spec.suffix)
  end
  sent = sent + 1
  if sent > #spec.reqs then
    if spec.mode == "once" then return "" end -- an empty request: the connection idles until the stop
    sent = 1
  end
  return spec.reqs[sent]
end

function response(status, headers, body)
  if status == spec.expect then
    ok = ok + 1
  else
    bad = bad + 1
    if sample == "" then
      -- printable, JSON-safe: quotes and backslashes become ', any other control or byte a space
      sample = string.gsub(string.gsub(status .. " " .. string.sub(body or "", 1, 160), '[\\"]', "'"), "[^ -~]", " ")
    end
  end
  if spec.mode == "chain" then
    local token = body and string.match(body, spec.pattern)
    if token then table.insert(queue, token) end
  end
  if spec.mode == "once" then
    if ok + bad >= #spec.reqs and not finished then
      -- every single-use request answered: the bench interrupts wrk with SIGINT at once
      finished = true
      wrk.thread:stop()
      io.write("BENCH_DONE\n")
      io.flush()
    end
  elseif ok + bad >= spec.limit and not finished then
    -- enough answers: the bench interrupts wrk once the leg has also run its least seconds
    finished = true
    io.write("BENCH_LIMIT\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local t = threads[1]
  -- the chains' tokens not in flight at the end (those in flight are spent: the server rotated them)
  local left = {}
  for _, token in ipairs(t:get("queue") or {}) do table.insert(left, '"' .. token .. '"') end
  io.write(string.format(
    '\nBENCH_JSON {"ok": %d, "bad": %d, "sample": "%s", "durationUs": %d, "requests": %d, "connectErrors": %d, ' ..
    '"readErrors": %d, "writeErrors": %d, "timeouts": %d, "p50Us": %d, "p99Us": %d, "tokens": [%s]}\n',
    t:get("ok"), t:get("bad"), t:get("sample"), summary.duration, summary.requests, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(left, ", ")))
end
