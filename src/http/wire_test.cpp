#include "http/wire.h"

#include <gtest/gtest.h>

namespace deputy::http {
namespace {

std::string bytes(const Response& response, unsigned version, bool keep_alive, bool answers_head = false) {
  std::string out;
  serialize_response(response, version, keep_alive, out, answers_head);
  return out;
}

TEST(HttpWire, AnEmptyAckOnKeepAlive) {
  EXPECT_EQ(bytes(Response::text(200, ""), 11, true),
            "HTTP/1.1 200 OK\r\nServer: Deputy\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpWire, BodyHeadersAndClose) {
  Response redirect = Response::redirect("https://example.com/a?b=c");
  EXPECT_EQ(bytes(redirect, 11, false),
            "HTTP/1.1 302 Found\r\nServer: Deputy\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Location: https://example.com/a?b=c\r\nCache-Control: no-store\r\nContent-Length: 12\r\n"
            "Connection: close\r\n\r\nRedirecting\n");
}

TEST(HttpWire, Http10SaysKeepAliveOnlyWhenItKeepsTheConnection) {
  EXPECT_EQ(bytes(Response::json(404, "{}"), 10, true),
            "HTTP/1.0 404 Not Found\r\nServer: Deputy\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Connection: keep-alive\r\n\r\n{}");
  EXPECT_EQ(bytes(Response::json(503, ""), 10, false),
            "HTTP/1.0 503 Service Unavailable\r\nServer: Deputy\r\nContent-Type: application/json\r\nContent-Length: 0\r\n\r\n");
}

TEST(HttpWire, LineBreaksInAHeaderValueCannotStartAnotherHeader) {
  Response response = Response::redirect("https://example.com/\r\nSet-Cookie: stolen=1");
  std::string out = bytes(response, 11, true);
  EXPECT_EQ(out.find("\r\nSet-Cookie"), std::string::npos) << out;
  EXPECT_NE(out.find("Location: https://example.com/  Set-Cookie: stolen=1\r\n"), std::string::npos) << out;
}

TEST(HttpWire, HeadKeepsTheLengthButNotTheBodyAndSomeStatusesHaveNeither) {
  EXPECT_EQ(bytes(Response::text(405, "method not allowed\n"), 11, true, /*answers_head=*/true),
            "HTTP/1.1 405 Method Not Allowed\r\nServer: Deputy\r\nContent-Type: text/plain; charset=utf-8\r\n"
            "Content-Length: 19\r\n\r\n");
  for (int status : {204, 304}) {
    std::string out = bytes(Response::text(status, "ignored"), 11, true);
    EXPECT_EQ(out.find("Content-Length"), std::string::npos) << out;
    EXPECT_EQ(out.substr(out.size() - 4), "\r\n\r\n") << out;
  }
  EXPECT_EQ(bytes(Response::text(101, ""), 11, true).rfind("HTTP/1.1 500 Internal Server Error\r\n", 0), 0u);
}

TEST(HttpWire, FramingHeadersComeOnlyFromTheResponseItself) {
  Response response = Response::text(200, "abc");
  response.headers = {{"content-length", "99"}, {"Transfer-Encoding", "chunked"}, {"CONNECTION", "upgrade"},
                      {"Content-Type", "text/html"}, {"Server", "other"}, {"X-Kept", "1"}};
  EXPECT_EQ(bytes(response, 11, true),
            "HTTP/1.1 200 OK\r\nServer: Deputy\r\nContent-Type: text/plain; charset=utf-8\r\nX-Kept: 1\r\n"
            "Content-Length: 3\r\n\r\nabc");
}

TEST(HttpWire, AppendsToWhatIsAlreadyThere) {
  std::string out = "x";
  serialize_response(Response::text(431, "too large\n"), 11, false, out);
  EXPECT_EQ(out.substr(0, 41), "xHTTP/1.1 431 Request Header Fields Too L");
  EXPECT_EQ(out.substr(out.size() - 10), "too large\n");
}

}  // namespace
}  // namespace deputy::http
