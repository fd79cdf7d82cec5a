#include "metrics/metrics.h"

#include <charconv>
#include <sstream>

namespace deputy::metrics {
namespace {

void append_escaped(std::string& out, const std::string& value) {
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
}

// Shortest text that reads back as the same double: 1234567 stays 1234567, where a stream's
// default six significant digits would print 1.23457e+06 and lose counts.
std::string number(double value) {
  char text[64];
  auto [end, error] = std::to_chars(text, text + sizeof text, value);
  return error == std::errc{} ? std::string(text, end) : std::string("NaN");
}

// The series key of the calling thread, kept between calls so building it does not allocate.
std::string& scratch_key(const Labels& labels) {
  thread_local std::string key;
  render_labels(labels, key);
  return key;
}

void add(std::atomic<double>& target, double by) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + by, std::memory_order_relaxed)) {
  }
}

std::string with_label(const std::string& rendered, const std::string& extra) {
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

}  // namespace

void render_labels(const Labels& labels, std::string& out) {
  out.clear();
  if (labels.empty()) return;
  out += '{';
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first;
    out += "=\"";
    append_escaped(out, labels[i].second);
    out += '"';
  }
  out += '}';
}

std::string render_labels(const Labels& labels) {
  std::string out;
  render_labels(labels, out);
  return out;
}

const std::vector<double>& Registry::latency_buckets() {
  static const std::vector<double> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBuckets;
}

Registry::Family& Registry::family(std::string_view name) {
  auto it = families_.find(name);
  if (it == families_.end()) it = families_.try_emplace(std::string(name)).first;
  return it->second;
}

void Registry::describe(const std::string& name, const std::string& type, const std::string& help) {
  std::unique_lock lock(mutex_);
  Family& f = family(name);
  f.type = type;
  f.help = help;
}

void Registry::Counter::increment(double by) { add(value_, by); }

void Registry::Histogram::observe(double value) {
  const auto& bounds = latency_buckets();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (value <= bounds[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  add(sum_, value);
}

Registry::Counter& Registry::counter(std::string_view name, const Labels& labels) {
  const std::string& key = scratch_key(labels);
  {
    std::shared_lock lock(mutex_);
    auto fit = families_.find(name);
    if (fit != families_.end()) {
      auto cit = fit->second.counters.find(key);
      if (cit != fit->second.counters.end()) return *cit->second;
    }
  }
  std::unique_lock lock(mutex_);
  auto& slot = family(name).counters.try_emplace(key).first->second;
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Registry::Histogram& Registry::histogram(std::string_view name, const Labels& labels) {
  const std::string& key = scratch_key(labels);
  {
    std::shared_lock lock(mutex_);
    auto fit = families_.find(name);
    if (fit != families_.end()) {
      auto hit = fit->second.histograms.find(key);
      if (hit != fit->second.histograms.end()) return *hit->second;
    }
  }
  std::unique_lock lock(mutex_);
  auto& slot = family(name).histograms.try_emplace(key).first->second;
  if (!slot) slot = std::make_unique<Histogram>(latency_buckets().size());
  return *slot;
}

void Registry::increment(std::string_view name, const Labels& labels, double by) { counter(name, labels).increment(by); }

void Registry::observe(std::string_view name, const Labels& labels, double value) { histogram(name, labels).observe(value); }

void Registry::gauge_callback(const std::string& name, std::function<std::vector<std::pair<Labels, double>>()> read) {
  std::unique_lock lock(mutex_);
  family(name).gauge = std::move(read);
}

double Registry::counter_value(const std::string& name, const Labels& labels) const {
  std::shared_lock lock(mutex_);
  auto fit = families_.find(name);
  if (fit == families_.end()) return 0;
  auto cit = fit->second.counters.find(render_labels(labels));
  return cit == fit->second.counters.end() ? 0 : cit->second->value_.load();
}

void Registry::set_common_label(const std::string& name, const std::string& value) {
  std::unique_lock lock(mutex_);
  common_ = render_labels({{name, value}});
  common_ = common_.substr(1, common_.size() - 2);  // name="value", to add to each sample's own
}

std::string Registry::render() const {
  std::ostringstream out;
  std::shared_lock lock(mutex_);
  auto labelled = [this](const std::string& rendered) { return common_.empty() ? rendered : with_label(rendered, common_); };
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out << "# HELP " << name << ' ' << f.help << '\n';
    if (!f.type.empty()) out << "# TYPE " << name << ' ' << f.type << '\n';
    for (const auto& [labels, value] : f.counters) out << name << labelled(labels) << ' ' << number(value->value_.load()) << '\n';
    for (const auto& [rendered, h] : f.histograms) {
      const std::string labels = labelled(rendered);
      uint64_t cumulative = 0;
      const auto& bounds = latency_buckets();
      for (size_t i = 0; i < bounds.size(); ++i) {
        cumulative += h->buckets_[i].load();
        out << name << "_bucket" << with_label(labels, "le=\"" + number(bounds[i]) + "\"") << ' ' << cumulative << '\n';
      }
      out << name << "_bucket" << with_label(labels, "le=\"+Inf\"") << ' ' << h->count_.load() << '\n';
      out << name << "_sum" << labels << ' ' << number(h->sum_.load()) << '\n';
      out << name << "_count" << labels << ' ' << h->count_.load() << '\n';
    }
    if (f.gauge) {
      for (const auto& [labels, value] : f.gauge()) out << name << labelled(render_labels(labels)) << ' ' << number(value) << '\n';
    }
  }
  return out.str();
}

}  // namespace deputy::metrics
