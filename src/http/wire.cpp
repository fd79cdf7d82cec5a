#include "http/wire.h"

#include <boost/beast/http/status.hpp>

#include <charconv>

namespace deputy::http {
namespace {

void append_field_value(std::string& out, std::string_view value) {
  for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
}

void append_number(std::string& out, uint64_t n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

}  // namespace

void serialize_response(const Response& response, unsigned version, bool keep_alive, std::string& out) {
  const int status = (response.status >= 100 && response.status <= 999) ? response.status : 500;
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<uint64_t>(status));
  out += ' ';
  auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\nServer: Deputy\r\nContent-Type: ");
  append_field_value(out, response.content_type);
  for (const auto& [name, value] : response.headers) {
    out.append("\r\n");
    append_field_value(out, name);
    out.append(": ");
    append_field_value(out, value);
  }
  out.append("\r\nContent-Length: ");
  append_number(out, response.body.size());
  if (version == 10 && keep_alive) out.append("\r\nConnection: keep-alive");
  if (version != 10 && !keep_alive) out.append("\r\nConnection: close");
  out.append("\r\n\r\n");
  out.append(response.body);
}

}  // namespace deputy::http
