// GET /oauth/start and /oauth/callback: the login flow's answers as browser pages (plain,
// readable, free of secrets, never cached) and the cookie that binds a login to its browser.
#pragma once

#include <string>

#include "http/server.h"
#include "oauth/login_flow.h"

namespace deputy::server {

class LoginPages {
 public:
  // `secure_cookie`: the public URL is https, so the browser cookie is sent only over TLS.
  LoginPages(oauth::LoginFlow& flow, bool secure_cookie) : flow_(flow), secure_cookie_(secure_cookie) {}

  // Both may wait on the database and the app (discovery, the token endpoint): they run on
  // the blocking pool.
  void handle_start(const http::Request& request, http::Reply reply);
  void handle_callback(const http::Request& request, http::Reply reply);

 private:
  http::Response render(const oauth::LoginPage& page) const;

  oauth::LoginFlow& flow_;
  bool secure_cookie_;
};

// The value of cookie `name` in a Cookie header; empty when absent.
std::string cookie_value(const std::string& header, const std::string& name);
std::string html_escape(const std::string& text);

}  // namespace deputy::server
