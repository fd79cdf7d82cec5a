// Prometheus metrics: counters and histograms kept in memory, rendered as text format.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace deputy::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Registry {
 public:
  // One series of a histogram (latency_buckets()).
  class Histogram {
   public:
    explicit Histogram(size_t buckets) : buckets_(buckets) {}
    void observe(double value);

   private:
    friend class Registry;
    std::vector<std::atomic<uint64_t>> buckets_;
    std::atomic<uint64_t> count_{0};
    std::atomic<double> sum_{0};
  };
  // One series of a counter.
  class Counter {
   public:
    void increment(double by = 1);

   private:
    friend class Registry;
    std::atomic<double> value_{0};
  };

  void describe(const std::string& name, const std::string& type, const std::string& help);
  // On the request path: no allocation once a series exists.
  void increment(std::string_view name, const Labels& labels, double by = 1);
  void observe(std::string_view name, const Labels& labels, double value);
  // A series itself, created if new, for a caller that updates it often: it stays valid as
  // long as the registry, and updating it takes no lookup and no lock.
  Counter& counter(std::string_view name, const Labels& labels);
  Histogram& histogram(std::string_view name, const Labels& labels);
  // Gauges whose values are read at scrape time (e.g. jobs by state from the database).
  void gauge_callback(const std::string& name, std::function<std::vector<std::pair<Labels, double>>()> read);
  // A label every sample carries (which process of several behind one address it came from).
  void set_common_label(const std::string& name, const std::string& value);
  std::string render() const;
  double counter_value(const std::string& name, const Labels& labels) const;

  static const std::vector<double>& latency_buckets();

 private:
  struct Family {
    std::string type;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>, std::less<>> counters;  // key: rendered labels
    std::map<std::string, std::unique_ptr<Histogram>, std::less<>> histograms;
    std::function<std::vector<std::pair<Labels, double>>()> gauge;
  };
  Family& family(std::string_view name);
  mutable std::shared_mutex mutex_;
  std::string common_;  // rendered: name="value"
  std::map<std::string, Family, std::less<>> families_;
};

std::string render_labels(const Labels& labels);
// The same into `out` (cleared first), reusing its memory.
void render_labels(const Labels& labels, std::string& out);

}  // namespace deputy::metrics
