#include "engine/bulkhead.h"

#include <algorithm>
#include <set>

namespace deputy::engine {

struct Bulkhead::State {
  struct Waiter {
    std::string person;
    Admitted when_free;
  };
  struct App {
    size_t in_flight = 0;
    std::deque<Waiter> waiting;  // oldest first
    std::multiset<std::chrono::system_clock::time_point> started;  // of the calls in flight
    std::chrono::milliseconds typical{0};                          // moving average of finished calls
  };
  BulkheadLimits limits;
  const Clock& clock;
  mutable std::mutex mutex;
  std::map<std::string, App> apps;
  std::map<std::string, size_t> people;
  std::minstd_rand jitter{std::random_device{}()};

  State(BulkheadLimits l, const Clock& c) : limits(l), clock(c) {}

  // About as long as a place takes to free: the app's typical call, or, when its calls have
  // stopped finishing (a hang), how long the oldest has been waiting. Spread by up to half
  // again, so those turned away together do not all come back at the same moment.
  std::chrono::milliseconds wait_for(const App& app) {
    auto wait = app.typical;
    if (!app.started.empty())
      wait = std::max(wait, std::chrono::duration_cast<std::chrono::milliseconds>(clock.now() - *app.started.begin()));
    wait = std::clamp(wait, kShortestWait, kLongestWait);
    std::uniform_int_distribution<int64_t> spread(0, wait.count() / 2);
    return wait + std::chrono::milliseconds(spread(jitter));
  }
};

Bulkhead::Bulkhead(BulkheadLimits limits, const Clock& clock) : state_(std::make_shared<State>(limits, clock)) {
  state_->limits.per_app = std::max<size_t>(1, state_->limits.per_app);
  state_->limits.per_person = std::max<size_t>(1, state_->limits.per_person);
  if (state_->limits.waiting_per_app == 0) state_->limits.waiting_per_app = std::max<size_t>(1, state_->limits.per_app / 4);
}

std::variant<Bulkhead::Slot, Bulkhead::Waiting, Bulkhead::Full> Bulkhead::enter(const std::string& app, const std::string& person,
                                                                             Admitted when_free) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  State::App& counts = s.apps[app];
  auto mine = s.people.find(person);
  if (mine != s.people.end() && mine->second >= s.limits.per_person) return Full{Full::Who::kPerson, s.wait_for(counts)};
  // Those already in line go first, so a freed place is never taken past them.
  if (counts.in_flight >= s.limits.per_app || !counts.waiting.empty()) {
    if (!when_free || counts.waiting.size() >= s.limits.waiting_per_app) return Full{Full::Who::kApp, s.wait_for(counts)};
    ++s.people[person];
    counts.waiting.push_back(State::Waiter{person, std::move(when_free)});
    return Waiting{};
  }
  ++counts.in_flight;
  ++s.people[person];
  Slot slot;
  slot.state_ = state_;
  slot.app = app;
  slot.person = person;
  slot.entered = s.clock.now();
  counts.started.insert(slot.entered);
  return slot;
}

void Bulkhead::Slot::leave() {
  if (!state_) return;
  State& s = *state_;
  Slot next;  // the place handed to the first in line, if any
  Admitted admitted;
  {
    std::lock_guard lock(s.mutex);
    State::App& counts = s.apps[app];
    --counts.in_flight;
    if (auto it = counts.started.find(entered); it != counts.started.end()) counts.started.erase(it);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(s.clock.now() - entered);
    counts.typical = counts.typical.count() == 0 ? took : (counts.typical * 4 + took) / 5;
    if (--s.people[person] == 0) s.people.erase(person);
    if (!counts.waiting.empty() && counts.in_flight < s.limits.per_app) {
      State::Waiter first = std::move(counts.waiting.front());
      counts.waiting.pop_front();
      ++counts.in_flight;  // its person was counted when it joined the line
      next.state_ = state_;
      next.app = app;
      next.person = std::move(first.person);
      next.entered = s.clock.now();
      counts.started.insert(next.entered);
      admitted = std::move(first.when_free);
    }
  }
  state_.reset();
  if (admitted) admitted(std::move(next));
}

Bulkhead::Slot::Slot(Slot&& other) noexcept
    : state_(std::move(other.state_)), app(std::move(other.app)), person(std::move(other.person)), entered(other.entered) {
  other.state_.reset();
}

Bulkhead::Slot& Bulkhead::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    leave();
    state_ = std::move(other.state_);
    other.state_.reset();
    app = std::move(other.app);
    person = std::move(other.person);
    entered = other.entered;
  }
  return *this;
}

size_t Bulkhead::in_flight_for_app(const std::string& app) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->apps.find(app);
  return it == state_->apps.end() ? 0 : it->second.in_flight;
}

size_t Bulkhead::waiting_for_app(const std::string& app) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->apps.find(app);
  return it == state_->apps.end() ? 0 : it->second.waiting.size();
}

size_t Bulkhead::in_flight_for_person(const std::string& person) const {
  std::lock_guard lock(state_->mutex);
  auto it = state_->people.find(person);
  return it == state_->people.end() ? 0 : it->second;
}

}  // namespace deputy::engine
