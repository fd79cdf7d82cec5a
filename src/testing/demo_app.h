// The OAuth2 app unit tests connect to: its token and API endpoints are never reached on the
// network (tests answer through fakes).
#pragma once

#include "oauth/apps.h"

namespace deputy::testing {

inline oauth::App demo_app() {
  oauth::App app;
  app.id = "demo";
  app.display_name = "Demo";
  app.client_id = "deputy";
  app.client_secret = "secret";
  app.token_url = "http://idp.test/token";
  app.revoke_url = "http://idp.test/revoke";
  app.api_base_url = "http://api.test";
  return app;
}

}  // namespace deputy::testing
