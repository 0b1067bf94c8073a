// One timer source for every session on the engine loop (TMR-20).
//
// A binary min-heap of (deadline, id) where each id knows its heap index, so
// set()/remove() are O(log n) and no per-session Asio timer exists. The engine
// arms a single timer at next() and calls pop_due(now) when it fires. Pure: no
// clock, no I/O; single-threaded (engine loop only).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "beacon/core/time.hpp"

namespace beacon::engine {

class Scheduler {
 public:
  using Id = std::uint32_t;

  // Inserts or moves `id` to `deadline`. TimePoint::max() removes it.
  void set(Id id, core::TimePoint deadline);
  void remove(Id id);
  bool contains(Id id) const;
  std::optional<core::TimePoint> next() const;  // earliest deadline
  std::size_t size() const { return heap_.size(); }

  // Removes every entry with deadline <= now, earliest first, calling
  // f(id, deadline) for each. f may call set()/remove() (re-arming the same id
  // with a deadline <= now fires it again in this call only once per call).
  template <class F>
  void pop_due(core::TimePoint now, F&& f) {
    std::size_t budget = heap_.size();
    while (!heap_.empty() && heap_.front().deadline <= now && budget-- > 0) {
      Entry e = heap_.front();
      remove(e.id);
      f(e.id, e.deadline);
    }
  }

 private:
  struct Entry {
    core::TimePoint deadline;
    Id id;
  };
  static constexpr std::uint32_t kNone = UINT32_MAX;
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void place(std::size_t i, const Entry& e);

  std::vector<Entry> heap_;
  std::vector<std::uint32_t> index_;  // id -> heap position or kNone
};

}  // namespace beacon::engine
