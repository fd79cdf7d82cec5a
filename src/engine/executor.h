// Where work posted from other threads runs (an answer arrived from the network, say).
#pragma once

#include <functional>

namespace deputy::engine {

// Held by shared pointer: a callback that outlives the threads finds it closed, not gone.
class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `task` soon on one of the executor's threads; dropped once it has closed.
  virtual void post(std::function<void()> task) = 0;
};

}  // namespace deputy::engine
