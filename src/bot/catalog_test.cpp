#include "bot/catalog.h"

#include <gtest/gtest.h>

namespace deputy::bot {
namespace {

TEST(Suggest, FindsTheNearestCommand) {
  std::vector<std::string> known = {"help", "connections", "create opportunity", "create incident"};
  EXPECT_EQ(suggest("hlep", known), "help");
  EXPECT_EQ(suggest("conections", known), "connections");
  EXPECT_EQ(suggest("create oportunity Acme 5000", known), "create opportunity");
  EXPECT_EQ(suggest("create incidnet printer broken", known), "create incident");
  EXPECT_EQ(suggest("deploy production", known), "");
  EXPECT_EQ(suggest("", known), "");
}

}  // namespace
}  // namespace deputy::bot
