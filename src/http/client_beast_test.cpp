#include "http/client_beast.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>

#include <cstdlib>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "testing/certificates.h"
#include "testing/temp_dir.h"
#include "testing/tunnel_proxy.h"
#include "testing/wire_server.h"

namespace deputy::http {
namespace {

using namespace std::chrono_literals;
using testing::WireServer;

ClientRequest get(const std::string& url) {
  ClientRequest r;
  r.url = url;
  r.timeout = 5s;
  return r;
}

ClientRequest post(const std::string& url, std::string body = "{}") {
  ClientRequest r = get(url);
  r.method = "POST";
  r.body = std::move(body);
  return r;
}

// Starts `count` calls and returns futures of their outcomes.
std::vector<std::future<ClientOutcome>> start_many(Client& client, const ClientRequest& request, int count) {
  std::vector<std::future<ClientOutcome>> outcomes;
  for (int i = 0; i < count; ++i) {
    auto promise = std::make_shared<std::promise<ClientOutcome>>();
    outcomes.push_back(promise->get_future());
    client.start(request, [promise](ClientOutcome o) { promise->set_value(std::move(o)); });
  }
  return outcomes;
}

TEST(BeastClient, AnswersAndKeepsOneConnectionAliveForIdempotentCalls) {
  WireServer server;
  BeastClient client;
  for (int i = 0; i < 5; ++i) {
    ClientOutcome o = client.call(get(server.url("/a?n=" + std::to_string(i))));
    ASSERT_EQ(o.reached, Reached::kAnswered) << o.error.message();
    EXPECT_EQ(o.response.status, 200);
    EXPECT_EQ(o.response.body, "GET /a?n=" + std::to_string(i));
    EXPECT_EQ(o.response.header("content-type"), "text/plain");
  }
  EXPECT_EQ(server.connections(), 1);
  auto sync = client.send(get(server.url("/b")));
  ASSERT_TRUE(sync) << sync.status().message();
  EXPECT_EQ(sync->body, "GET /b");
}

TEST(BeastClient, ARequestThatMustNotRunTwiceIsNeverSentAgainAfterAReusedConnectionDies) {
  WireServer server;
  BeastClient client;
  ASSERT_EQ(client.call(get(server.url("/warm"))).reached, Reached::kAnswered);
  // The server reads the next request in full, then hangs up without answering: it may have
  // acted on it, so the request must not go again on a fresh connection.
  server.set_behaviour(WireServer::Behaviour::kHangUp);
  ClientOutcome outcome = client.call(post(server.url("/create"), R"({"name":"x"})"));
  EXPECT_EQ(outcome.reached, Reached::kMaybeSent) << outcome.error.message();
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u) << "sent once, not again";
  EXPECT_EQ(seen[1].connection, seen[0].connection) << "it rode the reused connection";
  EXPECT_EQ(seen[1].body, R"({"name":"x"})");

  // An idempotent one whose kept-alive connection dies goes once more, on a fresh connection.
  ClientRequest safe = post(server.url("/search"));
  safe.idempotent = true;
  server.set_behaviour(WireServer::Behaviour::kAnswer);
  ASSERT_EQ(client.call(get(server.url("/warm-again"))).reached, Reached::kAnswered);
  server.set_behaviour(WireServer::Behaviour::kHangUp);
  (void)client.call(safe);
  EXPECT_GT(server.seen().size(), 4u) << "an idempotent call may be retried";
}

TEST(BeastClient, ARequestThatMustNotRunTwiceStillRidesALiveKeptAliveConnection) {
  WireServer server;
  BeastClient client;
  ASSERT_EQ(client.call(get(server.url("/warm"))).reached, Reached::kAnswered);
  auto created = client.call(post(server.url("/create")));
  ASSERT_EQ(created.reached, Reached::kAnswered);
  EXPECT_EQ(created.response.body, "POST /create");
  ClientRequest patch = post(server.url("/update"), R"({"stage":"won"})");
  patch.method = "PATCH";
  ASSERT_EQ(client.call(patch).reached, Reached::kAnswered);
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[1].connection, seen[0].connection);
  EXPECT_EQ(seen[2].connection, seen[0].connection) << "no new connection (and no TIME_WAIT socket) per POST";
  EXPECT_EQ(seen[1].body, "{}");
  EXPECT_EQ(seen[2].method, "PATCH");
  EXPECT_EQ(seen[2].body, R"({"stage":"won"})");
}

TEST(BeastClient, ARequestThatMustNotRunTwiceWithNoBodyIsNeverSentAgainEither) {
  WireServer server;
  BeastClient client;
  ASSERT_EQ(client.call(get(server.url("/warm"))).reached, Reached::kAnswered);
  ASSERT_EQ(client.call(post(server.url("/approve"), "")).reached, Reached::kAnswered);
  server.set_behaviour(WireServer::Behaviour::kHangUp);
  EXPECT_EQ(client.call(post(server.url("/approve-again"), "")).reached, Reached::kMaybeSent);
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 3u) << "sent once, not again";
  EXPECT_EQ(seen[1].connection, seen[0].connection) << "it rides the kept-alive connection";
  EXPECT_EQ(seen[2].connection, seen[0].connection);
  EXPECT_NE(seen[1].head.find("\r\nContent-Length: 0\r\n"), std::string::npos) << seen[1].head;
}

TEST(BeastClient, AKeptAliveConnectionTheServerClosedIsNotGivenARequestThatMustNotRunTwice) {
  WireServer server;
  server.close_idle_after(50ms);
  BeastClient client;
  ASSERT_EQ(client.call(get(server.url("/warm"))).reached, Reached::kAnswered);
  std::this_thread::sleep_for(300ms);  // the server has closed it by now
  ClientOutcome created = client.call(post(server.url("/create")));
  ASSERT_EQ(created.reached, Reached::kAnswered) << "checked before use, not sent into a closed connection: " << created.error.message();
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_NE(seen[1].connection, seen[0].connection);
}

TEST(BeastClient, ClosesAPooledConnectionBeforeTheIdleTimeoutTheServerAnnounces) {
  WireServer server;
  server.announce_idle_timeout(2s);
  BeastClient client;  // its own limit (50 s) is far longer
  ASSERT_EQ(client.call(get(server.url("/1"))).reached, Reached::kAnswered);
  ASSERT_EQ(client.call(get(server.url("/2"))).reached, Reached::kAnswered);
  EXPECT_EQ(server.connections(), 1);
  std::this_thread::sleep_for(1200ms);  // past half the announced 2 s, before the server's own end
  ASSERT_EQ(client.call(post(server.url("/3"))).reached, Reached::kAnswered);
  EXPECT_EQ(server.connections(), 2) << "a connection the server is about to drop is not picked";
}

TEST(BeastClient, RefusesAHeaderThatWouldSplitTheRequest) {
  WireServer server;
  BeastClient client;
  ClientRequest r = get(server.url("/x"));
  r.headers = {{"X-Note", "a\r\nX-Injected: 1"}};
  ClientOutcome o = client.call(r);
  EXPECT_EQ(o.reached, Reached::kNotSent);
  EXPECT_NE(o.error.message().find("line break"), std::string::npos) << o.error.message();
  EXPECT_TRUE(server.seen().empty());
}

TEST(BeastClient, AUrlItCannotUseIsNeverSentAndNamedWithoutItsPath) {
  BeastClient client;
  for (const char* url : {"ftp://files.example/x", "http://user:secret@app.example/x", "http://app.example:99999/x", "not a url"}) {
    ClientOutcome o = client.call(get(url));
    EXPECT_EQ(o.reached, Reached::kNotSent) << url;
    EXPECT_EQ(o.error.code(), ErrorCode::kUnavailable) << url;
    EXPECT_EQ(o.error.message().find("secret"), std::string::npos) << o.error.message();
  }
}

TEST(BeastClient, AServerClosingIdleConnectionsNeverLeavesACallWaitingForItsDeadline) {
  WireServer server;
  server.close_idle_after(20ms);
  BeastClient client;
  // Calls come back just around the moment the server closes the connection they would reuse.
  int late = 0;
  for (int wave = 0; wave < 40; ++wave) {
    ClientRequest r = post(server.url("/ping"));
    r.idempotent = true;  // as Slack's calls are
    r.timeout = 2s;
    const auto started = std::chrono::steady_clock::now();
    for (auto& outcome : start_many(client, r, 40)) {
      ClientOutcome o = outcome.get();
      EXPECT_EQ(o.reached, Reached::kAnswered) << wave << ": " << o.error.message();
    }
    if (std::chrono::steady_clock::now() - started > 1s) ++late;
    std::this_thread::sleep_for(std::chrono::microseconds(19000 + (wave % 20) * 100));
  }
  EXPECT_EQ(late, 0) << "calls waited for their deadline on a connection the server had closed";
}

TEST(BeastClient, HundredsOfCallsWaitAtOnceWithoutAThreadEach) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kHold);
  ClientOptions options;
  options.max_connections_per_host = 300;
  BeastClient client(options);
  auto outcomes = start_many(client, get(server.url("/slow")), 200);
  // All 200 are at the server at once, while the client runs on its one loop thread.
  ASSERT_TRUE(server.wait_for_held(200)) << server.held_now() << " held";
  EXPECT_EQ(client.in_flight(), 200u);
  server.release();
  for (auto& f : outcomes) EXPECT_EQ(f.get().reached, Reached::kAnswered);
  EXPECT_EQ(client.in_flight(), 0u);
}

TEST(BeastClient, CapsConnectionsPerHost) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kHold);
  ClientOptions options;
  options.max_connections_per_host = 4;
  BeastClient client(options);
  auto outcomes = start_many(client, get(server.url("/capped")), 20);
  ASSERT_TRUE(server.wait_for_held(4));
  std::this_thread::sleep_for(200ms);  // room for a fifth, if the cap let one through
  EXPECT_EQ(server.most_held(), 4);
  server.release();
  for (auto& f : outcomes) EXPECT_EQ(f.get().reached, Reached::kAnswered);
  EXPECT_LE(server.connections(), 4);
}

TEST(BeastClient, CallsHeldBackByTheCapGoInTheOrderTheyStarted) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kHold);
  ClientOptions options;
  options.max_connections_per_host = 1;
  BeastClient client(options);
  std::vector<std::future<ClientOutcome>> outcomes = start_many(client, get(server.url("/0")), 1);
  ASSERT_TRUE(server.wait_for_held(1));
  for (int i = 1; i < 8; ++i) outcomes.push_back(std::move(start_many(client, get(server.url("/" + std::to_string(i))), 1)[0]));
  std::this_thread::sleep_for(100ms);
  server.release();
  for (auto& f : outcomes) EXPECT_EQ(f.get().reached, Reached::kAnswered);
  std::vector<std::string> order;
  for (const auto& seen : server.seen()) order.push_back(seen.target);
  EXPECT_EQ(order, (std::vector<std::string>{"/0", "/1", "/2", "/3", "/4", "/5", "/6", "/7"}));
  EXPECT_EQ(server.connections(), 1) << "one kept-alive connection, reused in turn";
}

TEST(BeastClient, TheTotalCapHoldsBackCallsToAnotherHostUntilASlotFrees) {
  WireServer busy, other;
  busy.set_behaviour(WireServer::Behaviour::kHold);
  ClientOptions options;
  options.max_connections = 2;
  options.max_connections_per_host = 2;
  BeastClient client(options);
  auto held = start_many(client, get(busy.url("/held")), 2);
  ASSERT_TRUE(busy.wait_for_held(2));
  auto waiting = start_many(client, get(other.url("/waiting")), 1);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(other.seen().empty()) << "both slots are taken";
  busy.release();
  EXPECT_EQ(waiting[0].get().reached, Reached::kAnswered);
  for (auto& f : held) EXPECT_EQ(f.get().reached, Reached::kAnswered);
}

TEST(BeastClient, TheDeadlineCountsTheWaitForAConnection) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kNeverAnswer);
  ClientOptions options;
  options.max_connections_per_host = 1;
  BeastClient client(options);
  ClientRequest first = get(server.url("/first"));
  first.timeout = 1000ms;
  ClientRequest second = get(server.url("/second"));
  second.timeout = 1500ms;
  const auto started = std::chrono::steady_clock::now();
  auto a = start_many(client, first, 1);
  auto b = start_many(client, second, 1);
  EXPECT_TRUE(a[0].get().deadline_passed);
  ClientOutcome late = b[0].get();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(late.deadline_passed);
  EXPECT_EQ(late.reached, Reached::kMaybeSent) << "it got the connection after 1 s and was sent: " << late.error.message();
  // 1.5 s from start(), not 1 s of waiting plus 1.5 s at the server.
  EXPECT_LT(took, 2200ms);
}

TEST(BeastClient, StoppingEndsCallsStillWaitingForAConnectionAsNeverSent) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kNeverAnswer);
  std::vector<std::future<ClientOutcome>> sent, waiting;
  {
    ClientOptions options;
    options.max_connections_per_host = 1;
    BeastClient client(options);
    sent = start_many(client, post(server.url("/sent")), 1);
    waiting = start_many(client, post(server.url("/waiting")), 2);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (server.seen().empty() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(sent[0].get().reached, Reached::kMaybeSent);
  for (auto& f : waiting) {
    ClientOutcome o = f.get();
    EXPECT_EQ(o.reached, Reached::kNotSent) << "it never left: it may be sent again";
    EXPECT_NE(o.error.message().find("the client stopped"), std::string::npos) << o.error.message();
  }
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST(BeastClient, ADeadlineEndsACallThatGetsNoAnswer) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kNeverAnswer);
  BeastClient client;
  ClientRequest r = post(server.url("/hang"));
  r.timeout = 300ms;
  ClientOutcome o = client.call(r);
  EXPECT_EQ(o.reached, Reached::kMaybeSent) << "the app may have acted on it";
  EXPECT_TRUE(o.deadline_passed);
  EXPECT_EQ(o.error.code(), ErrorCode::kUnavailable);
  EXPECT_NE(o.error.message().find("no answer within the 300 ms deadline (connected after "), std::string::npos) << o.error.message();
  EXPECT_NE(o.error.message().find("request sent)"), std::string::npos) << o.error.message();
  EXPECT_NE(o.error.message().find("http://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(o.error.message().find("/hang"), std::string::npos) << "names the origin only, never the path or query";
}

TEST(BeastClient, ReachedSaysHowFarACallGot) {
  BeastClient client;
  // Nothing listens on a port just closed.
  uint16_t closed_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = a.local_endpoint().port();
  }
  EXPECT_EQ(client.call(post("http://127.0.0.1:" + std::to_string(closed_port) + "/x")).reached, Reached::kNotSent);

  WireServer hangs_up;
  hangs_up.set_behaviour(WireServer::Behaviour::kHangUp);
  ClientOutcome o = client.call(post(hangs_up.url("/x")));
  EXPECT_EQ(o.reached, Reached::kMaybeSent) << o.error.message();
  EXPECT_FALSE(o.deadline_passed) << "a hang-up is not a deadline";
  EXPECT_EQ(hangs_up.seen().size(), 1u) << "sent once, never again";

  // Queued behind a per-host cap until its deadline: it never left.
  WireServer holds;
  holds.set_behaviour(WireServer::Behaviour::kHold);
  ClientOptions one;
  one.max_connections_per_host = 1;
  BeastClient capped(one);
  auto first = start_many(capped, get(holds.url("/first")), 1);
  ASSERT_TRUE(holds.wait_for_held(1));
  ClientRequest second = post(holds.url("/second"));
  second.timeout = 300ms;
  ClientOutcome queued = start_many(capped, second, 1)[0].get();
  EXPECT_EQ(queued.reached, Reached::kNotSent);
  EXPECT_TRUE(queued.deadline_passed) << "through the loop's own deadline timer too";
  EXPECT_NE(queued.error.message().find("no connection within the 300 ms deadline"), std::string::npos) << queued.error.message();
  holds.release();
  EXPECT_EQ(first[0].get().reached, Reached::kAnswered);
}

class BeastClientTls : public ::testing::Test {
 protected:
  testing::TempDir dir;
  testing::TestCertificates ca;
  std::string ca_file = dir.file("ca.pem");
  void SetUp() override { std::ofstream(ca_file) << ca.ca_pem(); }
};

TEST_F(BeastClientTls, VerifiesTheServerItTalksTo) {
  auto good = ca.issue("IP:127.0.0.1");
  WireServer server(good.certificate_pem, good.key_pem);
  ClientOptions options;
  options.ca_file = ca_file;
  BeastClient client(options);
  ClientOutcome o = client.call(get(server.url("/secure")));
  ASSERT_EQ(o.reached, Reached::kAnswered) << o.error.message();
  EXPECT_EQ(o.response.body, "GET /secure");
}

TEST_F(BeastClientTls, RefusesACertificateForAnotherName) {
  auto elsewhere = ca.issue("DNS:elsewhere.example");
  WireServer server(elsewhere.certificate_pem, elsewhere.key_pem);
  ClientOptions options;
  options.ca_file = ca_file;
  BeastClient client(options);
  ClientOutcome o = client.call(post(server.url("/secure")));
  EXPECT_EQ(o.reached, Reached::kNotSent);
  EXPECT_TRUE(server.seen().empty()) << "no request reached a server that is not the one asked for";
}

TEST_F(BeastClientTls, RefusesACertificateFromAnUntrustedAuthority) {
  testing::TestCertificates stranger("Someone Else's CA");
  auto foreign = stranger.issue("IP:127.0.0.1");
  WireServer server(foreign.certificate_pem, foreign.key_pem);
  ClientOptions options;
  options.ca_file = ca_file;
  BeastClient client(options);
  ClientOutcome o = client.call(post(server.url("/secure")));
  EXPECT_EQ(o.reached, Reached::kNotSent);
  EXPECT_TRUE(server.seen().empty());
  // And without the test CA, the system store does not know ours either.
  BeastClient system_store;
  auto good = ca.issue("IP:127.0.0.1");
  WireServer ours(good.certificate_pem, good.key_pem);
  EXPECT_EQ(system_store.call(get(ours.url("/secure"))).reached, Reached::kNotSent);
}

// Proxy settings are read from the environment for each call, as libcurl reads them.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) { setenv(name, value.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(BeastClient, GoesThroughTheProxyTheEnvironmentNamesExceptForNoProxyHosts) {
  WireServer proxy;
  WireServer direct;
  BeastClient client;
  ScopedEnv http_proxy("http_proxy", proxy.url(""));
  ClientOutcome o = client.call(get("http://app.deputy-test.invalid/api/x"));
  ASSERT_EQ(o.reached, Reached::kAnswered) << o.error.message();
  ASSERT_EQ(proxy.seen().size(), 1u);
  EXPECT_EQ(proxy.seen()[0].target, "http://app.deputy-test.invalid/api/x");
  EXPECT_EQ(proxy.seen()[0].host, "app.deputy-test.invalid");

  ScopedEnv no_proxy("no_proxy", "127.0.0.1");
  ASSERT_EQ(client.call(get(direct.url("/inside"))).reached, Reached::kAnswered);
  EXPECT_EQ(direct.seen().size(), 1u);
  EXPECT_EQ(proxy.seen().size(), 1u) << "a no_proxy host is reached directly";
}

TEST(BeastClient, ProxyCredentialsGoToTheProxyOnly) {
  WireServer proxy;
  BeastClient client;
  ScopedEnv http_proxy("http_proxy", "http://deputy:s%40cret@127.0.0.1:" + std::to_string(proxy.port()));
  ASSERT_EQ(client.call(get("http://app.deputy-test.invalid/api")).reached, Reached::kAnswered);
  ASSERT_EQ(proxy.seen().size(), 1u);
  // deputy:s@cret
  EXPECT_NE(proxy.seen()[0].head.find("\r\nProxy-Authorization: Basic ZGVwdXR5OnNAY3JldA==\r\n"), std::string::npos) << proxy.seen()[0].head;
}

TEST(BeastClient, AProxyItCannotUseFailsTheCallInsteadOfGoingAroundIt) {
  WireServer direct;
  BeastClient client;
  ScopedEnv http_proxy("http_proxy", "socks5://127.0.0.1:1080");
  ClientOutcome o = client.call(get(direct.url("/x")));
  EXPECT_EQ(o.reached, Reached::kNotSent);
  EXPECT_NE(o.error.message().find("socks5"), std::string::npos) << o.error.message();
  EXPECT_TRUE(direct.seen().empty()) << "not reached around the proxy";
}

TEST_F(BeastClientTls, HttpsGoesThroughAConnectTunnelAndIsVerifiedEndToEnd) {
  auto good = ca.issue("IP:127.0.0.1");
  WireServer server(good.certificate_pem, good.key_pem);
  testing::TunnelProxy proxy("Basic ZGVwdXR5OnB3");  // deputy:pw
  ClientOptions options;
  options.ca_file = ca_file;
  BeastClient client(options);
  ScopedEnv https_proxy("HTTPS_PROXY", proxy.url("deputy:pw"));
  for (int i = 0; i < 2; ++i) {
    ClientOutcome o = client.call(post(server.url("/secure"), "{\"n\":1}"));
    ASSERT_EQ(o.reached, Reached::kAnswered) << o.error.message();
    EXPECT_EQ(o.response.body, "POST /secure");
  }
  ASSERT_EQ(proxy.connects().size(), 1u) << "one tunnel, kept alive";
  EXPECT_EQ(proxy.connects()[0].rfind("CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1\r\n", 0), 0u) << proxy.connects()[0];
  EXPECT_EQ(server.seen().size(), 2u);

  // Through the tunnel, a certificate for another name is refused as it is directly.
  auto elsewhere = ca.issue("DNS:elsewhere.example");
  WireServer impostor(elsewhere.certificate_pem, elsewhere.key_pem);
  ClientOutcome refused = client.call(post(impostor.url("/secure")));
  EXPECT_EQ(refused.reached, Reached::kNotSent);
  EXPECT_NE(refused.error.message().find("certificate was refused"), std::string::npos) << refused.error.message();
  EXPECT_TRUE(impostor.seen().empty());
}

TEST_F(BeastClientTls, AProxyThatRefusesTheTunnelIsAClearFailure) {
  auto good = ca.issue("IP:127.0.0.1");
  WireServer server(good.certificate_pem, good.key_pem);
  testing::TunnelProxy proxy("Basic ZGVwdXR5OnB3");
  ClientOptions options;
  options.ca_file = ca_file;
  BeastClient client(options);
  ScopedEnv https_proxy("https_proxy", proxy.url("deputy:wrong"));
  ClientOutcome o = client.call(post(server.url("/secure")));
  EXPECT_EQ(o.reached, Reached::kNotSent);
  EXPECT_NE(o.error.message().find("the proxy refused a tunnel to 127.0.0.1:" + std::to_string(server.port()) + " (HTTP 407)"), std::string::npos)
      << o.error.message();
  EXPECT_EQ(o.error.message().find("wrong"), std::string::npos) << "credentials stay out of errors";
  EXPECT_TRUE(server.seen().empty());
}

TEST(BeastClient, IdleConnectionsAreClosedRatherThanReusedOnceTooOld) {
  WireServer server;
  ClientOptions options;
  options.max_idle = 1s;
  BeastClient client(options);
  ASSERT_EQ(client.call(get(server.url("/1"))).reached, Reached::kAnswered);
  ASSERT_EQ(client.call(get(server.url("/2"))).reached, Reached::kAnswered);
  EXPECT_EQ(server.connections(), 1);
  std::this_thread::sleep_for(2200ms);
  ASSERT_EQ(client.call(get(server.url("/3"))).reached, Reached::kAnswered);
  EXPECT_EQ(server.connections(), 2);
}

TEST(BeastClient, AnAnswerTooLargeIsRefused) {
  WireServer server;
  ClientOptions options;
  options.max_response_bytes = 8;
  BeastClient client(options);
  ClientOutcome o = client.call(get(server.url("/a-long-path")));
  EXPECT_NE(o.reached, Reached::kAnswered);
  EXPECT_NE(o.error.message().find("larger than 8 bytes"), std::string::npos) << o.error.message();
}

TEST(BeastClient, StoppingEndsTheCallsInFlight) {
  WireServer server;
  server.set_behaviour(WireServer::Behaviour::kNeverAnswer);
  std::vector<std::future<ClientOutcome>> outcomes;
  {
    BeastClient client;
    outcomes = start_many(client, post(server.url("/pending")), 3);
    auto until = std::chrono::steady_clock::now() + 5s;
    while (server.seen().size() < 3 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  }
  for (auto& f : outcomes) {
    ClientOutcome o = f.get();
    EXPECT_EQ(o.reached, Reached::kMaybeSent);
    EXPECT_NE(o.error.message().find("the client stopped"), std::string::npos) << o.error.message();
  }
}

}  // namespace
}  // namespace deputy::http
