#include "engine/dispatch.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

namespace deputy::engine {

void Dispatch::on(DeliveryKind kind, Workers::StartHandle handler) {
  if (!handlers_.emplace(kind, std::move(handler)).second)
    throw std::logic_error(std::string("a second handler for deliveries of kind ") + kind_name(kind));
}

std::vector<DeliveryKind> Dispatch::missing() const {
  std::vector<DeliveryKind> out;
  for (const auto& [kind, name] : kDeliveryKindNames)
    if (!handlers_.count(kind)) out.push_back(kind);
  return out;
}

void Dispatch::operator()(const store::ClaimedDelivery& delivery, Workers::Finish finish) const {
  auto kind = delivery_kind(delivery.delivery.kind);
  auto handler = kind ? handlers_.find(*kind) : handlers_.end();
  if (handler == handlers_.end()) {
    // Not retried: no later try would know it either.
    spdlog::error("delivery {} is of a kind nothing handles ('{}')", delivery.id, delivery.delivery.kind.substr(0, 40));
    return finish(InvalidArgument("no handler for deliveries of kind '" + delivery.delivery.kind.substr(0, 40) + "'"));
  }
  handler->second(delivery, std::move(finish));
}

}  // namespace deputy::engine
