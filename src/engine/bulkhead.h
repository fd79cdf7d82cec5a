// Limits on app calls in flight, per app and per person, so that one app that hangs or one
// person's burst cannot take every slot the engine has. A call that finds its app or its
// person full does not wait in a thread or hold a place in memory: its job goes back to the
// queue for about as long as that app's calls are taking.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <variant>

#include "common/clock.h"

namespace deputy::engine {

struct BulkheadLimits {
  size_t per_app = 512;
  size_t per_person = 16;
};

class Bulkhead {
  struct State;

 public:
  // One call in flight; leaving (or destroying it) frees the place and records how long the
  // call took, for the waits told to those who found the app full.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { leave(); }
    void leave();
    explicit operator bool() const { return state_ != nullptr; }

   private:
    friend class Bulkhead;
    std::shared_ptr<State> state_;
    std::string app;
    std::string person;
    std::chrono::system_clock::time_point entered;
  };

  // Why a call was turned away, and for how long to put it back.
  struct Full {
    enum class Who { kApp, kPerson } who;
    std::chrono::milliseconds wait;
  };

  Bulkhead(BulkheadLimits limits, const Clock& clock);

  std::variant<Slot, Full> enter(const std::string& app, const std::string& person);
  size_t in_flight_for_app(const std::string& app) const;
  size_t in_flight_for_person(const std::string& person) const;

  // The shortest and the longest wait told to a call turned away.
  static constexpr std::chrono::milliseconds kShortestWait{1000};
  static constexpr std::chrono::milliseconds kLongestWait{30000};

 private:
  std::shared_ptr<State> state_;
};

}  // namespace deputy::engine
