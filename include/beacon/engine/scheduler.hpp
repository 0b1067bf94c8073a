// One timer source for every session on the engine loop (TMR-20).
//
// A binary min-heap of (deadline, id) where each id knows its heap index, so
// set()/remove() are O(log n) and no per-session Asio timer exists. The engine
// arms a single timer at next() and calls pop_due(now) when it fires. Pure: no
// clock, no I/O; single-threaded (engine loop only). Nothing here throws except
// std::bad_alloc.
//
// Ordering: earliest deadline first; equal deadlines fire in the order they
// were armed (FIFO), which is deterministic and lets no timer starve another
// by re-arming itself to the same deadline.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "beacon/core/time.hpp"

namespace beacon::engine {

class Scheduler {
 public:
  // Ids are dense small integers (engine slots): index_ grows to max id + 1.
  using Id = std::uint32_t;

  // Inserts or moves `id` to `deadline`; O(log n). TimePoint::max() removes
  // it. Setting the deadline an id already has is a no-op (keeps its place).
  void set(Id id, core::TimePoint deadline);
  // Removes `id`; O(log n). Unknown ids are a no-op.
  void remove(Id id);
  bool contains(Id id) const;
  // The deadline of `id`, or nullopt when it is not armed.
  std::optional<core::TimePoint> deadline(Id id) const;
  std::optional<core::TimePoint> next() const;  // earliest deadline
  std::size_t size() const { return heap_.size(); }
  bool empty() const { return heap_.empty(); }

  // Number of heap levels moved by sift_up/sift_down since construction:
  // lets tests check that set()/remove() stay O(log n).
  std::uint64_t sift_steps() const { return sift_steps_; }

  // Removes the entries with deadline <= now that were armed before this call,
  // earliest first, calling f(id, deadline) for each after removing it.
  // f may call set()/remove() on any id. An entry armed (or re-armed) by f
  // with a deadline <= now is NOT fired in this call: the call stops when it
  // reaches one, so it runs at most size()-at-entry callbacks and always
  // terminates; next() then returns a deadline <= now and the engine calls
  // pop_due again from its event loop (after pending I/O). Not reentrant: f
  // must not call pop_due. At most `limit` entries are served; returns how
  // many were.
  template <class F>
  std::size_t pop_due(core::TimePoint now, F&& f,
                      std::size_t limit = static_cast<std::size_t>(-1)) {
    const std::uint64_t armed_before = next_seq_;
    std::size_t served = 0;
    while (!heap_.empty() && served < limit) {
      const Entry e = heap_.front();
      if (e.deadline > now || e.seq >= armed_before) break;
      remove(e.id);
      ++served;
      f(e.id, e.deadline);
    }
    return served;
  }

 private:
  struct Entry {
    core::TimePoint deadline;
    std::uint64_t seq;  // arming order: FIFO among equal deadlines
    Id id;
  };
  static constexpr std::uint32_t kNone = UINT32_MAX;
  static bool before(const Entry& a, const Entry& b) {
    return a.deadline < b.deadline || (a.deadline == b.deadline && a.seq < b.seq);
  }
  void sift_up(std::size_t i);
  void sift_down(std::size_t i);
  void place(std::size_t i, const Entry& e);

  std::vector<Entry> heap_;
  std::vector<std::uint32_t> index_;  // id -> heap position or kNone
  std::uint64_t next_seq_ = 0;
  std::uint64_t sift_steps_ = 0;
};

}  // namespace beacon::engine
