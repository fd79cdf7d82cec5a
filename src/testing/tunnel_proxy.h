// An HTTP proxy that only tunnels (CONNECT), as the ones companies put in front of the internet
// do for https: it answers 200, then copies bytes both ways, so TLS runs end to end through it.
// It records each CONNECT's head, and can demand credentials. Blocking, threads: test only.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace deputy::testing {

class TunnelProxy {
 public:
  // `required_authorization` given ("Basic …"): a CONNECT without it gets a 407.
  explicit TunnelProxy(std::string required_authorization = "")
      : required_(std::move(required_authorization)),
        acceptor_(io_, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~TunnelProxy() {
    stopping_ = true;
    boost::system::error_code ignored;
    {
      boost::asio::ip::tcp::socket wake(io_);
      wake.connect({boost::asio::ip::make_address("127.0.0.1"), port()}, ignored);
    }
    thread_.join();
    {
      std::lock_guard lock(mutex_);
      for (auto& s : open_) s->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    }
    for (auto& t : pipes_) t.join();
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const std::string& credentials = "") const {
    return "http://" + (credentials.empty() ? "" : credentials + "@") + "127.0.0.1:" + std::to_string(port());
  }
  std::vector<std::string> connects() {
    std::lock_guard lock(mutex_);
    return connects_;
  }

 private:
  using Socket = std::shared_ptr<boost::asio::ip::tcp::socket>;

  void accept_loop() {
    while (!stopping_) {
      auto client = std::make_shared<boost::asio::ip::tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*client, ec);
      if (ec || stopping_) return;
      std::lock_guard lock(mutex_);
      open_.push_back(client);
      pipes_.emplace_back([this, client] { tunnel(client); });
    }
  }

  void tunnel(const Socket& client) {
    boost::asio::streambuf buffer;
    boost::system::error_code ec;
    boost::asio::read_until(*client, buffer, "\r\n\r\n", ec);
    if (ec) return;
    std::string head(boost::asio::buffers_begin(buffer.data()), boost::asio::buffers_end(buffer.data()));
    head.resize(head.find("\r\n\r\n") + 4);
    buffer.consume(head.size());
    {
      std::lock_guard lock(mutex_);
      connects_.push_back(head);
    }
    if (head.rfind("CONNECT ", 0) != 0) return refuse(client, "405 Method Not Allowed");
    if (!required_.empty() && head.find("\r\nProxy-Authorization: " + required_ + "\r\n") == std::string::npos)
      return refuse(client, "407 Proxy Authentication Required");
    const std::string target = head.substr(8, head.find(' ', 8) - 8);
    const size_t colon = target.rfind(':');
    auto origin = std::make_shared<boost::asio::ip::tcp::socket>(io_);
    origin->connect({boost::asio::ip::make_address(target.substr(0, colon)), static_cast<uint16_t>(std::stoi(target.substr(colon + 1)))}, ec);
    if (ec) return refuse(client, "502 Bad Gateway");
    {
      std::lock_guard lock(mutex_);
      open_.push_back(origin);
    }
    boost::asio::write(*client, boost::asio::buffer(std::string("HTTP/1.1 200 Connection established\r\n\r\n")), ec);
    if (ec) return;
    std::thread back([client, origin] { copy(*origin, *client); });
    copy(*client, *origin);
    back.join();
  }

  static void copy(boost::asio::ip::tcp::socket& from, boost::asio::ip::tcp::socket& to) {
    char chunk[16384];
    boost::system::error_code ec;
    while (true) {
      const size_t n = from.read_some(boost::asio::buffer(chunk), ec);
      if (ec) break;
      boost::asio::write(to, boost::asio::buffer(chunk, n), ec);
      if (ec) break;
    }
    to.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  }

  static void refuse(const Socket& client, const std::string& status) {
    boost::system::error_code ignored;
    boost::asio::write(*client, boost::asio::buffer("HTTP/1.1 " + status + "\r\nContent-Length: 0\r\n\r\n"), ignored);
  }

  std::string required_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<Socket> open_;
  std::vector<std::thread> pipes_;
  std::vector<std::string> connects_;
  std::atomic<bool> stopping_{false};
};

}  // namespace deputy::testing
