// HTTP/1.x response bytes, written directly: an ack is a status line, three headers and
// usually no body, and Beast's generic serializer cost more per ack than the socket write.
#pragma once

#include <string>

#include "http/server.h"

namespace deputy::http {

// Appends the whole response (head and body) to `out`. `version` is 10 or 11 as in the
// request; the Connection header is written only where it differs from that version's
// default. CR and LF inside header values become spaces, so no value can start a header.
// An answer to HEAD keeps its Content-Length but not its body; 204 and 304 have neither
// (RFC 9110 §8.6, RFC 9112 §6.3); a status below 200 is sent as 500. Content-Length,
// Transfer-Encoding, Connection, Content-Type and Server among response.headers are
// ignored: they are written from the response itself.
void serialize_response(const Response& response, unsigned version, bool keep_alive, std::string& out,
                        bool answers_head = false);

}  // namespace deputy::http
