-- wrk script: every request is a distinct slash command, signed exactly as Slack signs
-- (v0 HMAC-SHA256 over "v0:{timestamp}:{body}"), so each one passes verification and
-- is admitted as new work rather than deduplicated.
-- Environment: SIGNING_SECRET, RESPONSE_URL.
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror = bit.rshift, bit.lshift, bit.ror
local tobit = bit.tobit
local byte, char, format = string.byte, string.char, string.format

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}
for i = 1, 64 do K[i] = tobit(K[i]) end
local INIT = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 }

local W = {}
local function compress(H, s, offset)
  for i = 0, 15 do
    local p = offset + i * 4
    local a, b, c, d = byte(s, p + 1, p + 4)
    W[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for i = 16, 63 do
    local w15, w2 = W[i - 15], W[i - 2]
    local s0 = bxor(ror(w15, 7), ror(w15, 18), rshift(w15, 3))
    local s1 = bxor(ror(w2, 17), ror(w2, 19), rshift(w2, 10))
    W[i] = tobit(W[i - 16] + s0 + W[i - 7] + s1)
  end
  local a, b, c, d, e, f, g, h = H[1], H[2], H[3], H[4], H[5], H[6], H[7], H[8]
  for i = 0, 63 do
    local S1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
    local ch = bxor(band(e, f), band(bnot(e), g))
    local t1 = tobit(h + S1 + ch + K[i + 1] + W[i])
    local S0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
    local maj = bxor(band(a, b), band(a, c), band(b, c))
    local t2 = tobit(S0 + maj)
    h, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + t2)
  end
  H[1], H[2], H[3], H[4] = tobit(H[1] + a), tobit(H[2] + b), tobit(H[3] + c), tobit(H[4] + d)
  H[5], H[6], H[7], H[8] = tobit(H[5] + e), tobit(H[6] + f), tobit(H[7] + g), tobit(H[8] + h)
end

local function be32(n)
  return char(band(rshift(n, 24), 255), band(rshift(n, 16), 255), band(rshift(n, 8), 255), band(n, 255))
end

-- Hashes `msg` continuing from state H0 that already absorbed `prefix_len` bytes.
local function finish(H0, prefix_len, msg)
  local H = { H0[1], H0[2], H0[3], H0[4], H0[5], H0[6], H0[7], H0[8] }
  local total = prefix_len + #msg
  local pad = 64 - ((total + 9) % 64)
  if pad == 64 then pad = 0 end
  local bits = total * 8
  local data = msg .. "\128" .. string.rep("\0", pad) .. be32(math.floor(bits / 4294967296)) .. be32(bits % 4294967296)
  for off = 0, #data - 1, 64 do compress(H, data, off) end
  local out = {}
  for i = 1, 8 do out[i] = be32(H[i]) end
  return table.concat(out)
end

local function keyed_state(key, pad_byte)
  local padded = {}
  for i = 1, 64 do
    local k = i <= #key and byte(key, i) or 0
    padded[i] = char(bxor(k, pad_byte))
  end
  local H = { INIT[1], INIT[2], INIT[3], INIT[4], INIT[5], INIT[6], INIT[7], INIT[8] }
  for i = 1, 8 do H[i] = tobit(H[i]) end
  compress(H, table.concat(padded), 0)
  return H
end

local secret = os.getenv("SIGNING_SECRET") or "bench-secret"
local inner, outer = keyed_state(secret, 0x36), keyed_state(secret, 0x5c)

local function hmac_hex(msg)
  local digest = finish(outer, 64, finish(inner, 64, msg))
  return (digest:gsub(".", function(c) return format("%02x", byte(c)) end))
end

local response_url = os.getenv("RESPONSE_URL") or "http://127.0.0.1:9/response"
local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return format("%%%02X", byte(c)) end))
end
local encoded_response_url = urlencode(response_url)

local counter = 0
-- setup() runs once per wrk thread in the main Lua state and gives each thread its own
-- tag (a global), so trigger ids never repeat across threads or runs.
local thread_number = 0
function setup(thread)
  thread_number = thread_number + 1
  thread:set("thread_tag", tostring(os.time()) .. "-" .. thread_number)
end

function request()
  counter = counter + 1
  local ts = tostring(os.time())
  local body = "token=bench&team_id=T0BENCH&team_domain=bench&channel_id=C0BENCH&channel_name=general" ..
    "&user_id=U0BENCH&user_name=bench&command=%2Fdeputy&text=help&api_app_id=A0BENCH&is_enterprise_install=false" ..
    "&response_url=" .. encoded_response_url ..
    "&trigger_id=" .. thread_tag .. "." .. counter .. ".bench"
  local headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Slack-Request-Timestamp"] = ts,
    ["X-Slack-Signature"] = "v0=" .. hmac_hex("v0:" .. ts .. ":" .. body),
    ["User-Agent"] = "Slackbot 1.0 (+https://api.slack.com/robots)",
  }
  return wrk.format("POST", "/slack/events", headers, body)
end

-- No response() callback: defining one makes wrk parse every reply in Lua, which would
-- make the load generator the bottleneck. wrk counts non-2xx/3xx replies itself.
function done(summary, latency, requests)
  io.write(format("RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f errors_status=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
