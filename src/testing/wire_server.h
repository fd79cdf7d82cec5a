// A small HTTP/1.1 server for testing outbound clients on the wire: it counts connections,
// holds answers until told, hangs or hangs up on request, and speaks TLS with certificates
// made on the spot (testing/certificates.h). Blocking, a thread per connection: test only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace deputy::testing {

class WireServer {
 public:
  struct Seen {
    int connection = 0;  // which accepted connection it came on, from 1
    std::string method;
    std::string target;
    std::string host;
    std::string head;  // the request line and headers as received
    std::string body;
  };
  enum class Behaviour {
    kAnswer,       // 200 with body "<method> <target>"
    kHold,         // answer only once release() is called
    kHangUp,       // read the request, close without answering
    kNeverAnswer,  // read the request and keep the connection silent
  };

  // `tls_certificate_pem` and `tls_key_pem` given: HTTPS.
  explicit WireServer(std::string tls_certificate_pem = "", std::string tls_key_pem = "")
      : acceptor_(io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    if (!tls_certificate_pem.empty()) {
      tls_ = std::make_unique<boost::asio::ssl::context>(boost::asio::ssl::context::tls_server);
      tls_->use_certificate_chain(boost::asio::buffer(tls_certificate_pem));
      tls_->use_private_key(boost::asio::buffer(tls_key_pem), boost::asio::ssl::context::pem);
    }
    acceptor_thread_ = std::thread([this] { accept_loop(); });
  }
  ~WireServer() {
    stopping_ = true;
    release();
    boost::system::error_code ignored;
    {
      // A blocking accept() does not return when the acceptor is closed from another thread.
      boost::asio::ip::tcp::socket wake(io_);
      wake.connect({boost::asio::ip::make_address("127.0.0.1"), port()}, ignored);
      acceptor_thread_.join();
    }
    acceptor_.close(ignored);
    {
      std::lock_guard lock(mutex_);
      // shutdown() wakes a thread blocked reading; close() alone does not.
      for (auto& s : open_) s->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    }
    for (auto& t : connection_threads_) t.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + path;
  }
  // Closes connections that stay idle this long between requests (0: never).
  void close_idle_after(std::chrono::milliseconds idle) { idle_close_ms_ = static_cast<int>(idle.count()); }
  // Says so in each answer ("Keep-Alive: timeout=N"), as Node and Apache do (0: says nothing).
  void announce_idle_timeout(std::chrono::seconds idle) { announced_idle_s_ = static_cast<int>(idle.count()); }
  void set_behaviour(Behaviour b) {
    std::lock_guard lock(mutex_);
    behaviour_ = b;
  }
  // Answers every held request (and any that arrive while released).
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  int connections() const { return accepted_.load(); }
  int held_now() const { return held_.load(); }
  int most_held() const { return most_held_.load(); }
  std::vector<Seen> seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  // Waits until `count` requests are being held (false on timeout).
  bool wait_for_held(int count, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return held_.load() >= count; });
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      auto socket = std::make_shared<boost::asio::ip::tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) return;
      int id = ++accepted_;
      std::lock_guard lock(mutex_);
      open_.push_back(socket);
      connection_threads_.emplace_back([this, socket, id] {
        if (!tls_) {
          serve(*socket, id);
        } else {
          boost::asio::ssl::stream<boost::asio::ip::tcp::socket&> stream(*socket, *tls_);
          boost::system::error_code handshake;
          stream.handshake(boost::asio::ssl::stream_base::server, handshake);
          if (!handshake) serve(stream, id);
        }
        // Under the lock: the destructor may be shutting the same socket down to wake it.
        std::lock_guard done(mutex_);
        boost::system::error_code ignored;
        socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        socket->close(ignored);
        std::erase(open_, socket);
      });
    }
  }

  template <typename Stream>
  void serve(Stream& stream, int connection) {
    boost::asio::streambuf buffer;
    bool kept_alive = false;  // a request was answered on this connection
    for (; !stopping_; kept_alive = true) {
      boost::system::error_code ec;
      // Like a server's keep-alive timeout: a connection idle that long between requests is
      // closed. A new connection's first request is waited for as servers do, far longer: a
      // client slowed down (by a sanitizer, say) must not see its fresh connection closed.
      if (const int idle = idle_close_ms_.load(); idle > 0 && kept_alive && buffer.size() == 0) {
        pollfd waiting{static_cast<int>(native_socket(stream)), POLLIN, 0};
        if (::poll(&waiting, 1, idle) == 0) return;
      }
      boost::asio::read_until(stream, buffer, "\r\n\r\n", ec);
      if (ec) return;
      std::string head(boost::asio::buffers_begin(buffer.data()), boost::asio::buffers_end(buffer.data()));
      head.resize(head.find("\r\n\r\n") + 4);
      buffer.consume(head.size());
      Seen seen;
      seen.connection = connection;
      seen.head = head;
      seen.method = head.substr(0, head.find(' '));
      seen.target = head.substr(seen.method.size() + 1, head.find(' ', seen.method.size() + 1) - seen.method.size() - 1);
      size_t length = 0;
      if (auto at = find_header(head, "content-length"); at) length = std::stoul(*at);
      if (auto at = find_header(head, "host"); at) seen.host = *at;
      if (buffer.size() < length) boost::asio::read(stream, buffer, boost::asio::transfer_exactly(length - buffer.size()), ec);
      if (ec) return;
      seen.body.assign(boost::asio::buffers_begin(buffer.data()), boost::asio::buffers_begin(buffer.data()) + static_cast<long>(length));
      buffer.consume(length);
      Behaviour behaviour;
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(seen);
        behaviour = behaviour_;
      }
      if (behaviour == Behaviour::kHangUp) return;
      if (behaviour == Behaviour::kNeverAnswer) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stopping_.load(); });
        return;
      }
      if (behaviour == Behaviour::kHold) {
        std::unique_lock lock(mutex_);
        int now = ++held_;
        int most = most_held_.load();
        while (now > most && !most_held_.compare_exchange_weak(most, now)) {
        }
        changed_.notify_all();
        changed_.wait(lock, [&] { return released_ || stopping_.load(); });
        --held_;
      }
      std::string body = seen.method + " " + seen.target;
      std::string keep_alive;
      if (const int idle = announced_idle_s_.load(); idle > 0) keep_alive = "Keep-Alive: timeout=" + std::to_string(idle) + "\r\n";
      std::string answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + keep_alive + "Content-Length: " + std::to_string(body.size()) +
                           "\r\n\r\n" + body;
      boost::asio::write(stream, boost::asio::buffer(answer), ec);
      if (ec) return;
    }
  }

  static std::optional<std::string> find_header(const std::string& head, const std::string& lower_name) {
    size_t line = head.find("\r\n");
    while (line != std::string::npos && line + 2 < head.size()) {
      size_t start = line + 2, end = head.find("\r\n", start);
      std::string text = head.substr(start, end - start);
      size_t colon = text.find(':');
      if (colon != std::string::npos) {
        std::string name = text.substr(0, colon);
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name == lower_name) {
          std::string value = text.substr(colon + 1);
          value.erase(0, value.find_first_not_of(' '));
          return value;
        }
      }
      line = end;
    }
    return std::nullopt;
  }

  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::unique_ptr<boost::asio::ssl::context> tls_;
  std::thread acceptor_thread_;
  std::vector<std::thread> connection_threads_;
  std::vector<std::shared_ptr<boost::asio::ip::tcp::socket>> open_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Seen> seen_;
  Behaviour behaviour_ = Behaviour::kAnswer;
  std::atomic<int> idle_close_ms_{0};
  std::atomic<int> announced_idle_s_{0};
  static int native_socket(boost::asio::ip::tcp::socket& s) { return s.native_handle(); }
  template <typename Tls>
  static int native_socket(Tls& s) { return s.next_layer().native_handle(); }
  bool released_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::atomic<int> held_{0};
  std::atomic<int> most_held_{0};
};

}  // namespace deputy::testing
