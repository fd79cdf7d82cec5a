// Limits on app calls in flight, per app and per person, so that one app that hangs or one
// person's burst cannot take every slot the engine has. A call that finds its app full waits
// in memory, in a short line of its own per app, and goes as soon as a place frees (no
// thread waits). When that line is full too, or the person already has as many calls as they
// may, the job goes back to the queue for about as long as that app's calls are taking.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <variant>

#include "common/clock.h"

namespace deputy::engine {

struct BulkheadLimits {
  size_t per_app = 1024;
  size_t per_person = 16;
  // Calls that wait in memory for a place at their app; a quarter of per_app when 0. Kept
  // short so that a hanging app's line cannot hold every job the engine may have started.
  size_t waiting_per_app = 0;
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
  // In the app's line: `when_free` gets the place once one frees, on the thread that freed it.
  struct Waiting {};
  using Admitted = std::function<void(Slot)>;

  Bulkhead(BulkheadLimits limits, const Clock& clock);

  // A place for the call now, a place in the app's line (only given `when_free`), or neither.
  // A call in line counts against its person already.
  std::variant<Slot, Waiting, Full> enter(const std::string& app, const std::string& person, Admitted when_free = nullptr);
  size_t in_flight_for_app(const std::string& app) const;
  size_t in_flight_for_person(const std::string& person) const;
  size_t waiting_for_app(const std::string& app) const;

  // The shortest and the longest wait told to a call turned away.
  static constexpr std::chrono::milliseconds kShortestWait{1000};
  static constexpr std::chrono::milliseconds kLongestWait{30000};

 private:
  std::shared_ptr<State> state_;
};

}  // namespace deputy::engine
