#include "http/client_beast.h"

#include <sys/socket.h>

#include <cerrno>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/encoding.h"
#include "common/threads.h"
#include "http/proxy.h"
#include "http/url.h"

namespace deputy::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace wire = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr auto kResolvedFor = std::chrono::seconds(60);  // as libcurl's DNS cache
constexpr auto kSweepEvery = std::chrono::seconds(1);
constexpr uint32_t kMaxResponseHeader = 64 * 1024;

// One connection: a TCP socket, with TLS over it when the origin is https.
class Connection {
 public:
  Connection(asio::io_context& io, std::string pool_key) : pool_key(std::move(pool_key)), socket_(io) {}

  tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  asio::ssl::stream<tcp::socket>* tls() { return tls_.get(); }
  // TLS from here on, over the connected socket (or a proxy's tunnel through it).
  asio::ssl::stream<tcp::socket>& start_tls(asio::ssl::context& context) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket>>(std::move(socket_), context);
    return *tls_;
  }
  // Runs `operation` with the stream requests and answers go through.
  template <typename Operation>
  void with_stream(Operation&& operation) {
    if (tls_) operation(*tls_);
    else operation(socket_);
  }
  beast::flat_buffer& buffer() { return buffer_; }
  void close() {
    error_code ignored;
    socket().close(ignored);
  }
  // Whether it is still fit to carry a request after sitting idle: the server has neither
  // closed it nor sent anything unasked (on TLS, most likely a close_notify). One
  // non-blocking peek, no waiting.
  bool still_open() {
    char byte;
    const ssize_t n = ::recv(socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  const std::string pool_key;
  SteadyClock::time_point keep_until;  // when it is too old to reuse
  bool carried_before = false;         // it has answered a request already

 private:
  tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<tcp::socket>> tls_;
  beast::flat_buffer buffer_;
};

enum class Stage {
  kWaiting,     // for a connection under the caps
  kConnecting,  // resolving, connecting, tunnelling, TLS
  kSending,
  kAnswering,  // the request is out; the answer is awaited
};

struct Call {
  uint64_t id = 0;
  ClientRequest request;
  Client::Done done;
  Url url;
  std::optional<Proxy> proxy;
  std::string pool_key;
  SteadyClock::time_point due;
  std::unique_ptr<asio::steady_timer> timer;  // the deadline, or the connect timeout while connecting
  std::shared_ptr<Connection> connection;
  Stage stage = Stage::kWaiting;
  bool holds_slot = false;  // counted among its host's active calls
  bool finished = false;
  bool retried = false;  // sent again on a fresh connection once already
  SteadyClock::time_point connect_started;
  std::optional<std::chrono::milliseconds> connected_after;  // on a fresh connection
  wire::request<wire::string_body> message;
  std::optional<wire::response_parser<wire::string_body>> parser;
};
using CallPtr = std::shared_ptr<Call>;

bool is_ip_address(const std::string& host) {
  error_code not_one;
  asio::ip::make_address(host, not_one);
  return !not_one;
}

bool header_is_clean(std::string_view text) {
  return std::none_of(text.begin(), text.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

// How long a server keeps an idle connection, from "Keep-Alive: timeout=5, max=100".
std::optional<std::chrono::seconds> announced_idle_timeout(std::string_view keep_alive) {
  const size_t at = keep_alive.find("timeout=");
  if (at == std::string_view::npos) return std::nullopt;
  int seconds = 0;
  for (size_t i = at + 8; i < keep_alive.size() && keep_alive[i] >= '0' && keep_alive[i] <= '9' && seconds < 100000; ++i)
    seconds = seconds * 10 + (keep_alive[i] - '0');
  if (seconds <= 0) return std::nullopt;
  return std::chrono::seconds(seconds);
}

}  // namespace

// The pool, the waiting lines and every call in flight, all on the one loop thread: none of
// this state needs a lock.
class BeastClient::Loop {
 public:
  explicit Loop(ClientOptions options);
  ~Loop();
  void start(ClientRequest request, Done done);
  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

 private:
  struct Host {
    size_t active = 0;            // calls holding or opening a connection
    std::deque<CallPtr> waiting;  // in the order they started; finished ones are skipped
    bool awaits_total = false;    // listed in hosts_awaiting_total_
  };
  struct Resolved {
    std::vector<tcp::endpoint> endpoints;
    SteadyClock::time_point until;
  };

  void add(const CallPtr& call);
  void admit(const std::string& pool_key);
  void admit_awaiting_total();
  bool close_oldest_idle();
  void begin(const CallPtr& call);
  void open(const CallPtr& call);
  void on_resolved(const CallPtr& call, const error_code& ec, const std::vector<tcp::endpoint>& endpoints);
  void on_connected(const CallPtr& call, const error_code& ec);
  void tunnel(const CallPtr& call);
  void handshake(const CallPtr& call);
  void send(const CallPtr& call);
  void on_sent(const CallPtr& call, const error_code& ec, size_t bytes);
  void read(const CallPtr& call);
  void on_header(const CallPtr& call, const error_code& ec);
  void on_read(const CallPtr& call, const error_code& ec);
  void answered(const CallPtr& call);
  // A fresh connection for a call whose kept-alive one failed while nothing of it can have
  // been acted on; false when it may not go again.
  bool try_again(const CallPtr& call, bool nothing_left);
  void arm_timer(const CallPtr& call, SteadyClock::time_point at);
  void on_timer(const CallPtr& call);
  void fail(const CallPtr& call, Reached reached, const std::string& why, bool deadline_passed = false);
  void finish(const CallPtr& call, ClientOutcome outcome, bool keep_connection);
  void pool(std::shared_ptr<Connection> connection);
  void arm_sweeper();
  void sweep();
  void shut_down();
  std::string deadline_message(const Call& call) const;

  ClientOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::ssl::context tls_context_{asio::ssl::context::tls_client};
  std::string tls_setup_error_;  // why no https call can be verified (an unreadable CA bundle)
  tcp::resolver resolver_{io_};
  asio::steady_timer sweeper_{io_};
  bool sweeping_ = false;
  bool stopping_ = false;  // no call starts any more
  std::unordered_map<std::string, Resolved> resolved_;
  std::unordered_map<std::string, Host> hosts_;
  std::deque<std::string> hosts_awaiting_total_;  // hosts with calls held back by the total cap only
  // Idle connections per pool key, oldest first.
  std::unordered_map<std::string, std::deque<std::shared_ptr<Connection>>> idle_;
  size_t idle_total_ = 0;
  size_t active_total_ = 0;
  std::unordered_map<uint64_t, CallPtr> calls_;
  uint64_t next_call_ = 1;
  std::atomic<size_t> in_flight_{0};
  std::thread thread_;
};

BeastClient::Loop::Loop(ClientOptions options) : options_(std::move(options)), work_(io_.get_executor()) {
  tls_context_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                           asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  tls_context_.set_verify_mode(asio::ssl::verify_peer);
  // An idle pooled connection gives its TLS buffers back (about 34 KB each).
  SSL_CTX_set_mode(tls_context_.native_handle(), SSL_MODE_RELEASE_BUFFERS);
  error_code ec;
  if (!options_.ca_file.empty()) {
    tls_context_.load_verify_file(options_.ca_file, ec);
    if (ec) tls_setup_error_ = "the CA bundle " + options_.ca_file + " cannot be read (" + ec.message() + ")";
  } else {
    tls_context_.set_default_verify_paths(ec);
    if (ec) tls_setup_error_ = "the system's CA store cannot be read (" + ec.message() + ")";
  }
  thread_ = std::thread([this] {
    name_this_thread("deputy-http-out");
    if (options_.nice > 0) {
      if (Status s = lower_this_thread_priority(options_.nice); !s.ok())
        spdlog::warn("the outbound HTTP thread keeps the process's CPU priority: {}", s.message());
    }
    io_.run();
  });
}

BeastClient::Loop::~Loop() {
  asio::post(io_, [this] { shut_down(); });
  thread_.join();
}

void BeastClient::Loop::shut_down() {
  stopping_ = true;
  std::vector<CallPtr> stopped;
  stopped.reserve(calls_.size());
  for (auto& [id, call] : calls_) stopped.push_back(call);
  for (auto& call : stopped) {
    const bool left = call->stage == Stage::kSending || call->stage == Stage::kAnswering;
    fail(call, left ? Reached::kMaybeSent : Reached::kNotSent, "the client stopped");
  }
  for (auto& [key, connections] : idle_)
    for (auto& connection : connections) connection->close();
  idle_.clear();
  hosts_.clear();
  sweeper_.cancel();
  resolver_.cancel();
  work_.reset();
  io_.stop();
}

void BeastClient::Loop::start(ClientRequest request, Done done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  auto call = std::make_shared<Call>();
  call->due = SteadyClock::now() + request.timeout;
  call->request = std::move(request);
  call->done = std::move(done);
  asio::post(io_, [this, call = std::move(call)] { add(call); });
}

void BeastClient::Loop::add(const CallPtr& call) {
  call->id = next_call_++;
  call->timer = std::make_unique<asio::steady_timer>(io_);
  calls_.emplace(call->id, call);
  ClientRequest& r = call->request;
  auto url = parse_url(r.url);
  if (!url) return fail(call, Reached::kNotSent, "its URL cannot be used: " + url.status().message());
  call->url = std::move(*url);
  auto proxy = proxy_for(call->url, ProxySettings::from_environment());
  if (!proxy) return fail(call, Reached::kNotSent, proxy.status().message());
  call->proxy = std::move(*proxy);
  if (call->url.tls() && !tls_setup_error_.empty()) return fail(call, Reached::kNotSent, tls_setup_error_);
  for (const auto& [name, value] : r.headers) {
    if (!header_is_clean(name) || !header_is_clean(value)) return fail(call, Reached::kNotSent, "a header has a line break in it");
  }

  const bool absolute_target = call->proxy && !call->url.tls();  // a plain request through a proxy names the whole URL
  wire::request<wire::string_body>& m = call->message;
  m.version(11);
  m.method_string(r.method);
  m.target(absolute_target ? call->url.origin() + call->url.target : call->url.target);
  m.set(wire::field::host, call->url.authority());
  m.set(wire::field::user_agent, options_.user_agent);
  for (const auto& [name, value] : r.headers) {
    if (equal_ignoring_ascii_case(name, "host") || equal_ignoring_ascii_case(name, "content-length")) continue;
    m.insert(name, value);
  }
  if (absolute_target && !call->proxy->authorization.empty()) m.set(wire::field::proxy_authorization, call->proxy->authorization);
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") m.content_length(r.body.size());
  m.body() = std::move(r.body);

  call->pool_key = call->url.origin();
  if (call->proxy) call->pool_key += " via " + call->proxy->host + ":" + std::to_string(call->proxy->port) + " " + call->proxy->authorization;
  arm_timer(call, call->due);
  hosts_[call->pool_key].waiting.push_back(call);
  admit(call->pool_key);
}

// Starts the host's waiting calls while both caps leave room.
void BeastClient::Loop::admit(const std::string& pool_key) {
  auto found = hosts_.find(pool_key);
  if (found == hosts_.end() || stopping_) return;
  Host& host = found->second;
  const auto per_host = static_cast<size_t>(std::max(1L, options_.max_connections_per_host));
  const auto total = static_cast<size_t>(std::max(1L, options_.max_connections));
  std::vector<CallPtr> starting;
  while (!host.waiting.empty() && host.active < per_host) {
    CallPtr call = host.waiting.front();
    if (call->finished) {
      host.waiting.pop_front();
      continue;
    }
    auto idle = idle_.find(pool_key);
    const bool has_idle = idle != idle_.end() && !idle->second.empty();
    if (!has_idle && active_total_ + idle_total_ >= total && !close_oldest_idle()) {
      if (!host.awaits_total) {
        host.awaits_total = true;
        hosts_awaiting_total_.push_back(pool_key);
      }
      break;
    }
    host.waiting.pop_front();
    ++host.active;
    ++active_total_;
    call->holds_slot = true;
    starting.push_back(std::move(call));
  }
  if (host.active == 0 && host.waiting.empty() && !host.awaits_total) hosts_.erase(found);
  for (const auto& call : starting) begin(call);
}

// A slot under the total cap came free: hosts held back by it go first, in turn.
void BeastClient::Loop::admit_awaiting_total() {
  const auto total = static_cast<size_t>(std::max(1L, options_.max_connections));
  // Idle connections give way to a waiting call, so only the busy ones count here.
  while (!hosts_awaiting_total_.empty() && active_total_ < total && !stopping_) {
    std::string key = std::move(hosts_awaiting_total_.front());
    hosts_awaiting_total_.pop_front();
    auto host = hosts_.find(key);
    if (host == hosts_.end()) continue;
    host->second.awaits_total = false;
    admit(key);
  }
}

bool BeastClient::Loop::close_oldest_idle() {
  auto oldest = idle_.end();
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->second.empty()) continue;
    if (oldest == idle_.end() || it->second.front()->keep_until < oldest->second.front()->keep_until) oldest = it;
  }
  if (oldest == idle_.end()) return false;
  oldest->second.front()->close();
  oldest->second.pop_front();
  --idle_total_;
  if (oldest->second.empty()) idle_.erase(oldest);
  return true;
}

void BeastClient::Loop::begin(const CallPtr& call) {
  if (auto idle = idle_.find(call->pool_key); idle != idle_.end()) {
    auto& connections = idle->second;
    const auto now = SteadyClock::now();
    // The most recently used first: the oldest age out.
    while (!connections.empty()) {
      std::shared_ptr<Connection> connection = std::move(connections.back());
      connections.pop_back();
      --idle_total_;
      if (now >= connection->keep_until || (!call->request.is_idempotent() && !connection->still_open())) {
        connection->close();
        continue;
      }
      if (connections.empty()) idle_.erase(idle);
      call->connection = std::move(connection);
      return send(call);
    }
    idle_.erase(idle);
  }
  open(call);
}

void BeastClient::Loop::open(const CallPtr& call) {
  call->stage = Stage::kConnecting;
  call->connection = std::make_shared<Connection>(io_, call->pool_key);
  call->connect_started = SteadyClock::now();
  arm_timer(call, std::min(call->due, call->connect_started + options_.connect_timeout));
  const std::string& host = call->proxy ? call->proxy->host : call->url.host;
  const uint16_t port = call->proxy ? call->proxy->port : call->url.port;
  if (is_ip_address(host)) return on_resolved(call, {}, {tcp::endpoint(asio::ip::make_address(host), port)});
  const std::string key = host + ":" + std::to_string(port);
  if (auto known = resolved_.find(key); known != resolved_.end() && SteadyClock::now() < known->second.until)
    return on_resolved(call, {}, known->second.endpoints);
  resolver_.async_resolve(host, std::to_string(port), [this, call, key](const error_code& ec, const tcp::resolver::results_type& results) {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    if (!ec && !endpoints.empty()) resolved_[key] = Resolved{endpoints, SteadyClock::now() + kResolvedFor};
    on_resolved(call, ec, endpoints);
  });
}

void BeastClient::Loop::on_resolved(const CallPtr& call, const error_code& ec, const std::vector<tcp::endpoint>& endpoints) {
  if (call->finished) return;
  const std::string& host = call->proxy ? "the proxy " + call->proxy->host : call->url.host;
  if (ec || endpoints.empty()) return fail(call, Reached::kNotSent, "could not resolve " + host + (ec ? ": " + ec.message() : ""));
  asio::async_connect(call->connection->socket(), endpoints,
                      [this, call](const error_code& connected, const tcp::endpoint&) { on_connected(call, connected); });
}

void BeastClient::Loop::on_connected(const CallPtr& call, const error_code& ec) {
  if (call->finished) return;
  if (ec) return fail(call, Reached::kNotSent, std::string("could not connect") + (call->proxy ? " to the proxy" : "") + ": " + ec.message());
  call->connected_after = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - call->connect_started);
  error_code ignored;
  call->connection->socket().set_option(tcp::no_delay(true), ignored);
  call->connection->socket().set_option(asio::socket_base::keep_alive(true), ignored);
  if (call->proxy && call->url.tls()) return tunnel(call);
  if (call->url.tls()) return handshake(call);
  send(call);
}

// Asks the proxy for a tunnel to the origin; TLS then runs through it, end to end.
void BeastClient::Loop::tunnel(const CallPtr& call) {
  auto ask = std::make_shared<wire::request<wire::empty_body>>(wire::verb::connect, call->url.host.find(':') != std::string::npos
                                                                                        ? "[" + call->url.host + "]:" + std::to_string(call->url.port)
                                                                                        : call->url.host + ":" + std::to_string(call->url.port),
                                                               11);
  ask->set(wire::field::host, ask->target());
  if (!call->proxy->authorization.empty()) ask->set(wire::field::proxy_authorization, call->proxy->authorization);
  wire::async_write(call->connection->socket(), *ask, [this, call, ask](const error_code& ec, size_t) {
    if (call->finished) return;
    if (ec) return fail(call, Reached::kNotSent, "the proxy did not take the tunnel request: " + ec.message());
    auto answer = std::make_shared<wire::response_parser<wire::empty_body>>();
    answer->skip(true);  // a CONNECT's answer has no body: what follows is the tunnel
    wire::async_read(call->connection->socket(), call->connection->buffer(), *answer, [this, call, answer](const error_code& read, size_t) {
      if (call->finished) return;
      if (read) return fail(call, Reached::kNotSent, "the proxy did not answer the tunnel request: " + read.message());
      const unsigned status = answer->get().result_int();
      if (status < 200 || status >= 300)
        return fail(call, Reached::kNotSent, "the proxy refused a tunnel to " + call->url.authority() + " (HTTP " + std::to_string(status) + ")");
      handshake(call);
    });
  });
}

void BeastClient::Loop::handshake(const CallPtr& call) {
  auto& tls = call->connection->start_tls(tls_context_);
  SSL* ssl = tls.native_handle();
  const std::string& host = call->url.host;
  X509_VERIFY_PARAM* verify = SSL_get0_param(ssl);
  X509_VERIFY_PARAM_set_hostflags(verify, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  if (is_ip_address(host)) {
    X509_VERIFY_PARAM_set1_ip_asc(verify, host.c_str());
  } else {
    X509_VERIFY_PARAM_set1_host(verify, host.c_str(), host.size());
    SSL_set_tlsext_host_name(ssl, host.c_str());
  }
  tls.async_handshake(asio::ssl::stream_base::client, [this, call](const error_code& ec) {
    if (call->finished) return;
    if (ec) {
      const long verified = SSL_get_verify_result(call->connection->tls()->native_handle());
      const std::string why = verified != X509_V_OK ? std::string("its certificate was refused (") + X509_verify_cert_error_string(verified) + ")"
                                                    : ec.message();
      return fail(call, Reached::kNotSent, "TLS with " + call->url.host + " failed: " + why);
    }
    send(call);
  });
}

void BeastClient::Loop::send(const CallPtr& call) {
  call->stage = Stage::kSending;
  if (call->connected_after) arm_timer(call, call->due);
  call->connection->with_stream([this, call](auto& stream) {
    wire::async_write(stream, call->message, [this, call](const error_code& ec, size_t bytes) { on_sent(call, ec, bytes); });
  });
}

void BeastClient::Loop::on_sent(const CallPtr& call, const error_code& ec, size_t bytes) {
  if (call->finished) return;
  if (ec) {
    // On plain TCP a write that moved no byte left nothing; through TLS a record may be half out.
    const bool nothing_left = bytes == 0 && !call->connection->tls();
    if (try_again(call, nothing_left)) return;
    return fail(call, nothing_left ? Reached::kNotSent : Reached::kMaybeSent, "the connection failed while the request was sent: " + ec.message());
  }
  call->stage = Stage::kAnswering;
  read(call);
}

void BeastClient::Loop::read(const CallPtr& call) {
  call->parser.emplace();
  call->parser->body_limit(options_.max_response_bytes);
  call->parser->header_limit(kMaxResponseHeader);
  if (call->request.method == "HEAD") call->parser->skip(true);
  // The header first: Beast 1.74 forgets a body_limit error found at the end of the header when
  // it goes straight on into the body, as async_read does.
  call->connection->with_stream([this, call](auto& stream) {
    wire::async_read_header(stream, call->connection->buffer(), *call->parser,
                            [this, call](const error_code& ec, size_t) { on_header(call, ec); });
  });
}

void BeastClient::Loop::on_header(const CallPtr& call, const error_code& ec) {
  if (call->finished) return;
  if (!ec) {
    const unsigned status = call->parser->get().result_int();
    if (status >= 100 && status < 200 && status != 101) return read(call);  // an interim answer; the real one follows
    if (call->parser->is_done()) return answered(call);
    return call->connection->with_stream([this, call](auto& stream) {
      wire::async_read(stream, call->connection->buffer(), *call->parser, [this, call](const error_code& body, size_t) { on_read(call, body); });
    });
  }
  on_read(call, ec);
}

void BeastClient::Loop::on_read(const CallPtr& call, const error_code& ec) {
  if (call->finished) return;
  if (ec == wire::error::body_limit)
    return fail(call, Reached::kMaybeSent, "the answer was larger than " + std::to_string(options_.max_response_bytes) + " bytes");
  if (ec) {
    if (try_again(call, false)) return;
    const bool closed = ec == wire::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                        ec == asio::ssl::error::stream_truncated;
    return fail(call, Reached::kMaybeSent,
                closed ? "the connection closed after the request was sent, before an answer" : "reading the answer failed: " + ec.message());
  }
  answered(call);
}

bool BeastClient::Loop::try_again(const CallPtr& call, bool nothing_left) {
  // Only a kept-alive connection that turned out dead, and only once: a fresh one failing
  // says something about the server, not the pool.
  if (call->retried || !call->connection->carried_before) return false;
  const bool no_answer_yet = !call->parser || !call->parser->got_some();
  if (!nothing_left && !(call->request.is_idempotent() && no_answer_yet)) return false;
  if (SteadyClock::now() >= call->due) return false;
  call->retried = true;
  call->connection->close();
  open(call);
  return true;
}

void BeastClient::Loop::answered(const CallPtr& call) {
  auto& message = call->parser->get();
  ClientOutcome outcome;
  outcome.reached = Reached::kAnswered;
  outcome.response.status = static_cast<int>(message.result_int());
  outcome.response.headers.reserve(16);
  for (const auto& field : message.base())
    outcome.response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  outcome.response.body = std::move(message.body());
  // Bytes past the answer mean a server not speaking HTTP/1.1 as it should: not reused.
  const bool reusable = message.keep_alive() && call->parser->is_done() && call->connection->buffer().size() == 0;
  if (reusable) {
    auto keep = std::chrono::duration_cast<SteadyClock::duration>(options_.max_idle);
    const auto keep_alive_field = message[wire::field::keep_alive];
    if (auto said = announced_idle_timeout(std::string_view(keep_alive_field.data(), keep_alive_field.size()))) {
      // Closed a second before the server would (half the time for very short ones).
      const auto before_server = *said > std::chrono::seconds(2) ? *said - std::chrono::seconds(1) : std::chrono::duration_cast<std::chrono::seconds>(*said / 2);
      keep = std::min(keep, std::chrono::duration_cast<SteadyClock::duration>(before_server));
    }
    call->connection->keep_until = SteadyClock::now() + keep;
  }
  finish(call, std::move(outcome), reusable);
}

void BeastClient::Loop::arm_timer(const CallPtr& call, SteadyClock::time_point at) {
  call->timer->expires_at(at);
  call->timer->async_wait([this, call](const error_code& ec) {
    if (!ec) on_timer(call);
  });
}

void BeastClient::Loop::on_timer(const CallPtr& call) {
  if (call->finished) return;
  const auto now = SteadyClock::now();
  if (now >= call->due) {
    const bool left = call->stage == Stage::kSending || call->stage == Stage::kAnswering;
    return fail(call, left ? Reached::kMaybeSent : Reached::kNotSent, deadline_message(*call), true);
  }
  if (call->stage == Stage::kConnecting)
    return fail(call, Reached::kNotSent, "no connection within the connect timeout of " + std::to_string(options_.connect_timeout.count()) + " ms");
  arm_timer(call, call->due);
}

// How far a call got when its deadline passed, so that an operator reading the log can tell a
// server that did not answer from calls waiting for a connection (a cap, a slow handshake).
std::string BeastClient::Loop::deadline_message(const Call& call) const {
  const std::string deadline = std::to_string(call.request.timeout.count()) + " ms deadline";
  const std::string connected = call.connected_after ? "connected after " + std::to_string(call.connected_after->count()) + " ms"
                                                     : std::string("on a kept-alive connection");
  switch (call.stage) {
    case Stage::kWaiting: return "no connection within the " + deadline;
    case Stage::kConnecting:
      return call.connected_after ? "the request was not sent within the " + deadline + " (" + connected + ")" : "no connection within the " + deadline;
    case Stage::kSending: return "the request was still being sent when the " + deadline + " passed (" + connected + ")";
    case Stage::kAnswering: break;
  }
  return "no answer within the " + deadline + " (" + connected + ", request sent)";
}

void BeastClient::Loop::fail(const CallPtr& call, Reached reached, const std::string& why, bool deadline_passed) {
  ClientOutcome outcome;
  outcome.reached = reached;
  outcome.deadline_passed = deadline_passed;
  outcome.error = Unavailable("HTTP request to " + (call->url.host.empty() ? origin_of(call->request.url) : call->url.origin()) + " failed: " + why);
  finish(call, std::move(outcome), false);
}

void BeastClient::Loop::finish(const CallPtr& call, ClientOutcome outcome, bool keep_connection) {
  if (call->finished) return;
  call->finished = true;
  call->timer->cancel();
  calls_.erase(call->id);
  if (call->connection) {
    if (keep_connection) {
      call->connection->carried_before = true;
      pool(std::move(call->connection));
    } else {
      // Its pending operations end with operation_aborted; the connection lives until they have.
      call->connection->close();
    }
  }
  if (call->holds_slot) {
    call->holds_slot = false;
    if (auto host = hosts_.find(call->pool_key); host != hosts_.end()) --host->second.active;
    --active_total_;
  }
  Done done = std::move(call->done);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  if (!call->pool_key.empty()) admit(call->pool_key);
  admit_awaiting_total();
  done(std::move(outcome));
}

void BeastClient::Loop::pool(std::shared_ptr<Connection> connection) {
  idle_[connection->pool_key].push_back(std::move(connection));
  ++idle_total_;
  arm_sweeper();
}

void BeastClient::Loop::arm_sweeper() {
  if (sweeping_ || stopping_) return;
  sweeping_ = true;
  sweeper_.expires_after(kSweepEvery);
  sweeper_.async_wait([this](const error_code& ec) {
    sweeping_ = false;
    if (!ec) sweep();
  });
}

// Closes idle connections past their time, so none lingers until the server drops it.
void BeastClient::Loop::sweep() {
  const auto now = SteadyClock::now();
  for (auto it = idle_.begin(); it != idle_.end();) {
    auto& connections = it->second;
    for (auto c = connections.begin(); c != connections.end();) {
      if (now < (*c)->keep_until) {
        ++c;
        continue;
      }
      (*c)->close();
      c = connections.erase(c);
      --idle_total_;
    }
    it = connections.empty() ? idle_.erase(it) : std::next(it);
  }
  if (idle_total_ > 0) arm_sweeper();
}

BeastClient::BeastClient(ClientOptions options) : loop_(std::make_unique<Loop>(std::move(options))) {}
BeastClient::~BeastClient() = default;

void BeastClient::start(ClientRequest request, Done done) { loop_->start(std::move(request), std::move(done)); }

size_t BeastClient::in_flight() const { return loop_->in_flight(); }

}  // namespace deputy::http
