// HTTP header lists, shared by the inbound server (server.h) and the outbound client
// (client.h), which are otherwise separate libraries.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace deputy::http {

// In the order sent or received; names as written (compare them case-insensitively).
using Headers = std::vector<std::pair<std::string, std::string>>;

}  // namespace deputy::http
