// Simulation: pairs of Sessions over a simulated network with seeded loss,
// delay, duplication and reordering. Event driven: one priority queue holds
// packet deliveries and session deadlines; a deadline is called exactly when
// due (as the engine's scheduler does). Each run has a chaos phase (loss,
// partitions, parameter changes, holds) and then a healed phase.
//
// Invariants checked after every event:
//  - SM-25/PKT-30: a session is Up only if it accepted a packet from its peer
//    (with Sta Init/Up) within one detection time.
//  - PKT-03: no packet has P and F; PKT-02: M = 0; TMR-04: >= 1 s when not Up.
//  - TMR-05..07/14 (no half-applied parameters): outside a Poll the timer
//    values in use equal the advertised ones; when a Poll ends, the Final was
//    sent by a peer that had stored exactly the values we advertise.
//  - TMR-02/03: gaps between periodic packets lie in [75 %, 100 %] ([75, 90]
//    for Detect Mult 1) of the negotiated interval.
//  - SM-22/SM-18: a session held Down is never Init/Up; held AdminDown stays.
//  - Convergence: after the network heals both sides reach Up within a bound
//    and then stay Up (no flap) with the configured timers in force.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <random>
#include <string>
#include <vector>

#include "beacon/core/session.hpp"

namespace beacon::core {
namespace {

using wire::State;

constexpr Duration ms(std::int64_t v) {
  return Duration{v * 1000};
}
constexpr TimePoint kT0 = TimePoint{} + Duration{1'000'000'000};

struct LinkModel {
  double loss = 0;
  double dup = 0;
  Duration delay_min{50};
  Duration delay_max{2'000};  // << min interval: bounds reordering (TMR-14)
};

struct Meta {
  // What the sender had stored about the receiver when it sent the packet
  // (used to check that a Final acknowledges the advertised values).
  Duration seen_remote_min_rx{0};
  Duration seen_remote_tx{0};
  State sender_state = State::Down;
  TimePoint sent_at{};
};

struct Event {
  TimePoint at;
  std::uint64_t seq;
  int node;
  bool deadline;  // else: delivery of pkt to node
  std::uint64_t gen;
  wire::ControlPacket pkt;
  Meta meta;
  bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

struct Totals {
  std::uint64_t runs = 0, events = 0, packets = 0, polls_checked = 0, polls_strict = 0,
                polls_timed_out = 0;
  std::uint64_t gaps_checked = 0, up_transitions = 0;
  double conv_sum_s = 0, conv_max_s = 0;
  double jitter_min = 1e9, jitter_max = 0, jitter_sum = 0;
};

Totals g_totals;

class Sim {
 public:
  struct Node {
    explicit Node(const Session& session) : s(session) {}
    Session s;
    int peer = 0;
    // Last accepted packet (for the "Up only if heard" invariant).
    std::optional<TimePoint> heard_at;
    State heard_state = State::Down;
    TimePoint heard_sent_at{};
    // Periodic gap tracking.
    std::optional<TimePoint> last_periodic;
    Duration rec_interval{0};
    bool interval_dirty = true;
    // Poll tracking.
    bool was_polling = false;
    wire::ControlPacket poll_adv{};
    bool poll_mixed = false;
    TimePoint poll_started{};  // when the Poll now running began
    std::uint64_t gen = 0;
  };

  Sim(std::uint64_t seed, const std::array<SessionParams, 2>& p)
      : rng_(seed),
        nodes_{Node{Session(0x1000 + static_cast<std::uint32_t>(seed % 1000), p[0], kT0,
                            seed * 2 + 1)},
               Node{Session(0x2000, p[1], kT0, seed * 2 + 2)}} {
    nodes_[0].peer = 1;
    nodes_[1].peer = 0;
    for (int i = 0; i < 2; ++i) arm(i);
  }

  Node& node(int i) { return nodes_[i]; }
  TimePoint now() const { return now_; }
  LinkModel& link(int from) { return link_[from]; }
  std::string failure;  // first invariant violation, empty if none

  // Runs events until `until` (inclusive). Returns false on a violation.
  bool run_until(TimePoint until) {
    while (!q_.empty() && q_.top().at <= until && failure.empty()) {
      Event e = q_.top();
      q_.pop();
      now_ = e.at;
      ++g_totals.events;
      Node& n = nodes_[e.node];
      if (e.deadline) {
        if (e.gen != n.gen) continue;  // stale deadline entry
        handle(e.node, n.s.expire(now_), nullptr);
      } else {
        handle(e.node, n.s.receive(e.pkt, now_), &e);
      }
    }
    if (now_ < until) now_ = until;
    return failure.empty();
  }

  void set_params(int i, const SessionParams& p) {
    nodes_[i].interval_dirty = true;  // jitter range may change with Detect Mult
    handle(i, nodes_[i].s.set_params(p, now_), nullptr);
  }
  void set_hold(int i, Hold h, std::uint8_t diag) {
    handle(i, nodes_[i].s.set_hold(h, diag, now_), nullptr);
  }

 private:
  void fail(const std::string& what, int node) {
    if (!failure.empty()) return;
    char buf[160];
    std::snprintf(buf, sizeof buf, " [node %d, t=%.6f s]", node,
                  std::chrono::duration<double>(now_ - kT0).count());
    failure = what + buf;
  }

  void arm(int i) {
    Node& n = nodes_[i];
    ++n.gen;
    const TimePoint d = n.s.next_deadline();
    if (d == TimePoint::max()) return;
    q_.push(Event{std::max(d, now_), seq_++, i, true, n.gen, {}, {}});
  }

  void transmit(int from, const wire::ControlPacket& pkt) {
    ++g_totals.packets;
    if (std::getenv("SIM_TRACE_PKTS"))
      std::printf("  t=%.6f node %d sends st=%d P=%d F=%d tx=%u rx=%u dm=%d iv=%lld eff=%lld\n",
                  std::chrono::duration<double>(now_ - kT0).count(), from,
                  static_cast<int>(pkt.state), pkt.poll, pkt.final, pkt.desired_min_tx_us,
                  pkt.required_min_rx_us, pkt.detect_mult,
                  static_cast<long long>(nodes_[from].s.tx_interval().count()),
                  static_cast<long long>(nodes_[from].s.effective_desired_min_tx().count()));
    const Session& s = nodes_[from].s;
    const Meta meta{s.remote_min_rx(), s.remote_desired_min_tx(), s.state(), now_};
    const LinkModel& l = link_[from];
    std::uniform_real_distribution<double> u(0, 1);
    std::uniform_int_distribution<std::int64_t> delay(l.delay_min.count(), l.delay_max.count());
    if (u(rng_) < l.loss) return;
    const int to = nodes_[from].peer;
    q_.push(Event{now_ + Duration{delay(rng_)}, seq_++, to, false, 0, pkt, meta});
    if (u(rng_) < l.dup)
      q_.push(Event{now_ + Duration{delay(rng_)}, seq_++, to, false, 0, pkt, meta});
  }

  void handle(int i, const Effects& fx, const Event* rx) {
    Node& n = nodes_[i];
    if (rx && std::getenv("SIM_TRACE_PKTS"))
      std::printf("  t=%.6f node %d recv st=%d P=%d F=%d tx=%u rx=%u (sent %.6f) drop=%d poll=%d\n",
                  std::chrono::duration<double>(now_ - kT0).count(), i,
                  static_cast<int>(rx->pkt.state), rx->pkt.poll, rx->pkt.final,
                  rx->pkt.desired_min_tx_us, rx->pkt.required_min_rx_us,
                  std::chrono::duration<double>(rx->meta.sent_at - kT0).count(),
                  static_cast<int>(fx.drop), n.s.poll_active());
    if (rx && fx.drop == wire::DropReason::None) {
      n.heard_at = now_;
      n.heard_state = rx->pkt.state;
      n.heard_sent_at = rx->meta.sent_at;
    }
    if (fx.send) check_sent(i, *fx.send, fx.periodic);
    if (fx.change && fx.change->new_state == State::Up) ++g_totals.up_transitions;
    if (fx.change && std::getenv("SIM_TRACE"))
      std::printf("t=%.6f node %d %d->%d diag %d (%.*s) remote %d\n",
                  std::chrono::duration<double>(now_ - kT0).count(), i,
                  static_cast<int>(fx.change->old_state), static_cast<int>(fx.change->new_state),
                  fx.change->local_diag, static_cast<int>(fx.change->reason.size()),
                  fx.change->reason.data(), static_cast<int>(fx.change->remote_state));
    check_poll(i, rx);
    if (fx.send) transmit(i, *fx.send);
    // The engine calls expire() again at once if a deadline is already due.
    for (int k = 0; k < 4 && n.s.next_deadline() <= now_; ++k) {
      const Effects again = n.s.expire(now_);
      if (again.send) {
        check_sent(i, *again.send, again.periodic);
        transmit(i, *again.send);
      }
      check_poll(i, nullptr);
    }
    if (n.s.next_deadline() <= now_) fail("deadline stays due after expire()", i);
    arm(i);
    check_state(i);
  }

  void check_sent(int i, const wire::ControlPacket& p, bool periodic) {
    Node& n = nodes_[i];
    if (p.poll && p.final) fail("PKT-03: P and F together", i);
    if (p.multipoint || p.version != 1 || p.demand) fail("PKT-01/02/05: bad header bits", i);
    if (p.state != State::Up && p.desired_min_tx_us < 1'000'000)
      fail("TMR-04: < 1 s while not Up", i);
    if (p.detect_mult != n.s.params().detect_mult) fail("PKT-08: detect mult", i);
    const Duration iv = n.s.tx_interval();
    if (periodic) {
      if (n.last_periodic && !n.interval_dirty && iv == n.rec_interval && iv > Duration{0}) {
        const double r = static_cast<double>((now_ - *n.last_periodic).count()) /
                         static_cast<double>(iv.count());
        const double hi = n.s.params().detect_mult == 1 ? 0.90 : 1.0;
        // 1 us of integer rounding slack at the bottom end.
        if (r < 0.75 - 1.0 / static_cast<double>(iv.count()) || r > hi)
          fail("TMR-02/03: periodic gap " + std::to_string(r) + " of interval", i);
        ++g_totals.gaps_checked;
        g_totals.jitter_min = std::min(g_totals.jitter_min, r);
        g_totals.jitter_max = std::max(g_totals.jitter_max, r);
        g_totals.jitter_sum += r;
      }
      n.last_periodic = now_;
      n.rec_interval = iv;
      n.interval_dirty = false;
    } else if (!p.final) {
      // The packet announcing a change left off the schedule; the next
      // periodic one counts from it (no two non-Final packets closer than
      // 75 %, §6.8.7), so the gap is measured from here.
      n.last_periodic = now_;
      n.rec_interval = iv;
      n.interval_dirty = false;
    }
  }

  void check_poll(int i, const Event* rx) {
    Node& n = nodes_[i];
    const Session& s = n.s;
    const wire::ControlPacket adv = s.current_packet();
    if (s.poll_active()) {
      if (!n.was_polling) {
        n.poll_adv = adv;
        n.poll_mixed = false;
        n.poll_started = now_;
      } else if (adv.desired_min_tx_us != n.poll_adv.desired_min_tx_us ||
                 adv.required_min_rx_us != n.poll_adv.required_min_rx_us) {
        n.poll_mixed = true;  // changed while not Up (nothing deferred then)
        n.poll_adv = adv;
      }
    } else {
      // No half-applied parameters outside a Poll.
      if (s.effective_desired_min_tx() != Duration{adv.desired_min_tx_us} ||
          s.effective_required_min_rx() != Duration{adv.required_min_rx_us})
        fail("TMR-06/07: values in use differ from advertised outside a Poll", i);
      if (n.was_polling) {
        ++g_totals.polls_checked;
        const bool timed_out = s.state() != State::Up && now_ - n.poll_started >= 3 * kOneSecond;
        if ((!rx || !rx->pkt.final) && !timed_out) {
          fail("Poll ended without a Final (and not timed out while not Up)", i);
        } else if (!rx || !rx->pkt.final) {
          ++g_totals.polls_timed_out;
        } else if (!n.poll_mixed) {
          ++g_totals.polls_strict;
          // Compare with what the Poll advertised (this very packet may also
          // have changed the state, and with it the values, after step 15).
          if (rx->meta.seen_remote_min_rx != Duration{n.poll_adv.required_min_rx_us} ||
              rx->meta.seen_remote_tx != Duration{n.poll_adv.desired_min_tx_us})
            fail("TMR-14: Final acknowledged values we do not advertise", i);
        }
      }
    }
    n.was_polling = s.poll_active();
  }

  void check_state(int i) {
    Node& n = nodes_[i];
    const Session& s = n.s;
    const Duration iv = s.tx_interval();
    if (iv != n.rec_interval) n.interval_dirty = true;
    if (s.state() == State::Up) {
      if (!n.heard_at) return fail("Up without ever hearing the peer", i);
      if (now_ - *n.heard_at > s.detection_time())
        fail("Up but peer not heard within a detection time", i);
      if (n.heard_state != State::Init && n.heard_state != State::Up)
        fail("Up but last packet from peer was not Init/Up", i);
    }
    if (s.hold() == Hold::Down && s.state() != State::Down) fail("SM-22: held Down left Down", i);
    if (s.hold() == Hold::AdminDown && s.state() != State::AdminDown)
      fail("SM-18: held AdminDown left AdminDown", i);
  }

  std::mt19937_64 rng_;
  std::array<Node, 2> nodes_;
  std::array<LinkModel, 2> link_{};
  std::priority_queue<Event, std::vector<Event>, std::greater<>> q_;
  TimePoint now_ = kT0;
  std::uint64_t seq_ = 0;
};

SessionParams random_params(std::mt19937_64& rng, bool allow_passive) {
  static constexpr std::array<std::int64_t, 6> kIv = {10, 20, 50, 100, 300, 1000};
  static constexpr std::array<std::uint8_t, 4> kDm = {1, 2, 3, 5};
  SessionParams p;
  p.desired_min_tx = ms(kIv[rng() % kIv.size()]);
  p.required_min_rx = ms(kIv[rng() % kIv.size()]);
  p.detect_mult = kDm[rng() % kDm.size()];
  p.passive = allow_passive && rng() % 5 == 0;
  return p;
}

struct RunResult {
  bool ok = false;
  std::string why;
  double convergence_s = 0;
};

// One seeded run. `scenario` 0: chaos network only; 1: also parameter changes
// and holds during chaos.
RunResult run_one(std::uint64_t seed, int scenario) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::array<SessionParams, 2> params{random_params(rng, true), random_params(rng, false)};
  if (rng() % 2) std::swap(params[0], params[1]);
  Sim sim(seed, params);
  RunResult r;
  auto bad = [&](const std::string& why) {
    r.why = "seed " + std::to_string(seed) + " scenario " + std::to_string(scenario) + ": " + why;
    return r;
  };

  // Chaos: 2..20 s in 250 ms slices with changing loss/dup/delay, partitions.
  const int slices = 8 + static_cast<int>(rng() % 72);
  for (int k = 0; k < slices; ++k) {
    for (int dir = 0; dir < 2; ++dir) {
      LinkModel& l = sim.link(dir);
      const double x = u(rng);
      l.loss = x < 0.15 ? 1.0 : x < 0.5 ? 0.0 : u(rng) * 0.6;
      l.dup = u(rng) < 0.3 ? 0.1 : 0.0;
      l.delay_min = Duration{50};
      l.delay_max = Duration{100 + static_cast<std::int64_t>(rng() % 1900)};
    }
    if (scenario == 1 && u(rng) < 0.2) {
      const int i = static_cast<int>(rng() % 2);
      SessionParams p = random_params(rng, false);
      p.passive = sim.node(i).s.params().passive;
      sim.set_params(i, p);
      params[i] = p;
    }
    if (scenario == 1 && u(rng) < 0.1) {
      const int i = static_cast<int>(rng() % 2);
      const double h = u(rng);
      sim.set_hold(i,
                   h < 0.4   ? Hold::Down
                   : h < 0.6 ? Hold::AdminDown
                             : Hold::None,
                   h < 0.4 ? 5 : 0);
    }
    if (!sim.run_until(sim.now() + ms(250))) return bad(sim.failure);
  }
  // Heal: release holds, clean network (tiny delay jitter only).
  for (int i = 0; i < 2; ++i) sim.set_hold(i, Hold::None, 0);
  for (int dir = 0; dir < 2; ++dir) sim.link(dir) = LinkModel{0, 0, Duration{50}, Duration{400}};
  const TimePoint healed = sim.now();
  const TimePoint limit = healed + Duration{11'000'000};
  // Converged: both Up, each having accepted a packet sent after the heal,
  // and no state change for the following second (packets sent during the
  // chaos, or reordered across the handshake, may still cause one legitimate
  // flap: BFD packets carry no sequence number). Convergence time counts to
  // the start of that quiet second.
  auto changes = [&] {
    return sim.node(0).s.counters().state_changes + sim.node(1).s.counters().state_changes;
  };
  auto both_up = [&] {
    for (int i = 0; i < 2; ++i)
      if (sim.node(i).s.state() != State::Up || sim.node(i).heard_sent_at < healed) return false;
    return true;
  };
  constexpr TimePoint kNever = TimePoint::max();
  TimePoint up_since = kNever;
  std::uint64_t changes_at_up = 0;
  while (!(up_since != kNever && sim.now() - up_since >= kOneSecond)) {
    if (sim.now() >= limit) {
      return bad("no convergence within 10 s of healing (+1 s quiet) (states " +
                 std::to_string(static_cast<int>(sim.node(0).s.state())) + "/" +
                 std::to_string(static_cast<int>(sim.node(1).s.state())) + ")");
    }
    if (!sim.run_until(sim.now() + ms(1))) return bad(sim.failure);
    if (up_since != kNever && (changes() != changes_at_up || !both_up())) up_since = kNever;
    if (up_since == kNever && both_up()) {
      up_since = sim.now();
      changes_at_up = changes();
    }
  }
  const TimePoint converged_at = up_since;
  r.convergence_s = std::chrono::duration<double>(converged_at - healed).count();
  // Stable: no flap for 5 s; all Polls done; configured timers in force.
  const std::uint64_t ups0 = sim.node(0).s.counters().up_count;
  const std::uint64_t ups1 = sim.node(1).s.counters().up_count;
  if (!sim.run_until(sim.now() + Duration{5'000'000})) return bad(sim.failure);
  for (int i = 0; i < 2; ++i) {
    const Session& s = sim.node(i).s;
    if (s.state() != State::Up) return bad("flapped after convergence");
    if (s.poll_active() || s.poll_queued()) return bad("Poll still open after 5 s stable");
    if (s.effective_desired_min_tx() != params[i].desired_min_tx ||
        s.effective_required_min_rx() != params[i].required_min_rx)
      return bad("configured timers not in force after convergence");
    const Duration want_iv = std::max(params[i].desired_min_tx, params[1 - i].required_min_rx);
    if (s.tx_interval() != want_iv) return bad("TMR-01: negotiated interval wrong");
  }
  if (sim.node(0).s.counters().up_count != ups0 || sim.node(1).s.counters().up_count != ups1)
    return bad("extra Up transitions while stable");
  r.ok = true;
  return r;
}

void run_many(int scenario, std::uint64_t first_seed, int runs) {
  int failures = 0;
  double conv_sum = 0, conv_max = 0;
  for (int k = 0; k < runs; ++k) {
    const RunResult r = run_one(first_seed + static_cast<std::uint64_t>(k), scenario);
    if (!r.ok) {
      ADD_FAILURE() << r.why;
      if (++failures >= 5) break;
      continue;
    }
    conv_sum += r.convergence_s;
    conv_max = std::max(conv_max, r.convergence_s);
    ++g_totals.runs;
  }
  std::printf("[sim] scenario %d: %d runs, %d failures, convergence avg %.3f s, max %.3f s\n",
              scenario, runs, failures, conv_sum / runs, conv_max);
  g_totals.conv_sum_s += conv_sum;
  g_totals.conv_max_s = std::max(g_totals.conv_max_s, conv_max);
}

TEST(Sim, ChaosNetworkThenHeal_Invariants) {
  run_many(0, 1, 4000);
}

TEST(Sim, ParamChangesAndHoldsMidRun_Invariants) {
  run_many(1, 100'000, 4000);
}

TEST(Sim, Trace) {
  if (const char* seed = std::getenv("SIM_TRACE")) {
    const char* sc = std::getenv("SIM_SCENARIO");
    const RunResult r = run_one(std::strtoull(seed, nullptr, 10), sc ? std::atoi(sc) : 0);
    std::printf("ok=%d %s conv=%.3f\n", r.ok, r.why.c_str(), r.convergence_s);
  }
}

TEST(Sim, Summary) {
  ASSERT_GT(g_totals.runs, 0u);
  ASSERT_GT(g_totals.gaps_checked, 10'000u);
  ASSERT_GT(g_totals.polls_strict, 1'000u);
  const double mean = g_totals.jitter_sum / static_cast<double>(g_totals.gaps_checked);
  std::printf(
      "[sim] total: %llu runs, %llu events, %llu packets, %llu Up transitions\n"
      "[sim] convergence after heal: avg %.3f s, max %.3f s\n"
      "[sim] polls checked %llu (strict %llu, timed out while not Up %llu); periodic gaps %llu: "
      "min %.4f max %.4f mean %.4f\n",
      static_cast<unsigned long long>(g_totals.runs),
      static_cast<unsigned long long>(g_totals.events),
      static_cast<unsigned long long>(g_totals.packets),
      static_cast<unsigned long long>(g_totals.up_transitions),
      g_totals.conv_sum_s / static_cast<double>(g_totals.runs), g_totals.conv_max_s,
      static_cast<unsigned long long>(g_totals.polls_checked),
      static_cast<unsigned long long>(g_totals.polls_strict),
      static_cast<unsigned long long>(g_totals.polls_timed_out),
      static_cast<unsigned long long>(g_totals.gaps_checked), g_totals.jitter_min,
      g_totals.jitter_max, mean);
  EXPECT_GE(g_totals.jitter_min, 0.75 - 1e-3);
  EXPECT_LE(g_totals.jitter_max, 1.0);
  EXPECT_GT(mean, 0.80);
  EXPECT_LT(mean, 0.90);
}

}  // namespace
}  // namespace beacon::core
