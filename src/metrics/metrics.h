// Prometheus metrics: counters and histograms kept in memory, rendered as text format.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

namespace deputy::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  void describe(const std::string& name, const std::string& type, const std::string& help);
  void increment(const std::string& name, const Labels& labels, double by = 1);
  void observe(const std::string& name, const Labels& labels, double value);
  // Gauges whose values are read at scrape time (e.g. jobs by state from the database).
  void gauge_callback(const std::string& name, std::function<std::vector<std::pair<Labels, double>>()> read);
  std::string render() const;
  double counter_value(const std::string& name, const Labels& labels) const;

  static const std::vector<double>& latency_buckets();

 private:
  struct Histogram {
    std::vector<std::atomic<uint64_t>> buckets;
    std::atomic<uint64_t> count{0};
    std::atomic<double> sum{0};
    explicit Histogram(size_t n) : buckets(n) {}
  };
  struct Family {
    std::string type;
    std::string help;
    std::map<std::string, std::unique_ptr<std::atomic<double>>> counters;  // key: rendered labels
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
    std::function<std::vector<std::pair<Labels, double>>()> gauge;
  };
  Family& family(const std::string& name);
  mutable std::shared_mutex mutex_;
  std::map<std::string, Family> families_;
};

std::string render_labels(const Labels& labels);

}  // namespace deputy::metrics
