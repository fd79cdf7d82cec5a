// The few browser pages of the login flow: plain, readable, and free of secrets.
#pragma once

#include <string>

namespace deputy::oauth {

std::string html_escape(const std::string& text);
// title and message are escaped here; `extra_html` is trusted markup built by the caller.
std::string page(const std::string& title, const std::string& message, const std::string& extra_html = "");

}  // namespace deputy::oauth
