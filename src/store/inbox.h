// Durable queue of Slack deliveries. A delivery is admitted together with its dedupe
// key in one transaction: once Slack has its 200 the work cannot be lost, and a retry
// of a delivery that was never admitted is admitted rather than dropped.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/database.h"
#include "store/ownership.h"

namespace deputy::store {

struct Delivery {
  std::string team_id;
  std::string kind;  // slash_command, event, block_actions
  std::string payload;
  std::string dedupe_key;
};

enum class Admission { kAccepted, kDuplicate };

// A delivery this process holds: its id, and the epoch of the run that claimed it. Whatever
// its holder does with it later changes it only while that claim stands.
struct Held {
  int64_t id = 0;
  int64_t epoch = 0;
};

struct ClaimedDelivery {
  int64_t id = 0;
  int attempts = 0;
  Delivery delivery;
  int64_t epoch = 0;  // the claim's
  Held held() const { return Held{id, epoch}; }
};

// One write of the ingest path: up to `claim_queued` deliveries already in the queue claimed
// for this process's workers (as claim_up_to does), then new deliveries, of which the first
// `claim_first` accepted ones are stored already claimed by this process (so its workers can
// run them from memory without a claim transaction), and finished deliveries to delete.
struct InboxBatch {
  size_t claim_queued = 0;
  std::vector<Delivery> deliveries;
  size_t claim_first = 0;
  std::chrono::seconds lease{300};
  std::vector<Held> completed;
};

struct InboxBatchResult {
  std::vector<ClaimedDelivery> backlog;           // claimed from the queue, oldest first
  std::vector<Admission> admissions;              // in the order of InboxBatch::deliveries
  std::vector<std::pair<size_t, Held>> claimed;   // (index in deliveries, the claim on it)
};

class Inbox {
 public:
  // Claims are stamped with `owner`'s epoch at the moment they are made.
  Inbox(Database& database, const Clock& clock, std::chrono::seconds dedupe_window, const Ownership& owner = unowned());

  // One transaction for the whole batch; results are in the order given.
  Result<std::vector<Admission>> admit(const std::vector<Delivery>& deliveries);
  // Everything in one transaction.
  Result<InboxBatchResult> write(const InboxBatch& batch);
  Result<std::optional<ClaimedDelivery>> claim(std::chrono::seconds lease);
  // Up to `limit` due deliveries in one transaction, oldest first; abandoned ones (their
  // worker's lease ran out) only when nothing queued is due.
  Result<std::vector<ClaimedDelivery>> claim_up_to(std::chrono::seconds lease, size_t limit);
  // What the holder of a claim does with it; none changes a delivery whose claim no longer stands.
  Status complete(Held held);
  Status fail(Held held, const std::string& error);
  // A delivery of Deputy's own making (a message to send again), queued to run after `delay`.
  Status enqueue(const std::string& team_id, const std::string& kind, const std::string& payload, std::chrono::seconds delay);
  // The same inside a transaction the caller holds (a job resumed with its delivery).
  static Status enqueue_in(Connection& tx, const std::string& team_id, const std::string& kind, const std::string& payload,
                           int64_t now, int64_t due_at);
  // Back to the queue, not to be claimed before `delay` has passed.
  Status release(Held held, std::chrono::seconds delay);
  // Back to the queue for at least `delay` (the queue keeps whole seconds) without counting the try:
  // the work was deferred (a rate limit, a full bulkhead), not attempted.
  Status defer(Held held, std::chrono::milliseconds delay);
  // Gives back a delivery this process claimed but never started: queued again at once, in
  // its place by arrival, and the attempt it was charged is returned. Only while it is
  // still held as working.
  Status release_unstarted(Held held);
  // Inside a transaction the caller holds (the ingest writer's, after the acks'): the
  // deliveries in `finished` deleted, then up to `limit` due ones claimed, as claim_up_to does.
  // Finished ones first: one whose lease ran out must not be claimed again as abandoned.
  Status finish_and_claim_in(Connection& tx, const std::vector<Held>& finished, size_t limit, std::chrono::seconds lease,
                             std::vector<ClaimedDelivery>& claimed);
  // Inside the caller's transaction: every delivery the run `epoch` held goes back to the queue
  // (it was taken over, or handed back). Returns how many.
  static Result<int64_t> release_held_by_in(Connection& tx, int64_t epoch, int64_t now);
  // After a crash of the only process, deliveries it held are handed out again.
  Status requeue_all_working();
  Status purge_expired_dedupe_keys();
  // Where the queue lives (the ingest writer commits other writes beside it).
  Database& database() const { return database_; }
  // Whose claims this inbox makes.
  const Ownership& owner() const { return owner_; }
  Result<std::map<std::string, int64_t>> count_by_state();

 private:
  // True if the key is new or its window has passed (it is stored, from now); false for a duplicate.
  Result<bool> claim_dedupe_key(Connection& tx, const std::string& key, int64_t now, int64_t expires);
  Status claim_in(Connection& tx, int64_t now, std::chrono::seconds lease, size_t limit,
                  std::vector<ClaimedDelivery>& claimed);

  Database& database_;
  const Clock& clock_;
  std::chrono::seconds dedupe_window_;
  const Ownership& owner_;
};

}  // namespace deputy::store
