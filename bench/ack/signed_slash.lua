-- wrk script: every request is a distinct slash command, signed exactly as Slack signs
-- (v0 HMAC-SHA256 over "v0:{timestamp}:{body}"), so each one passes verification and
-- is admitted as new work rather than deduplicated.
-- Environment: SIGNING_SECRET, RESPONSE_URL.
-- The HMAC is OpenSSL's, called through LuaJIT's FFI: the load generator shares the cores
-- with the server under test, so signing must cost it as little as possible (a pure-Lua
-- SHA-256 cost about 12 µs a request and lowered every contender's ceiling).
local ffi = require("ffi")
local bit = require("bit")
ffi.cdef[[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *data, size_t data_len, unsigned char *md, unsigned int *md_len);
]]
local crypto = ffi.load("libcrypto.so.3")
local sha256 = crypto.EVP_sha256()
local digest = ffi.new("unsigned char[32]")
local digest_len = ffi.new("unsigned int[1]")
local hex_out = ffi.new("char[64]")
local hex_digits = "0123456789abcdef"
local hex_table = ffi.new("char[16]")
ffi.copy(hex_table, hex_digits, 16)
local byte, format = string.byte, string.format
local rshift, band = bit.rshift, bit.band

local secret = os.getenv("SIGNING_SECRET") or "bench-secret"

local function hmac_hex(msg)
  crypto.HMAC(sha256, secret, #secret, msg, #msg, digest, digest_len)
  for i = 0, 31 do
    local b = digest[i]
    hex_out[i * 2] = hex_table[rshift(b, 4)]
    hex_out[i * 2 + 1] = hex_table[band(b, 15)]
  end
  return ffi.string(hex_out, 64)
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
  io.write(format("RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors_status=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
