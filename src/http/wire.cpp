#include "http/wire.h"

#include <boost/beast/http/status.hpp>

#include <charconv>

#include "common/encoding.h"

namespace deputy::http {
namespace {

void append_field_value(std::string& out, std::string_view value) {
  for (char c : value) out += (c == '\r' || c == '\n') ? ' ' : c;
}

// Framing and the fields set from Response itself come from here only: a second
// Content-Length from a handler would let a client or proxy read the answer two ways.
bool written_here(std::string_view name) {
  for (std::string_view field : {"Content-Length", "Transfer-Encoding", "Connection", "Content-Type", "Server"}) {
    if (equal_ignoring_ascii_case(name, field)) return true;
  }
  return false;
}

void append_number(std::string& out, uint64_t n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

}  // namespace

void serialize_response(const Response& response, unsigned version, bool keep_alive, std::string& out,
                        bool answers_head) {
  // A 1xx is never a final answer, and a client given one would wait for another.
  const int status = (response.status >= 200 && response.status <= 999) ? response.status : 500;
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  append_number(out, static_cast<uint64_t>(status));
  out += ' ';
  auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  out.append(reason.data(), reason.size());
  out.append("\r\nServer: Deputy\r\nContent-Type: ");
  append_field_value(out, response.content_type);
  for (const auto& [name, value] : response.headers) {
    if (written_here(name)) continue;
    out.append("\r\n");
    append_field_value(out, name);
    out.append(": ");
    append_field_value(out, value);
  }
  const bool bodiless_status = status == 204 || status == 304;
  if (!bodiless_status) {
    out.append("\r\nContent-Length: ");
    append_number(out, response.body.size());
  }
  if (version == 10 && keep_alive) out.append("\r\nConnection: keep-alive");
  if (version != 10 && !keep_alive) out.append("\r\nConnection: close");
  out.append("\r\n\r\n");
  if (!bodiless_status && !answers_head) out.append(response.body);
}

}  // namespace deputy::http
