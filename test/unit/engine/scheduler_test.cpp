// Scheduler: heap with per-id index, the engine's single timer source (TMR-20).
#include "beacon/engine/scheduler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

namespace beacon::engine {
namespace {

using core::Duration;
using core::TimePoint;
using Id = Scheduler::Id;
using Fired = std::vector<std::pair<Id, TimePoint>>;

TimePoint at(std::int64_t us) {
  return TimePoint{} + Duration{us};
}

Fired drain(Scheduler& s, TimePoint now) {
  Fired out;
  s.pop_due(now, [&](Id id, TimePoint d) { out.emplace_back(id, d); });
  return out;
}

TEST(SchedulerTest, EmptyHasNoNext) {
  Scheduler s;
  EXPECT_EQ(s.next(), std::nullopt);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_TRUE(drain(s, TimePoint::max()).empty());
}

TEST(SchedulerTest, SetInsertsMovesAndMaxRemoves) {
  Scheduler s;
  s.set(7, at(300));
  s.set(2, at(100));
  s.set(9, at(200));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.next(), at(100));
  EXPECT_TRUE(s.contains(7));
  EXPECT_EQ(s.deadline(7), at(300));

  s.set(7, at(50));  // move earlier
  EXPECT_EQ(s.next(), at(50));
  s.set(7, at(400));  // move later
  EXPECT_EQ(s.next(), at(100));
  EXPECT_EQ(s.deadline(7), at(400));
  EXPECT_EQ(s.size(), 3u);

  s.set(2, TimePoint::max());  // max() removes
  EXPECT_FALSE(s.contains(2));
  EXPECT_EQ(s.deadline(2), std::nullopt);
  EXPECT_EQ(s.next(), at(200));
  EXPECT_EQ(s.size(), 2u);
}

TEST(SchedulerTest, RemovingAbsentIdsIsANoOp) {
  Scheduler s;
  s.remove(0);          // nothing ever armed
  s.remove(1'000'000);  // beyond the index
  s.set(3, at(10));
  s.remove(4);
  s.remove(3);
  s.remove(3);                 // twice
  s.set(5, TimePoint::max());  // "remove" of an absent id through set()
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.contains(3));
  EXPECT_FALSE(s.contains(5));
  EXPECT_FALSE(s.contains(1'000'000));
  s.set(8, at(1));
  EXPECT_EQ(s.next(), at(1));
}

TEST(SchedulerTest, IndexGrowsWithLargeIds) {
  Scheduler s;
  s.set(100'000, at(5));
  s.set(1, at(6));
  EXPECT_TRUE(s.contains(100'000));
  EXPECT_EQ(drain(s, at(10)), (Fired{{100'000, at(5)}, {1, at(6)}}));
}

TEST(SchedulerTest, PopDueFiresEarliestFirstAndLeavesFutureEntries) {
  Scheduler s;
  s.set(1, at(30));
  s.set(2, at(10));
  s.set(3, at(20));
  s.set(4, at(21));
  EXPECT_EQ(drain(s, at(20)), (Fired{{2, at(10)}, {3, at(20)}}));  // deadline == now is due
  EXPECT_EQ(s.size(), 2u);
  EXPECT_EQ(s.next(), at(21));
  EXPECT_FALSE(s.contains(2));
}

TEST(SchedulerTest, EqualDeadlinesFireInArmingOrder) {
  Scheduler s;
  for (Id id : {5u, 3u, 7u, 1u}) s.set(id, at(100));
  s.set(3, at(100));  // same deadline: no-op, keeps its place
  EXPECT_EQ(drain(s, at(100)), (Fired{{5, at(100)}, {3, at(100)}, {7, at(100)}, {1, at(100)}}));

  for (Id id : {5u, 3u, 7u}) s.set(id, at(200));
  s.set(5, at(300));
  s.set(5, at(200));  // moved away and back: now armed last
  EXPECT_EQ(drain(s, at(200)), (Fired{{3, at(200)}, {7, at(200)}, {5, at(200)}}));
}

TEST(SchedulerTest, CallbackRearmingToTheFutureIsKept) {
  Scheduler s;
  s.set(1, at(10));
  Fired fired;
  s.pop_due(at(15), [&](Id id, TimePoint d) {
    fired.emplace_back(id, d);
    s.set(id, d + Duration{10});
  });
  EXPECT_EQ(fired, (Fired{{1, at(10)}}));
  EXPECT_EQ(s.deadline(1), at(20));
}

// An id re-armed by its callback to a deadline <= now must not loop inside
// one pop_due call; it fires on the next call.
TEST(SchedulerTest, CallbackRearmingToThePastFiresOnNextCallOnly) {
  Scheduler s;
  s.set(1, at(10));
  int calls = 0;
  auto rearm_now = [&](Id id, TimePoint) {
    ++calls;
    s.set(id, at(10));
  };
  s.pop_due(at(100), rearm_now);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.next(), at(10));  // still due: the engine calls again
  s.pop_due(at(100), rearm_now);
  EXPECT_EQ(calls, 2);
}

TEST(SchedulerTest, EveryCallbackRearmingStillTerminatesAfterEachEntryOnce) {
  Scheduler s;
  constexpr Id kN = 1000;
  for (Id id = 0; id < kN; ++id) s.set(id, at(id % 7));
  std::vector<int> count(kN, 0);
  s.pop_due(at(1'000), [&](Id id, TimePoint) {
    ++count[id];
    s.set(id, at(1'000));  // due again, after every original entry
  });
  for (Id id = 0; id < kN; ++id) EXPECT_EQ(count[id], 1) << id;
  EXPECT_EQ(s.size(), kN);
  EXPECT_EQ(s.next(), at(1'000));
}

// Re-armed to a deadline earlier than the other due entries: that entry is
// next in deadline order and was armed during the call, so the call stops
// there; the next call fires it and then the rest, in deadline order.
TEST(SchedulerTest, RearmingBeforeOtherDueEntriesDefersThemToTheNextCall) {
  Scheduler s;
  s.set(1, at(1));
  s.set(2, at(2));
  s.set(3, at(3));
  Fired fired;
  bool rearmed = false;
  auto f = [&](Id id, TimePoint d) {
    fired.emplace_back(id, d);
    if (id == 1 && !rearmed) {
      rearmed = true;
      s.set(1, at(0));
    }
  };
  s.pop_due(at(10), f);
  EXPECT_EQ(fired, (Fired{{1, at(1)}}));
  EXPECT_EQ(s.next(), at(0));
  s.pop_due(at(10), f);
  EXPECT_EQ(fired, (Fired{{1, at(1)}, {1, at(0)}, {2, at(2)}, {3, at(3)}}));
  EXPECT_EQ(s.size(), 0u);
}

// A timer re-arming itself to the same deadline must not starve the others.
TEST(SchedulerTest, SelfRearmingTimerDoesNotStarveEqualDeadlines) {
  Scheduler s;
  s.set(1, at(10));
  s.set(2, at(10));
  Fired fired;
  auto f = [&](Id id, TimePoint d) {
    fired.emplace_back(id, d);
    if (id == 1) s.set(1, at(10));
  };
  s.pop_due(at(10), f);
  s.pop_due(at(10), f);
  EXPECT_EQ(fired, (Fired{{1, at(10)}, {2, at(10)}, {1, at(10)}}));
}

TEST(SchedulerTest, CallbackRemovingADueEntryPreventsItsFiring) {
  Scheduler s;
  s.set(1, at(10));
  s.set(2, at(20));
  s.set(3, at(30));
  Fired fired;
  s.pop_due(at(30), [&](Id id, TimePoint d) {
    fired.emplace_back(id, d);
    if (id == 1) s.remove(2);
    if (id == 3) s.set(4, at(5));  // new and due, armed during the call
  });
  EXPECT_EQ(fired, (Fired{{1, at(10)}, {3, at(30)}}));
  EXPECT_EQ(s.next(), at(5));
}

// Reference model: a sorted set of (deadline, arming sequence, id), where the
// sequence follows the documented rule (FIFO among equal deadlines; setting
// an unchanged deadline keeps the place).
class Reference {
 public:
  void set(Id id, TimePoint d) {
    if (d == TimePoint::max()) return remove(id);
    auto it = where_.find(id);
    if (it != where_.end()) {
      if (std::get<0>(it->second) == d) return;
      order_.erase(it->second);
    }
    where_[id] = {d, seq_++, id};
    order_.insert(where_[id]);
  }
  void remove(Id id) {
    auto it = where_.find(id);
    if (it == where_.end()) return;
    order_.erase(it->second);
    where_.erase(it);
  }
  bool contains(Id id) const { return where_.contains(id); }
  std::optional<TimePoint> next() const {
    if (order_.empty()) return std::nullopt;
    return std::get<0>(*order_.begin());
  }
  std::size_t size() const { return order_.size(); }
  template <class F>
  void pop_due(TimePoint now, F&& f) {
    const std::uint64_t armed_before = seq_;
    while (!order_.empty()) {
      const auto [d, seq, id] = *order_.begin();
      if (d > now || seq >= armed_before) break;
      remove(id);
      f(id, d);
    }
  }

 private:
  using Key = std::tuple<TimePoint, std::uint64_t, Id>;
  std::set<Key> order_;
  std::map<Id, Key> where_;
  std::uint64_t seq_ = 0;
};

// 100k seeded random operations, including re-arming and removals inside the
// callback, checked against the reference after every operation.
TEST(SchedulerTest, RandomOperationsMatchReference) {
  std::mt19937_64 rng(20240517);
  Scheduler s;
  Reference ref;
  constexpr Id kIds = 512;
  std::int64_t now = 0;
  auto rand_below = [&](std::uint64_t n) { return static_cast<std::int64_t>(rng() % n); };

  // Callback actions depend only on (id, deadline), so both sides do the same.
  auto make_cb = [&](auto& target, Fired& out) {
    return [&target, &out, &now](Id id, TimePoint d) {
      out.emplace_back(id, d);
      const std::uint64_t h =
          id * 2654435761u + static_cast<std::uint64_t>(d.time_since_epoch().count());
      switch (h % 5) {
        case 0:
          target.set(id, d + Duration{static_cast<std::int64_t>(1 + h % 300)});
          break;
        case 1:
          target.set(id, at(now - static_cast<std::int64_t>(h % 50)));  // due again
          break;
        case 2:
          target.remove(static_cast<Id>((id + 1) % kIds));
          break;
        case 3:
          target.set(static_cast<Id>((id * 7 + 3) % kIds),
                     at(now + static_cast<std::int64_t>(h % 100) - 50));
          break;
        default:
          break;
      }
    };
  };

  std::size_t fired_total = 0;
  for (int op = 0; op < 100'000; ++op) {
    const auto kind = rand_below(100);
    const Id id = static_cast<Id>(rand_below(kIds));
    if (kind < 50) {
      const TimePoint d = rand_below(20) == 0 ? TimePoint::max() : at(now + rand_below(1000) - 100);
      s.set(id, d);
      ref.set(id, d);
    } else if (kind < 65) {
      s.remove(id);
      ref.remove(id);
    } else {
      now += rand_below(100);
      Fired got, want;
      ref.pop_due(at(now), make_cb(ref, want));
      s.pop_due(at(now), make_cb(s, got));
      ASSERT_EQ(got, want) << "op " << op;
      fired_total += got.size();
    }
    ASSERT_EQ(s.size(), ref.size()) << "op " << op;
    ASSERT_EQ(s.next(), ref.next()) << "op " << op;
    ASSERT_EQ(s.contains(id), ref.contains(id)) << "op " << op;
  }
  EXPECT_GT(fired_total, 10'000u);  // the run exercised pop_due for real
}

// TMR-20: a periodic timer rescheduled from its previous deadline (not from
// the late "now" at which it was serviced) never drifts. 10^6 periods, each
// serviced late by a random amount, sometimes by more than a period.
TEST(SchedulerTest, PeriodicTimerRescheduledFromDeadlineNeverDrifts) {
  Scheduler s;
  std::mt19937_64 rng(5880);
  const Duration period{3'333};  // not a divisor of anything convenient
  const TimePoint start = at(1'000'000);
  constexpr std::int64_t kPeriods = 1'000'000;
  s.set(42, start);
  s.set(43, start + 2 * kPeriods * period);  // a bystander far in the future

  std::int64_t fired = 0;
  std::int64_t max_late_us = 0;
  auto on_due = [&](Id id, TimePoint d) {
    ASSERT_EQ(id, 42u);
    ASSERT_EQ(d, start + fired * period) << "period " << fired;  // exact, no drift
    ++fired;
    s.set(id, d + period);
  };
  while (fired < kPeriods) {
    const TimePoint deadline = *s.next();
    // Serviced late: 0..1.5 periods after the deadline.
    const Duration late{static_cast<std::int64_t>(rng() % (period.count() * 3 / 2))};
    max_late_us = std::max<std::int64_t>(max_late_us, late.count());
    const TimePoint now = deadline + late;
    // The engine loop calls again while next() is already due.
    for (int guard = 0; s.next() && *s.next() <= now; ++guard) {
      ASSERT_LT(guard, 3);
      s.pop_due(now, on_due);
    }
    if (testing::Test::HasFatalFailure()) return;
  }
  EXPECT_EQ(fired, kPeriods);
  EXPECT_EQ(s.deadline(42), start + kPeriods * period);
  EXPECT_TRUE(s.contains(43));
  EXPECT_GT(max_late_us, period.count());  // lateness beyond a period was exercised
}

// set()/remove() cost O(log n): count heap levels moved per operation.
TEST(SchedulerTest, OperationsAreLogarithmic) {
  Scheduler s;
  std::mt19937_64 rng(7);
  constexpr Id kN = 100'000;
  for (Id id = 0; id < kN; ++id) s.set(id, at(static_cast<std::int64_t>(rng() % 1'000'000)));
  const auto bound = static_cast<std::uint64_t>(std::ceil(std::log2(double{kN} + 1)));
  std::uint64_t worst = 0;
  for (int op = 0; op < 100'000; ++op) {
    const Id id = static_cast<Id>(rng() % kN);
    const std::uint64_t before = s.sift_steps();
    if (op % 3 == 0) {
      s.remove(id);
      s.set(id, at(static_cast<std::int64_t>(rng() % 1'000'000)));
    } else {
      s.set(id, at(static_cast<std::int64_t>(rng() % 1'000'000)));
    }
    worst = std::max(worst, s.sift_steps() - before);
  }
  EXPECT_LE(worst, 2 * bound);  // remove + set each at most one heap height
  EXPECT_GT(worst, 0u);
  // Popping everything is n log n, and yields a sorted sequence.
  const std::uint64_t before = s.sift_steps();
  TimePoint last = TimePoint::min();
  std::size_t n = 0;
  s.pop_due(TimePoint::max() - Duration{1}, [&](Id, TimePoint d) {
    EXPECT_LE(last, d);
    last = d;
    ++n;
  });
  EXPECT_EQ(n, kN);
  EXPECT_LE(s.sift_steps() - before, std::uint64_t{kN} * bound);
}

}  // namespace
}  // namespace beacon::engine
