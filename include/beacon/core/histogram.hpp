// Fixed-bucket histograms of durations for the hot path: a packet or a timer
// fire costs one search over a small constant array and two increments; no
// allocation, no lock, no floating point. The bounds are fixed at compile
// time so every session's histogram is the same flat object (copied as is
// into snapshots) and every scrape shows the same buckets.
//
// Bucket i counts observations <= bounds[i] and > bounds[i - 1] (Prometheus
// `le` semantics, not yet cumulative); the last bucket counts everything above
// the largest bound (+Inf). Pure: no clock; the caller passes the duration.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

#include "beacon/core/time.hpp"

namespace beacon::core {

// Bounds in microseconds, ascending. Chosen for BFD intervals of 3 ms..1 s.
//
// Gaps between a peer's packets: a 1-2-5 series from 0.5 ms to 5 s, so a
// 3.3 ms, 10 ms, 50 ms or 1 s session's normal gaps (75-100 % of the
// interval) and one or two lost packets land in different buckets.
struct GapBuckets {
  static constexpr std::array<std::int64_t, 14> kBoundsUs{
      500,     1'000,   2'000,   5'000,     10'000,    20'000,    50'000,
      100'000, 200'000, 500'000, 1'000'000, 2'000'000, 3'000'000, 5'000'000};
};

// Lateness (of a transmit against its deadline, of a timer fire): mostly tens
// of microseconds; a 1-2-5 series from 10 us to 1 s shows both the normal
// slot-sized delays and a stalled loop.
struct LatenessBuckets {
  static constexpr std::array<std::int64_t, 16> kBoundsUs{
      10,    20,     50,     100,    200,     500,     1'000,   2'000,
      5'000, 10'000, 20'000, 50'000, 100'000, 200'000, 500'000, 1'000'000};
};

// How long a health check's run took: 0.5 ms to 10 s (check timeouts are
// up to a few seconds).
struct CheckDurationBuckets {
  static constexpr std::array<std::int64_t, 14> kBoundsUs{
      500,     1'000,   2'500,   5'000,     10'000,    25'000,    50'000,
      100'000, 250'000, 500'000, 1'000'000, 2'500'000, 5'000'000, 10'000'000};
};

template <class Buckets>
struct Histogram {
  static constexpr auto& kBoundsUs = Buckets::kBoundsUs;
  static constexpr std::size_t kBuckets = Buckets::kBoundsUs.size() + 1;  // + overflow

  std::array<std::uint64_t, kBuckets> counts{};  // per bucket, not cumulative
  std::uint64_t count = 0;
  Duration sum{0};

  // A negative duration counts as 0 (never below the first bucket).
  void observe(Duration d) {
    const std::int64_t us = std::max<std::int64_t>(d.count(), 0);
    const auto it = std::lower_bound(kBoundsUs.begin(), kBoundsUs.end(), us);
    ++counts[static_cast<std::size_t>(it - kBoundsUs.begin())];
    ++count;
    sum += Duration{us};
  }

  friend bool operator==(const Histogram&, const Histogram&) = default;
};

using GapHistogram = Histogram<GapBuckets>;
using LatenessHistogram = Histogram<LatenessBuckets>;
using CheckDurationHistogram = Histogram<CheckDurationBuckets>;

}  // namespace beacon::core
