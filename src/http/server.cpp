#include "http/server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "common/encoding.h"
#include "common/limits.h"
#include "common/threads.h"
#include "http/wire.h"
#include "metrics/metrics.h"

namespace deputy::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
// Connections use their loop's own executor type rather than the type-erased
// any_io_executor, which every asynchronous operation would otherwise copy and query.
using LoopExecutor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, LoopExecutor>;
using Stream = beast::basic_stream<tcp, LoopExecutor, beast::unlimited_rate_policy>;

std::string Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (equal_ignoring_ascii_case(key, name)) return value;
  }
  return {};
}

std::string Request::query_param(std::string_view name) const {
  auto fields = parse_form(query);
  if (!fields) return {};
  return form_value(*fields, name).value_or("");
}

Response Response::text(int status, std::string body) { return Response{status, "text/plain; charset=utf-8", std::move(body), {}}; }
Response Response::json(int status, std::string body) { return Response{status, "application/json", std::move(body), {}}; }
Response Response::html(int status, std::string body) { return Response{status, "text/html; charset=utf-8", std::move(body), {}}; }
Response Response::redirect(std::string location) {
  Response r{302, "text/plain; charset=utf-8", "Redirecting\n", {}};
  r.headers.emplace_back("Location", std::move(location));
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

void Router::add(std::string method, std::string path, Handler handler) {
  routes_.push_back(Route{std::move(method), std::move(path), std::move(handler)});
}

const Handler* Router::find(std::string_view method, std::string_view path, bool* path_known) const {
  *path_known = false;
  for (const Route& route : routes_) {
    if (route.path != path) continue;
    *path_known = true;
    if (route.method == method) return &route.handler;
  }
  return nullptr;
}

std::string Router::allowed(std::string_view path) const {
  std::string methods;
  for (const Route& route : routes_) {
    if (route.path != path) continue;
    if (!methods.empty()) methods += ", ";
    methods += route.method;
  }
  return methods;
}

// One io_context per I/O thread, each run by exactly one thread: a connection lives on one
// of them for its whole life, so its handlers never run concurrently and need no strand,
// and the threads do not share one scheduler queue and its lock.
struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  Impl(ServerOptions o, Router r, metrics::Registry* m)
      : options(o),
        router(std::move(r)),
        metrics(m),
        acceptor(ioc),
        accept_pause(ioc),
        configured_cap(o.max_connections ? o.max_connections : std::numeric_limits<size_t>::max()),
        cap(configured_cap) {}

  ServerOptions options;
  Router router;
  metrics::Registry* metrics;
  net::io_context ioc{1};  // runs the acceptor and a share of the connections
  std::vector<std::unique_ptr<net::io_context>> more_contexts;
  std::vector<net::executor_work_guard<LoopExecutor>> keep_running;
  std::atomic<size_t> next_context{0};
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};

  // The front door's state, on the acceptor's thread (cap is read elsewhere too).
  net::steady_timer accept_pause;
  std::chrono::milliseconds pause_for{0};  // the next pause; doubles while accepting fails
  const size_t configured_cap;
  std::atomic<size_t> cap;
  // Sessions by phase, and those chosen to close that have not yet: at the cap, a new
  // connection is taken only if one of the others can make way.
  std::atomic<size_t> idle_sessions{0};
  std::atomic<size_t> busy_sessions{0};
  std::atomic<size_t> shedding{0};
  std::chrono::steady_clock::time_point ran_out_of_files_at{};
  // A warning said at most once per `every`; the times it was not said are counted and told
  // with the next one.
  struct Warning {
    std::chrono::steady_clock::time_point at{};
    size_t unsaid = 0;
    bool due(std::chrono::seconds every, size_t& not_said) {
      auto now = std::chrono::steady_clock::now();
      ++unsaid;
      if (at != std::chrono::steady_clock::time_point{} && now - at < every) return false;
      at = now;
      not_said = unsaid - 1;
      unsaid = 0;
      return true;
    }
  };
  Warning out_of_files_warning, accept_error_warning, at_cap_warning;
  struct {
    metrics::Registry::Counter* shed_idle = nullptr;
    metrics::Registry::Counter* shed_reading = nullptr;
    metrics::Registry::Counter* refused_at_cap = nullptr;
    metrics::Registry::Counter* refused_out_of_files = nullptr;
    metrics::Registry::Counter* refused_accept_error = nullptr;
  } counters;

  class Session;
  class Replies;
  std::weak_ptr<Session> newest;  // the connection accepted last (the acceptor's thread)
  std::vector<std::unique_ptr<Replies>> replies;  // one per context: [0] for ioc, then more_contexts

  net::io_context& context(size_t n) { return n == 0 ? ioc : *more_contexts[n - 1]; }
  mutable std::mutex sessions_mutex;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;  // by id: in the order they were accepted
  uint64_t next_session_id = 0;

  void do_accept();
  void on_accept(size_t loop, beast::error_code ec, Socket socket);
  void pause_accepting();
  void ran_out_of_files(const beast::error_code& ec);
  // Closes up to `wanted` connections that are not being answered: idle keep-alive ones
  // first, then those that have waited longest for a whole request. The newest is spared
  // while on its first request: it is the one room is made for. Returns how many.
  size_t shed(size_t wanted);
  size_t open_connections() const {
    std::lock_guard lock(sessions_mutex);
    return sessions.size();
  }
  // Open and not chosen to close.
  size_t staying_connections() const {
    const size_t open = open_connections();
    return open - std::min(open, shedding.load(std::memory_order_relaxed));
  }
  void forget(uint64_t id) {
    std::lock_guard lock(sessions_mutex);
    sessions.erase(id);
  }
};

// Answers that other threads hand to one I/O loop. A group commit answers a whole batch at
// once; the batch reaches the loop in one post, not in one post (an allocation, the
// scheduler's lock, maybe a wake-up) per answer.
class Server::Impl::Replies {
 public:
  explicit Replies(net::io_context& context) : context_(context) {}

  // An answer owed to a session: holds it, and keeps its loop running until the answer's
  // write has begun (a handler may finish elsewhere, e.g. a database commit during stop).
  struct Owed {
    std::shared_ptr<Session> session;
    net::executor_work_guard<LoopExecutor> work;
  };

  std::shared_ptr<Owed> owe(std::shared_ptr<Session> session) {
    return std::make_shared<Owed>(Owed{std::move(session), net::make_work_guard(context_)});
  }

  void deliver(std::shared_ptr<Owed> owed, Response response) {
    bool first;
    {
      std::lock_guard lock(mutex_);
      first = waiting_.empty();
      waiting_.emplace_back(std::move(owed), std::move(response));
    }
    // Later answers ride on the post already made; the loop takes all that wait when it runs.
    if (first) net::post(context_, [this] { write_waiting(); });
  }

 private:
  void write_waiting();

  net::io_context& context_;
  std::mutex mutex_;
  std::vector<std::pair<std::shared_ptr<Owed>, Response>> waiting_;
  std::vector<std::pair<std::shared_ptr<Owed>, Response>> writing_;  // the loop's thread only
};

class Server::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, std::shared_ptr<Impl> server, uint64_t id, Replies& replies)
      : stream_(std::move(socket)), server_(std::move(server)), id_(id), replies_(replies) {
    // Beast reads at most the buffer's free capacity (never under 512 bytes), and the parser
    // moves body bytes out of the buffer as they come, so an unreserved buffer never grows:
    // a signed slash command (~600 bytes) would then take two reads every time.
    buffer_.reserve(kReadChunk);
  }
  ~Session() {
    count_phase(phase_, -1);
    if (shed_) server_->shedding.fetch_sub(1, std::memory_order_relaxed);
    server_->forget(id_);
  }

  void start() {
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::do_read, shared_from_this()));
  }

  // Closes the connection if it is waiting for a request; a request in flight finishes first.
  void close_if_idle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ != Phase::kBusy) self->close();
    });
  }

  // Where the connection is, as the acceptor's thread sees it when making room.
  enum class Phase : uint8_t {
    kIdle,     // kept alive, no byte of a next request yet
    kReading,  // waiting for the first request, or a request has begun to arrive
    kBusy,     // a request is being answered
  };
  Phase phase() const { return phase_.load(std::memory_order_relaxed); }
  // Marks the connection for shedding; false when it already was.
  bool mark_shed() {
    if (shed_.exchange(true)) return false;
    server_->shedding.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  bool marked_shed() const { return shed_.load(std::memory_order_relaxed); }
  // Closes the connection unless a whole request has arrived since it was chosen.
  void shed() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->phase_ != Phase::kBusy) return self->close();
      self->shed_ = false;
      self->server_->shedding.fetch_sub(1, std::memory_order_relaxed);
    });
  }

 private:
  void do_read() {
    if (server_->stopping) return close();
    parser_.emplace();
    parser_->body_limit(server_->options.max_body_bytes);
    parser_->header_limit(server_->options.header_limit_bytes);
    if (first_request_ || buffer_.size() > 0) return do_read_header();
    // Kept alive: the idle timeout runs until a next request's first byte.
    set_phase(Phase::kIdle);
    stream_.expires_after(server_->options.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk), beast::bind_front_handler(&Session::on_first_bytes, shared_from_this()));
  }

  void on_first_bytes(beast::error_code ec, std::size_t bytes) {
    if (ec) return close();
    buffer_.commit(bytes);
    do_read_header();
  }

  void do_read_header() {
    set_phase(Phase::kReading);
    stream_.expires_after(server_->options.header_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(beast::error_code ec, std::size_t bytes) {
    if (ec || parser_->is_done()) return on_read(ec, bytes);
    stream_.expires_after(server_->options.read_timeout);
    bhttp::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof) {
      return close();
    }
    if (ec == bhttp::error::body_limit) return fail_request(413, "request body too large\n");
    if (ec == bhttp::error::header_limit) return fail_request(431, "request headers too large\n");
    if (ec) return fail_request(400, "malformed HTTP request\n");
    set_phase(Phase::kBusy);
    first_request_ = false;
    started_ = std::chrono::steady_clock::now();
    auto message = parser_->release();
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    answers_head_ = message.method() == bhttp::verb::head;

    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    size_t q = request.target.find('?');
    request.path = request.target.substr(0, q);
    if (q != std::string::npos) request.query = request.target.substr(q + 1);
    request.headers.reserve(16);
    for (const auto& field : message) request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    request.body = std::move(message.body());

    bool path_known = false;
    const Handler* handler = server_->router.find(request.method, request.path, &path_known);
    route_ = path_known ? request.path : "unmatched";
    if (!handler) {
      if (path_known) {
        Response refused = Response::text(405, "method not allowed\n");
        refused.headers.emplace_back("Allow", server_->router.allowed(request.path));
        return respond(std::move(refused));
      }
      return respond(Response::text(404, "not found\n"));
    }
    (*handler)(std::move(request), [owed = replies_.owe(shared_from_this())](Response response) {
      owed->session->replies_.deliver(owed, std::move(response));
    });
  }

  friend class Replies;

  void fail_request(int status, const char* text) {
    set_phase(Phase::kBusy);
    keep_alive_ = false;
    linger_ = true;
    answers_head_ = false;
    route_ = "unmatched";
    started_ = std::chrono::steady_clock::now();
    respond(Response::text(status, text));
  }

  void respond(Response response) {
    record(response.status);
    const bool keep_alive = keep_alive_ && !server_->stopping;
    out_.clear();
    serialize_response(response, version_, keep_alive, out_, answers_head_);
    stream_.expires_after(server_->options.write_timeout);
    net::async_write(stream_, net::buffer(out_), beast::bind_front_handler(&Session::on_write, shared_from_this(), keep_alive));
  }

  void on_write(bool keep_alive, beast::error_code ec, std::size_t) {
    // A large page once should not pin its buffer for the connection's life.
    if (out_.capacity() > 64 * 1024) std::string().swap(out_);
    if (!ec && linger_) return linger();
    if (ec || !keep_alive) return close();
    do_read();
  }

  // After refusing a request mid-body, the client may still be sending. Closing at once
  // would reset the connection before it reads our answer, so we stop sending, then read
  // and discard for a short while (a "lingering close", as nginx does).
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    discard_.resize(16 * 1024);
    do_discard();
  }

  void do_discard() {
    stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->close();
      self->do_discard();
    });
  }

  void record(int status) {
    if (!server_->metrics) return;
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    // A connection mostly repeats one route and status (Slack's, kept alive): the series of
    // the last one are kept, so the next such request needs no label lookup.
    if (!series_.requests || series_.status != status || series_.route != route_) {
      series_.requests = &server_->metrics->counter("deputy_http_requests_total", {{"route", route_}, {"status", std::to_string(status)}});
      series_.duration = &server_->metrics->histogram("deputy_http_request_duration_seconds", {{"route", route_}});
      series_.route = route_;
      series_.status = status;
    }
    series_.requests->increment();
    series_.duration->observe(seconds);
  }

  // On the session's thread; the server counts idle sessions so that making room need not
  // look through them all for one.
  void set_phase(Phase phase) {
    const Phase was = phase_.exchange(phase, std::memory_order_relaxed);
    if (was == phase) return;
    count_phase(was, -1);
    count_phase(phase, +1);
  }
  void count_phase(Phase phase, int by) {
    std::atomic<size_t>* counter = phase == Phase::kIdle ? &server_->idle_sessions
                                   : phase == Phase::kBusy ? &server_->busy_sessions
                                                           : nullptr;
    if (counter) counter->fetch_add(static_cast<size_t>(by), std::memory_order_relaxed);
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  static constexpr size_t kReadChunk = 4096;

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::string out_;  // the response being written
  std::shared_ptr<Impl> server_;
  uint64_t id_;
  Replies& replies_;
  bool keep_alive_ = false;
  bool linger_ = false;
  std::vector<char> discard_;
  std::atomic<Phase> phase_{Phase::kReading};
  std::atomic<bool> shed_{false};
  bool first_request_ = true;
  unsigned version_ = 11;
  bool answers_head_ = false;
  std::string route_;
  std::chrono::steady_clock::time_point started_;
  struct {
    std::string route;
    int status = 0;
    metrics::Registry::Counter* requests = nullptr;
    metrics::Registry::Histogram* duration = nullptr;
  } series_;
};

void Server::Impl::Replies::write_waiting() {
  {
    std::lock_guard lock(mutex_);
    writing_.swap(waiting_);
  }
  for (auto& [owed, response] : writing_) {
    owed->session->respond(std::move(response));
    // The write is under way, and holds its session; the loop need not wait for whoever
    // still keeps the Reply.
    owed->work.reset();
  }
  writing_.clear();
}

namespace {

constexpr auto kLongestPause = std::chrono::milliseconds(1000);
constexpr auto kWarnEvery = std::chrono::seconds(10);
// After a minute without running out of files, the cap set by the files goes back to the
// configured one (the shortage may have been another process's, or passing).
constexpr auto kCapRecovers = std::chrono::minutes(1);

bool out_of_files(const beast::error_code& ec) {
  return ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
         ec == net::error::no_buffer_space || ec == net::error::no_memory;
}

void count(metrics::Registry::Counter* counter, double by = 1) {
  if (counter) counter->increment(by);
}

}  // namespace

void Server::Impl::do_accept() {
  if (stopping) return;
  if (cap < configured_cap && std::chrono::steady_clock::now() - ran_out_of_files_at > kCapRecovers) cap = configured_cap;
  const size_t limit = cap;
  // At the cap, a connection is taken only when another can make way for it: one that is
  // not being answered. Otherwise the new ones wait in the kernel's queue a while.
  if (const size_t staying = staying_connections(); staying >= limit) {
    size_t can_make_way = staying - std::min(staying, busy_sessions.load(std::memory_order_relaxed));
    // The newest, still on its first request, is the one way was last made for.
    if (auto last = newest.lock(); last && last->phase() == Session::Phase::kReading && !last->marked_shed() && can_make_way > 0)
      --can_make_way;
    if (can_make_way == 0) {
      count(counters.refused_at_cap);
      size_t unsaid = 0;
      if (at_cap_warning.due(kWarnEvery, unsaid))
        spdlog::warn("{} connections open, the most allowed (server.max_connections), and every one has a request being "
                     "answered: new connections wait{}",
                     limit, unsaid ? fmt::format(" (happened {} more times in the last {} s)", unsaid, kWarnEvery.count()) : "");
      return pause_accepting();
    }
  }
  size_t loop = next_context.fetch_add(1, std::memory_order_relaxed) % (more_contexts.size() + 1);
  acceptor.async_accept(context(loop), beast::bind_front_handler(&Impl::on_accept, shared_from_this(), loop));
}

void Server::Impl::on_accept(size_t loop, beast::error_code ec, Socket socket) {
  if (stopping || !acceptor.is_open()) return;
  if (ec) {
    // Accepting again at once would fail again at once: with no files left, that loop once
    // wrote millions of lines and held a core. Pause instead, and make room.
    if (out_of_files(ec)) return ran_out_of_files(ec);
    count(counters.refused_accept_error);
    size_t unsaid = 0;
    if (accept_error_warning.due(kWarnEvery, unsaid))
      spdlog::warn("accept failed: {}{}", ec.message(),
                   unsaid ? fmt::format(" (and {} more times in the last {} s)", unsaid, kWarnEvery.count()) : "");
    return pause_accepting();
  }
  pause_for = std::chrono::milliseconds(0);
  std::shared_ptr<Session> session;
  {
    std::lock_guard lock(sessions_mutex);
    uint64_t id = next_session_id++;
    session = std::make_shared<Session>(std::move(socket), shared_from_this(), id, *replies[loop]);
    sessions.emplace(id, session);
  }
  newest = session;
  session->start();
  // At the cap, the new connection is taken all the same (the files' reserve has room for
  // it) and an idle or slow one makes way; do_accept pauses if none could.
  if (const size_t staying = staying_connections(); staying > cap) shed(staying - cap);
  do_accept();
}

void Server::Impl::pause_accepting() {
  pause_for = std::clamp(pause_for * 2, std::chrono::milliseconds(10), std::chrono::milliseconds(kLongestPause));
  accept_pause.expires_after(pause_for);
  accept_pause.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) self->do_accept();
  });
}

void Server::Impl::ran_out_of_files(const beast::error_code& ec) {
  count(counters.refused_out_of_files);
  ran_out_of_files_at = std::chrono::steady_clock::now();
  // The process holds as many connections as it could open, less an eighth left for the
  // database, outbound calls and files.
  const size_t open = staying_connections();
  const size_t fits = std::max<size_t>(16, open - open / 8);
  if (fits < cap) cap = fits;
  const size_t closed = shed(open > cap ? open - cap + 1 : 1);
  size_t unsaid = 0;
  if (out_of_files_warning.due(kWarnEvery, unsaid)) {
    spdlog::warn("cannot accept connections: {} (open-file limit {}); {} connections open, now at most {}; closed {} idle or "
                 "slow ones and pausing new ones{}",
                 ec.message(), open_file_limit(), open, cap.load(), closed,
                 unsaid ? fmt::format(" (ran out {} more times in the last {} s)", unsaid, kWarnEvery.count()) : "");
  }
  pause_accepting();
}

size_t Server::Impl::shed(size_t wanted) {
  std::vector<std::shared_ptr<Session>> idle, reading;
  {
    std::lock_guard lock(sessions_mutex);
    const uint64_t newest = sessions.empty() ? 0 : sessions.rbegin()->first;
    for (const auto& [id, weak] : sessions) {
      auto session = weak.lock();
      if (!session || session->marked_shed()) continue;
      if (id == newest && session->phase() == Session::Phase::kReading) continue;
      switch (session->phase()) {
        case Session::Phase::kIdle: idle.push_back(std::move(session)); break;
        case Session::Phase::kReading:
          // The map is in accept order: the first found have waited longest.
          if (reading.size() < wanted) reading.push_back(std::move(session));
          break;
        case Session::Phase::kBusy: break;
      }
      if (idle.size() >= wanted) break;
      // With no idle one to look for, the oldest readers found so far are the ones.
      if (reading.size() >= wanted && idle_sessions.load(std::memory_order_relaxed) == 0) break;
    }
  }
  size_t closed = 0;
  for (auto* group : {&idle, &reading}) {
    for (auto& session : *group) {
      if (closed == wanted) break;
      if (!session->mark_shed()) continue;
      session->shed();
      count(group == &idle ? counters.shed_idle : counters.shed_reading);
      ++closed;
    }
  }
  return closed;
}

Server::Server(ServerOptions options, Router router, metrics::Registry* metrics)
    : impl_(std::make_shared<Impl>(options, std::move(router), metrics)) {
  if (metrics) {
    metrics->describe("deputy_http_requests_total", "counter", "HTTP requests by route and status.");
    metrics->describe("deputy_http_request_duration_seconds", "histogram", "Time from request read to response written.");
    metrics->describe("deputy_http_connections_shed_total", "counter",
                      "Connections closed to make room for new ones, by what they were doing (idle: kept alive between "
                      "requests; reading: waiting for a whole request).");
    metrics->describe("deputy_http_connections_refused_total", "counter",
                      "Times accepting paused: at the connection cap with every connection busy, out of open files, or "
                      "another accept error.");
    auto& c = impl_->counters;
    c.shed_idle = &metrics->counter("deputy_http_connections_shed_total", {{"state", "idle"}});
    c.shed_reading = &metrics->counter("deputy_http_connections_shed_total", {{"state", "reading"}});
    c.refused_at_cap = &metrics->counter("deputy_http_connections_refused_total", {{"reason", "at_cap"}});
    c.refused_out_of_files = &metrics->counter("deputy_http_connections_refused_total", {{"reason", "out_of_files"}});
    c.refused_accept_error = &metrics->counter("deputy_http_connections_refused_total", {{"reason", "accept_error"}});
    metrics->describe("deputy_http_connections", "gauge", "Inbound connections open (state=open) and the cap in force (state=max).");
    metrics->gauge_callback("deputy_http_connections", [weak = std::weak_ptr<Impl>(impl_)] {
      std::vector<std::pair<metrics::Labels, double>> values;
      if (auto impl = weak.lock()) {
        values.push_back({{{"state", "open"}}, double(impl->open_connections())});
        const size_t cap = impl->cap;
        if (cap != std::numeric_limits<size_t>::max()) values.push_back({{{"state", "max"}}, double(cap)});
      }
      return values;
    });
  }
}

Server::~Server() = default;

Status Server::listen(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto address = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return InvalidArgument("cannot listen on '" + host + "': not an IP address");
  tcp::endpoint endpoint(address, port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  return Status::Ok();
}

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }
size_t Server::open_connections() const { return impl_->open_connections(); }
size_t Server::max_connections() const { return impl_->cap; }

void Server::run(unsigned threads) {
  // Every context, the acceptor's too, runs until stop() has closed the acceptor: a context
  // that ran out of work would never run the closing task posted to it.
  impl_->keep_running.push_back(net::make_work_guard(impl_->ioc));
  for (unsigned i = 1; i < threads; ++i) {
    impl_->more_contexts.push_back(std::make_unique<net::io_context>(1));
    // Without connections yet, a context would return from run() at once.
    impl_->keep_running.push_back(net::make_work_guard(*impl_->more_contexts.back()));
  }
  for (size_t n = 0; n <= impl_->more_contexts.size(); ++n) impl_->replies.push_back(std::make_unique<Impl::Replies>(impl_->context(n)));
  impl_->do_accept();
  std::vector<std::thread> pool;
  for (auto& context : impl_->more_contexts) {
    pool.emplace_back([&context] {
      name_this_thread("deputy-http");
      context->run();
    });
  }
  impl_->ioc.run();
  for (auto& t : pool) t.join();
}

void Server::stop() {
  auto impl = impl_;
  if (impl->stopping.exchange(true)) return;
  // Posted while every context still runs: a task posted to a context that has returned
  // from run() would never run, and would keep its session, and so the server, alive.
  std::vector<std::shared_ptr<Impl::Session>> live;
  {
    std::lock_guard lock(impl->sessions_mutex);
    for (auto& [id, weak] : impl->sessions) {
      if (auto session = weak.lock()) live.push_back(session);
    }
  }
  for (auto& session : live) session->close_if_idle();
  net::post(impl->acceptor.get_executor(), [impl] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->accept_pause.cancel();
    // The contexts may now end once their connections have.
    for (auto& guard : impl->keep_running) guard.reset();
  });
}

}  // namespace deputy::http
