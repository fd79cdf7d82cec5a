#include "slack/signature.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace deputy::slack {
namespace {

// The worked example from Slack's "Verifying requests from Slack" page.
constexpr const char* kSecret = "8f742231b10e8888abcd99yyyzzz85a5";
constexpr const char* kTimestamp = "1531420618";
constexpr const char* kBody =
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar"
    "&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com"
    "%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121."
    "803a0bc887a14d10d2c447fce8b6703c";
constexpr const char* kSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
constexpr int64_t kNow = 1531420618 + 30;

TEST(SlackSignature, ComputesSlacksDocumentedExample) {
  EXPECT_EQ(RequestVerifier(kSecret).sign(kTimestamp, kBody), kSignature);
}

TEST(SlackSignature, AcceptsSlacksDocumentedExample) {
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, kBody, kNow), SignatureVerdict::kValid);
}

TEST(SlackSignature, RefusesAnyChangeToTheBody) {
  std::string body = kBody;
  for (size_t i : {size_t{0}, body.size() / 2, body.size() - 1}) {
    std::string changed = body;
    changed[i] = changed[i] == 'a' ? 'b' : 'a';
    EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, changed, kNow), SignatureVerdict::kMismatch) << i;
  }
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, body + "&x=1", kNow), SignatureVerdict::kMismatch);
}

TEST(SlackSignature, RefusesAChangedTimestampOrSecret) {
  EXPECT_EQ(RequestVerifier(kSecret).verify("1531420619", kSignature, kBody, kNow), SignatureVerdict::kMismatch);
  EXPECT_EQ(RequestVerifier("8f742231b10e8888abcd99yyyzzz85a6").verify(kTimestamp, kSignature, kBody, kNow),
            SignatureVerdict::kMismatch);
}

TEST(SlackSignature, RefusesATamperedSignature) {
  std::string signature = kSignature;
  signature.back() = '4';
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, signature, kBody, kNow), SignatureVerdict::kMismatch);
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, "v1=" + signature.substr(3), kBody, kNow), SignatureVerdict::kMismatch);
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, "v0=", kBody, kNow), SignatureVerdict::kMismatch);
}

TEST(SlackSignature, RefusesTimestampsOutsideFiveMinutes) {
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, kBody, 1531420618 + 301), SignatureVerdict::kStaleTimestamp);
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, kBody, 1531420618 - 301), SignatureVerdict::kStaleTimestamp);
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, kSignature, kBody, 1531420618 + 300), SignatureVerdict::kValid);
}

TEST(SlackSignature, RefusesMissingOrMalformedHeadersAndMissingSecret) {
  EXPECT_EQ(RequestVerifier("").verify(kTimestamp, kSignature, kBody, kNow), SignatureVerdict::kNoSecretConfigured);
  EXPECT_EQ(RequestVerifier(kSecret).verify("", kSignature, kBody, kNow), SignatureVerdict::kMissingHeaders);
  EXPECT_EQ(RequestVerifier(kSecret).verify(kTimestamp, "", kBody, kNow), SignatureVerdict::kMissingHeaders);
  EXPECT_EQ(RequestVerifier(kSecret).verify("15314x0618", kSignature, kBody, kNow), SignatureVerdict::kMalformedTimestamp);
  EXPECT_EQ(RequestVerifier(kSecret).verify("-1", kSignature, kBody, kNow), SignatureVerdict::kStaleTimestamp);
}

TEST(SlackSignature, VerifierKeepsItsKeyAcrossRequestsAndAlongsideAnotherSecret) {
  RequestVerifier slack(kSecret);
  RequestVerifier other("another-secret");
  // Alternating makes each thread's keyed HMAC change hands on every call.
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(slack.verify(kTimestamp, kSignature, kBody, kNow), SignatureVerdict::kValid) << i;
    EXPECT_EQ(other.verify(kTimestamp, kSignature, kBody, kNow), SignatureVerdict::kMismatch) << i;
    EXPECT_EQ(other.verify(kTimestamp, other.sign(kTimestamp, kBody), kBody, kNow), SignatureVerdict::kValid) << i;
  }
  // A request that fails must not leave state that spoils the next one.
  EXPECT_EQ(slack.verify(kTimestamp, kSignature, std::string(kBody) + "x", kNow), SignatureVerdict::kMismatch);
  EXPECT_EQ(slack.verify(kTimestamp, kSignature, kBody, kNow), SignatureVerdict::kValid);
}

TEST(SlackSignature, VerifierGivesTheSameAnswersFromSeveralThreads) {
  RequestVerifier verifier(kSecret);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (verifier.verify(kTimestamp, kSignature, kBody, kNow) != SignatureVerdict::kValid) ++wrong;
        if (verifier.verify(kTimestamp, kSignature, "tampered", kNow) != SignatureVerdict::kMismatch) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace deputy::slack
