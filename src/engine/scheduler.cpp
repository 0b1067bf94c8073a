// Binary min-heap with a per-id position index (see scheduler.hpp).
//
// Runs on the engine loop only. Every mutation goes through place(), which
// keeps index_[id] equal to the entry's heap position, so set()/remove() find
// an entry in O(1) and restore the heap in O(log n).
#include "beacon/engine/scheduler.hpp"

namespace beacon::engine {

void Scheduler::place(std::size_t i, const Entry& e) {
  heap_[i] = e;
  index_[e.id] = static_cast<std::uint32_t>(i);
}

void Scheduler::sift_up(std::size_t i) {
  const Entry e = heap_[i];
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!before(e, heap_[parent])) break;
    place(i, heap_[parent]);
    i = parent;
    ++sift_steps_;
  }
  place(i, e);
}

void Scheduler::sift_down(std::size_t i) {
  const Entry e = heap_[i];
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && before(heap_[child + 1], heap_[child])) ++child;
    if (!before(heap_[child], e)) break;
    place(i, heap_[child]);
    i = child;
    ++sift_steps_;
  }
  place(i, e);
}

void Scheduler::set(Id id, core::TimePoint deadline) {
  if (deadline == core::TimePoint::max()) {
    remove(id);
    return;
  }
  if (id >= index_.size()) index_.resize(static_cast<std::size_t>(id) + 1, kNone);
  const std::uint32_t pos = index_[id];
  if (pos == kNone) {
    heap_.push_back(Entry{deadline, next_seq_++, id});
    index_[id] = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(heap_.size() - 1);
    return;
  }
  Entry& e = heap_[pos];
  if (e.deadline == deadline) return;  // unchanged: keep its FIFO place
  const bool earlier = deadline < e.deadline;
  e.deadline = deadline;
  e.seq = next_seq_++;  // re-armed: it now counts as armed at this point
  if (earlier) {
    sift_up(pos);
  } else {
    sift_down(pos);
  }
}

void Scheduler::remove(Id id) {
  if (id >= index_.size() || index_[id] == kNone) return;
  const std::size_t pos = index_[id];
  index_[id] = kNone;
  const std::size_t last = heap_.size() - 1;
  if (pos == last) {
    heap_.pop_back();
    return;
  }
  const Entry moved = heap_[last];
  heap_.pop_back();
  place(pos, moved);
  // The moved entry may belong above or below its new position.
  if (pos > 0 && before(moved, heap_[(pos - 1) / 2])) {
    sift_up(pos);
  } else {
    sift_down(pos);
  }
}

bool Scheduler::contains(Id id) const {
  return id < index_.size() && index_[id] != kNone;
}

std::optional<core::TimePoint> Scheduler::deadline(Id id) const {
  if (!contains(id)) return std::nullopt;
  return heap_[index_[id]].deadline;
}

std::optional<core::TimePoint> Scheduler::next() const {
  if (heap_.empty()) return std::nullopt;
  return heap_.front().deadline;
}

}  // namespace beacon::engine
