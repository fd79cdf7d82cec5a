#include "server/login_pages.h"

#include <gtest/gtest.h>

namespace deputy::server {
namespace {

TEST(LoginPages, TheLoginCookieIsReadByItsWholeName) {
  EXPECT_EQ(cookie_value("theme=dark; deputy_login=abc; other=1", "deputy_login"), "abc");
  EXPECT_EQ(cookie_value("deputy_login=abc", "deputy_login"), "abc");
  EXPECT_EQ(cookie_value("deputy_login2=evil; x=1", "deputy_login"), "") << "a longer name is another cookie";
  EXPECT_EQ(cookie_value("", "deputy_login"), "");
  EXPECT_EQ(cookie_value("x_deputy_login=evil", "deputy_login"), "");
}

TEST(LoginPages, TextOnAPageIsEscaped) {
  EXPECT_EQ(html_escape("<script>\"a\" & 'b'</script>"), "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;");
}

}  // namespace
}  // namespace deputy::server
