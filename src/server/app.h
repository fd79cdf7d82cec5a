// The running server: owns every component and wires HTTP routes to them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/result.h"
#include "config/config.h"

namespace deputy::server {

class App {
 public:
  explicit App(config::Config config);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Opens the database, loads recipes, binds the port. Nothing is served yet.
  Status start();
  // Serves until stop(); then drains and closes everything in order.
  void run();
  // Safe from a signal handler thread.
  void stop();
  uint16_t port() const;

 private:
  Status start_storage();
  // This process's run among those sharing the database (heartbeats, takeover).
  Status join_cluster();
  Status start_engine();
  Status start_routes(const std::string& host, uint16_t listen_port);

  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace deputy::server
