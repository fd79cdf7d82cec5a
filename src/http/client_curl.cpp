#include "http/client_curl.h"

#include <cstring>

#include <curl/curl.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cctype>
#include <deque>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/threads.h"

namespace deputy::http {
namespace asio = boost::asio;
using boost::system::error_code;

namespace {

struct Transfer {
  ClientRequest request;
  Client::Done done;
  ClientResponse response;
  curl_slist* header_list = nullptr;
  CURL* easy = nullptr;
  size_t max_bytes = 0;
  bool too_large = false;
  uint64_t id = 0;
  size_t body_sent = 0;  // how much of a body given by on_upload has gone out
  std::string origin;    // the host it waits for a connection to, under the per-host cap
  std::chrono::steady_clock::time_point due;
  // The deadline counts from start(), through the wait for a connection.
  std::unique_ptr<asio::steady_timer> deadline;

  Transfer() = default;
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);
    if (header_list) curl_slist_free_all(header_list);
  }
};

// The body of a request that must not run twice, handed out once: libcurl cannot rewind it,
// so it cannot send it again by itself on a fresh connection after a reused one died.
size_t on_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = std::min(size * count, t->request.body.size() - t->body_sent);
  std::memcpy(buffer, t->request.body.data() + t->body_sent, n);
  t->body_sent += n;
  return n;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (t->response.body.size() + n > t->max_bytes) {
    t->too_large = true;
    return 0;  // curl ends the transfer with CURLE_WRITE_ERROR
  }
  t->response.body.append(data, n);
  return n;
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  std::string_view line(data, size * count);
  Headers& headers = static_cast<Transfer*>(user)->response.headers;
  if (line.rfind("HTTP/", 0) == 0) headers.clear();  // a new response after a 100-continue
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) value.remove_suffix(1);
    headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
  }
  return size * count;
}

// The URL may carry a query with secrets; errors name the scheme and host only.
std::string origin_of(const std::string& url) {
  size_t scheme = url.find("//");
  return url.substr(0, url.find('/', scheme == std::string::npos ? 0 : scheme + 2));
}

// What the per-host cap counts by: scheme, host and port, as libcurl's own pool keys them.
std::string host_key(const std::string& url) {
  std::string key = origin_of(url);
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return key;
}

// Failures that happen before any byte of the request can have left.
bool before_sending(CURLcode rc) {
  switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_OUT_OF_MEMORY: return true;
    default: return false;
  }
}

// Everything about a request but how its sockets are watched, for both ways of sending.
void configure_request(Transfer& t, const CurlClientOptions& options) {
  CURL* curl = t.easy;
  const ClientRequest& r = t.request;
  for (const auto& [name, value] : r.headers) {
    std::string line = name + ": " + value;
    t.header_list = curl_slist_append(t.header_list, line.c_str());
  }
  // curl adds "Expect: 100-continue" to large POSTs; it only adds a round trip here.
  t.header_list = curl_slist_append(t.header_list, "Expect:");
  curl_easy_setopt(curl, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r.method.c_str());
  if (r.method == "HEAD") curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  if (!r.body.empty() || r.method == "POST" || r.method == "PUT" || r.method == "PATCH") {
    if (r.is_idempotent()) {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r.body.data());
    } else {
      // libcurl sends a request again by itself when a reused connection turns out dead
      // after the body went out; a body it cannot rewind ends the call instead (maybe sent).
      // Only a body that never left may go again, and a server cannot have acted on it.
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_upload);
      curl_easy_setopt(curl, CURLOPT_READDATA, &t);
    }
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, t.header_list);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_USERAGENT, options.user_agent.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_MAXAGE_CONN, static_cast<long>(options.max_idle.count()));
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  // With no body to hold back, libcurl would send such a request again after a reused
  // connection died: it gets a connection of its own.
  if (!r.is_idempotent() && r.body.empty()) curl_easy_setopt(curl, CURLOPT_FRESH_CONNECT, 1L);
  if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
}


// How far a call got when its deadline passed, so that an operator reading the log can tell a
// server that did not answer from calls waiting for a connection (a cap, a slow handshake).
std::string where_the_deadline_passed(Transfer& t, Reached reached) {
  const std::string deadline = std::to_string(t.request.timeout.count()) + " ms";
  curl_off_t connect_us = 0;
  if (t.easy) curl_easy_getinfo(t.easy, CURLINFO_CONNECT_TIME_T, &connect_us);
  if (connect_us == 0 && reached == Reached::kNotSent) return "no connection within the " + deadline + " deadline";
  const std::string connected = "connected after " + std::to_string(connect_us / 1000) + " ms";
  if (reached == Reached::kNotSent) return "the request was not sent within the " + deadline + " deadline (" + connected + ")";
  return "no answer within the " + deadline + " deadline (" + connected + ", request sent)";
}

// The outcome of a transfer libcurl ended with `rc`.
ClientOutcome outcome_of(Transfer& t, CURLcode rc) {
  ClientOutcome outcome;
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    outcome.reached = Reached::kAnswered;
    outcome.response = std::move(t.response);
    outcome.response.status = static_cast<int>(status);
    return outcome;
  }
  long request_bytes = 0;
  if (t.easy) curl_easy_getinfo(t.easy, CURLINFO_REQUEST_SIZE, &request_bytes);
  outcome.reached = before_sending(rc) || request_bytes == 0 ? Reached::kNotSent : Reached::kMaybeSent;
  // A body that left once counts, whatever a later try of libcurl's ended with.
  if (t.body_sent > 0) outcome.reached = Reached::kMaybeSent;
  outcome.deadline_passed = rc == CURLE_OPERATION_TIMEDOUT;
  std::string why = t.too_large ? "the answer was larger than " + std::to_string(t.max_bytes) + " bytes"
                    : outcome.deadline_passed         ? where_the_deadline_passed(t, outcome.reached)
                    : rc == CURLE_ABORTED_BY_CALLBACK ? std::string("the client stopped")
                    : rc == CURLE_SEND_FAIL_REWIND    ? std::string("the connection closed after the request was sent, before an answer")
                                                      : std::string(curl_easy_strerror(rc));
  outcome.error = Unavailable("HTTP request to " + origin_of(t.request.url) + " failed: " + why);
  return outcome;
}

}  // namespace

// Follows libcurl's multi_socket design: curl says which sockets it wants watched and when
// it wants a timeout; asio watches them (epoll) and tells curl what happened. Everything runs
// on the one loop thread, so none of this state needs a lock.
class CurlMultiClient::Loop {
 public:
  explicit Loop(CurlClientOptions options);
  ~Loop();
  void start(ClientRequest request, Done done);
  size_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  const CurlClientOptions& options() const { return options_; }

 private:
  struct Watched {
    explicit Watched(asio::io_context& io) : descriptor(io) {}
    asio::posix::stream_descriptor descriptor;
    // Sockets curl opened through on_open are ours to close when curl asks; any other it
    // wants watched (its resolver's wake-up pipe) is watched through a copy of the fd.
    bool ours = false;
    int wanted = 0;  // CURL_POLL_IN / _OUT bits
    bool reading = false;
    bool writing = false;
    uint64_t generation = 0;  // fd numbers are reused; a handler checks it is still its socket
  };

  // Calls beyond the caps wait here rather than in libcurl: with thousands waiting in its
  // multi handle, libcurl walks them all on every transfer that ends (a backlog of answers
  // to Slack drained at a fifth of the speed).
  struct Host {
    size_t active = 0;
    std::deque<uint64_t> waiting;  // ids, in the order the calls started; stale ids are skipped
    bool awaits_total = false;     // listed in hosts_awaiting_total_
  };

  void add(std::unique_ptr<Transfer> t);
  void admit(const std::string& origin);
  void admit_waiting();
  bool activate(Transfer& t);
  void finish(uint64_t id, CURLcode rc);
  void configure(Transfer& t);
  void act(curl_socket_t fd, int events);
  void collect_finished();
  void complete(std::unique_ptr<Transfer> t, CURLcode rc);
  void watch(curl_socket_t fd);
  void arm(curl_socket_t fd, Watched& w, bool read);
  void shut_down();

  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket_data);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static curl_socket_t on_open(void* self, curlsocktype purpose, curl_sockaddr* address);
  static int on_close(void* self, curl_socket_t fd);

  CurlClientOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;     // timer_ waits for curl's next timeout
  bool timeout_posted_ = false;  // a timeout "at once" is already posted
  CURLM* multi_ = nullptr;
  std::unordered_map<curl_socket_t, std::unique_ptr<Watched>> watched_;
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> transfers_;  // waiting and active
  std::unordered_map<std::string, Host> hosts_;
  std::deque<std::string> hosts_awaiting_total_;  // hosts with calls held back by the total cap only
  size_t active_total_ = 0;
  uint64_t next_generation_ = 1;
  uint64_t next_transfer_ = 1;
  std::atomic<size_t> in_flight_{0};
  std::thread thread_;
};

CurlMultiClient::Loop::Loop(CurlClientOptions options)
    : options_(std::move(options)), work_(io_.get_executor()), timer_(io_) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &Loop::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &Loop::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, options_.max_connections_per_host);
  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, options_.max_connections);
  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, options_.max_connections);
  thread_ = std::thread([this] {
    name_this_thread("deputy-http-out");
    if (options_.nice > 0) {
      if (Status s = lower_this_thread_priority(options_.nice); !s.ok())
        spdlog::warn("the outbound HTTP thread keeps the process's CPU priority: {}", s.message());
    }
    io_.run();
  });
}

CurlMultiClient::Loop::~Loop() {
  asio::post(io_, [this] { shut_down(); });
  thread_.join();
  // Closes the pooled connections, through on_close.
  curl_multi_cleanup(multi_);
  watched_.clear();
}

void CurlMultiClient::Loop::shut_down() {
  auto stopped = std::move(transfers_);
  hosts_.clear();
  hosts_awaiting_total_.clear();
  for (auto& [id, t] : stopped) {
    if (t->easy) curl_multi_remove_handle(multi_, t->easy);
    complete(std::move(t), CURLE_ABORTED_BY_CALLBACK);
  }
  timer_.cancel();
  work_.reset();
  io_.stop();
}

void CurlMultiClient::Loop::start(ClientRequest request, Done done) {
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->done = std::move(done);
  asio::post(io_, [this, t = std::move(t)]() mutable { add(std::move(t)); });
}

void CurlMultiClient::Loop::configure(Transfer& t) {
  configure_request(t, options_);
  curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(t.easy, CURLOPT_OPENSOCKETFUNCTION, &Loop::on_open);
  curl_easy_setopt(t.easy, CURLOPT_OPENSOCKETDATA, this);
  curl_easy_setopt(t.easy, CURLOPT_CLOSESOCKETFUNCTION, &Loop::on_close);
  curl_easy_setopt(t.easy, CURLOPT_CLOSESOCKETDATA, this);
}

void CurlMultiClient::Loop::add(std::unique_ptr<Transfer> t) {
  t->max_bytes = options_.max_response_bytes;
  t->id = next_transfer_++;
  t->origin = host_key(t->request.url);
  t->due = std::chrono::steady_clock::now() + t->request.timeout;
  t->deadline = std::make_unique<asio::steady_timer>(io_, t->due);
  t->deadline->async_wait([this, id = t->id](const error_code& ec) {
    if (!ec) finish(id, CURLE_OPERATION_TIMEDOUT);
  });
  const uint64_t id = t->id;
  const std::string origin = t->origin;
  transfers_.emplace(id, std::move(t));
  hosts_[origin].waiting.push_back(id);
  admit(origin);
}

// Hands the host's waiting calls to libcurl while both caps leave room.
void CurlMultiClient::Loop::admit(const std::string& origin) {
  auto host = hosts_.find(origin);
  if (host == hosts_.end()) return;
  Host& h = host->second;
  const auto per_host = static_cast<size_t>(std::max(1L, options_.max_connections_per_host));
  const auto total = static_cast<size_t>(std::max(1L, options_.max_connections));
  while (!h.waiting.empty() && h.active < per_host && active_total_ < total) {
    auto found = transfers_.find(h.waiting.front());
    h.waiting.pop_front();
    if (found == transfers_.end()) continue;  // its deadline passed while it waited
    if (!activate(*found->second)) {
      std::unique_ptr<Transfer> failed = std::move(found->second);
      transfers_.erase(found);
      complete(std::move(failed), CURLE_OUT_OF_MEMORY);
      continue;
    }
    ++h.active;
    ++active_total_;
  }
  if (!h.waiting.empty() && h.active < per_host && !h.awaits_total) {
    h.awaits_total = true;
    hosts_awaiting_total_.push_back(origin);
  }
  if (h.active == 0 && h.waiting.empty() && !h.awaits_total) hosts_.erase(host);
}

// A slot under the total cap came free: hosts held back by it go first, in turn.
void CurlMultiClient::Loop::admit_waiting() {
  const auto total = static_cast<size_t>(std::max(1L, options_.max_connections));
  while (!hosts_awaiting_total_.empty() && active_total_ < total) {
    std::string origin = std::move(hosts_awaiting_total_.front());
    hosts_awaiting_total_.pop_front();
    auto host = hosts_.find(origin);
    if (host == hosts_.end()) continue;
    host->second.awaits_total = false;
    admit(origin);
  }
}

bool CurlMultiClient::Loop::activate(Transfer& t) {
  t.easy = curl_easy_init();
  if (!t.easy) return false;
  configure(t);
  // libcurl's own timeout, from what is left of the deadline after the wait: the loop's timer
  // stays the authority, this only lets libcurl say how far the call got.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(t.due - std::chrono::steady_clock::now());
  curl_easy_setopt(t.easy, CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<int64_t>(1, left.count())));
  return curl_multi_add_handle(multi_, t.easy) == CURLM_OK;
}

// Ends a call, waiting or active, and lets the next in.
void CurlMultiClient::Loop::finish(uint64_t id, CURLcode rc) {
  auto found = transfers_.find(id);
  if (found == transfers_.end()) return;
  std::unique_ptr<Transfer> t = std::move(found->second);
  transfers_.erase(found);
  const std::string origin = t->origin;
  if (t->easy) {
    curl_multi_remove_handle(multi_, t->easy);
    if (auto host = hosts_.find(origin); host != hosts_.end()) --host->second.active;
    --active_total_;
  }
  const bool was_active = t->easy != nullptr;
  complete(std::move(t), rc);
  if (was_active) {
    admit(origin);
    admit_waiting();
  }
}

void CurlMultiClient::Loop::act(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  collect_finished();
}

void CurlMultiClient::Loop::collect_finished() {
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    Transfer* t = nullptr;
    curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &t);
    // `message` is invalid once the handle leaves the multi handle.
    if (t) finish(t->id, message->data.result);
  }
}

void CurlMultiClient::Loop::complete(std::unique_ptr<Transfer> t, CURLcode rc) {
  ClientOutcome outcome = outcome_of(*t, rc);
  Done done = std::move(t->done);
  t.reset();
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  done(std::move(outcome));
}

void CurlMultiClient::Loop::watch(curl_socket_t fd) {
  auto found = watched_.find(fd);
  if (found == watched_.end()) return;
  Watched& w = *found->second;
  if ((w.wanted & CURL_POLL_IN) && !w.reading) arm(fd, w, true);
  if ((w.wanted & CURL_POLL_OUT) && !w.writing) arm(fd, w, false);
}

void CurlMultiClient::Loop::arm(curl_socket_t fd, Watched& w, bool read) {
  (read ? w.reading : w.writing) = true;
  auto wait = read ? asio::posix::descriptor::wait_read : asio::posix::descriptor::wait_write;
  w.descriptor.async_wait(wait, [this, fd, read, generation = w.generation](const error_code& ec) {
    auto found = watched_.find(fd);
    if (found == watched_.end() || found->second->generation != generation) return;
    Watched& now = *found->second;
    (read ? now.reading : now.writing) = false;
    if (ec == asio::error::operation_aborted) return;
    const int bit = read ? CURL_POLL_IN : CURL_POLL_OUT;
    // A wait armed before curl lost interest is not news for it.
    if (!(now.wanted & bit)) return;
    act(fd, ec ? CURL_CSELECT_ERR : (read ? CURL_CSELECT_IN : CURL_CSELECT_OUT));
    watch(fd);
  });
}

int CurlMultiClient::Loop::on_socket(CURL*, curl_socket_t fd, int what, void* self_pointer, void*) {
  auto* self = static_cast<Loop*>(self_pointer);
  auto found = self->watched_.find(fd);
  if (what == CURL_POLL_REMOVE) {
    if (found == self->watched_.end()) return 0;
    if (found->second->ours) {
      found->second->wanted = 0;  // idle in the pool; closed through on_close
    } else {
      error_code ignored;
      found->second->descriptor.close(ignored);
      self->watched_.erase(found);
    }
    return 0;
  }
  if (found == self->watched_.end()) {
    int copy = ::dup(fd);
    if (copy < 0) return -1;
    auto w = std::make_unique<Watched>(self->io_);
    error_code ec;
    w->descriptor.assign(copy, ec);
    if (ec) {
      ::close(copy);
      return -1;
    }
    w->generation = self->next_generation_++;
    found = self->watched_.emplace(fd, std::move(w)).first;
  }
  found->second->wanted = what;
  self->watch(fd);
  return 0;
}

int CurlMultiClient::Loop::on_timer(CURLM*, long timeout_ms, void* self_pointer) {
  auto* self = static_cast<Loop*>(self_pointer);
  // curl asks for a timer after nearly every step of every transfer, and each re-armed timer
  // costs a system call (the loop's timerfd): "at once" is a posted task instead. A timer
  // asked for is always armed as asked: curl tells each new moment only once, so one
  // fired early would leave its transfers waiting for an event that may never come.
  if (self->timer_armed_) {
    self->timer_armed_ = false;
    self->timer_.cancel();
  }
  if (timeout_ms < 0) return 0;
  if (timeout_ms == 0) {
    if (!self->timeout_posted_) {
      self->timeout_posted_ = true;
      asio::post(self->io_, [self] {
        self->timeout_posted_ = false;
        self->act(CURL_SOCKET_TIMEOUT, 0);
      });
    }
    return 0;
  }
  self->timer_.expires_after(std::chrono::milliseconds(timeout_ms));
  self->timer_armed_ = true;
  self->timer_.async_wait([self](const error_code& ec) {
    if (ec) return;
    self->timer_armed_ = false;
    self->act(CURL_SOCKET_TIMEOUT, 0);
  });
  return 0;
}

curl_socket_t CurlMultiClient::Loop::on_open(void* self_pointer, curlsocktype purpose, curl_sockaddr* address) {
  auto* self = static_cast<Loop*>(self_pointer);
  if (purpose != CURLSOCKTYPE_IPCXN) return CURL_SOCKET_BAD;
  int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  auto w = std::make_unique<Watched>(self->io_);
  error_code ec;
  w->descriptor.assign(fd, ec);
  if (ec) {
    ::close(fd);
    return CURL_SOCKET_BAD;
  }
  w->ours = true;
  w->generation = self->next_generation_++;
  // A stale entry under a reused number belongs to a descriptor already closed elsewhere.
  self->watched_[fd] = std::move(w);
  return fd;
}

int CurlMultiClient::Loop::on_close(void* self_pointer, curl_socket_t fd) {
  auto* self = static_cast<Loop*>(self_pointer);
  auto found = self->watched_.find(fd);
  if (found == self->watched_.end() || !found->second->ours) return ::close(fd);
  error_code ec;
  found->second->descriptor.close(ec);  // cancels its waits; their handlers see the entry gone
  self->watched_.erase(found);
  return ec ? -1 : 0;
}

CurlMultiClient::CurlMultiClient(CurlClientOptions options) : loop_(std::make_unique<Loop>(std::move(options))) {}
CurlMultiClient::~CurlMultiClient() = default;

void CurlMultiClient::start(ClientRequest request, Done done) { loop_->start(std::move(request), std::move(done)); }

ClientOutcome CurlMultiClient::call(ClientRequest request) {
  // A caller that waits anyway sends on its own thread, with a connection kept per thread,
  // rather than handing the call to the loop and back (two thread switches per call).
  struct EasyDeleter {
    void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
  };
  thread_local std::unique_ptr<CURL, EasyDeleter> handle(curl_easy_init());
  if (!handle) return ClientOutcome{Reached::kNotSent, Internal("curl_easy_init failed"), {}};
  curl_easy_reset(handle.get());
  Transfer t;
  t.request = std::move(request);
  t.easy = handle.get();
  t.max_bytes = loop_->options().max_response_bytes;
  configure_request(t, loop_->options());
  CURLcode rc = curl_easy_perform(t.easy);
  ClientOutcome outcome = outcome_of(t, rc);
  curl_easy_setopt(t.easy, CURLOPT_HTTPHEADER, nullptr);
  t.easy = nullptr;  // the thread's handle, kept with its connection for the next call
  return outcome;
}

size_t CurlMultiClient::in_flight() const { return loop_->in_flight(); }

}  // namespace deputy::http
