// EngineCore driven by a FakeClock and a FakeTransport: no root, no sockets,
// no sleeps. The test plays every peer (scripted packets fed through
// on_datagram() with TTL 255 unless said otherwise) and steps fake time from
// one next_wakeup() to the next, calling on_timer() as the Asio loop would.
// This ports what engine_test.cpp / health_hold_test.cpp check over network
// namespaces, and adds what those cannot check deterministically: packets "at
// the same instant", exact gaps between periodic packets, token-bucket
// refills, removal times.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "beacon/core/auth.hpp"
#include "beacon/crypto/libcrypto.hpp"
#include "beacon/engine/core.hpp"
#include "fake_clock.hpp"
#include "fake_transport.hpp"
#include "session_driver.hpp"

namespace beacon::engine {
namespace {

namespace ip = boost::asio::ip;
using core::Duration;
using core::TimePoint;
using core::wire::ControlPacket;
using core::wire::DropReason;
using core::wire::State;
using test::FakeClock;
using test::FakeTransport;
using test::ms;

constexpr Duration kSlow{1'000'000};
constexpr std::size_t kDone = static_cast<std::size_t>(-1);
constexpr const char* kStartupReason = "waiting for first health verdict";

ip::address addr(const std::string& s) {
  return ip::make_address(s);
}

// The i-th test peer: 10.0.0.1, 10.0.0.2, ...
ip::address nth_peer(std::size_t i) {
  return ip::address_v4(static_cast<std::uint32_t>(0x0A000000u + i + 1));
}

core::SessionParams params(Duration tx, Duration rx, std::uint8_t mult = 3) {
  return core::SessionParams{tx, rx, mult, false};
}

config::SessionSpec session_spec(const ip::address& peer, const std::string& group = "web",
                                 Duration iv = kSlow) {
  config::SessionSpec s;
  s.peer = peer;
  s.group = group;
  s.params = params(iv, iv);
  return s;
}

config::SessionSpec session_spec(const std::string& peer, const std::string& group = "web",
                                 Duration iv = kSlow) {
  return session_spec(addr(peer), group, iv);
}

config::AcceptSpec accept_spec(const std::string& prefix, unsigned len, const std::string& group,
                               std::uint32_t max, Duration iv = kSlow) {
  config::AcceptSpec a;
  a.prefix = addr(prefix);
  a.prefix_len = len;
  a.group = group;
  a.max_sessions = max;
  a.params = params(iv, iv);
  a.params.passive = true;
  return a;
}

Selector all_sel() {
  return Selector{};
}
Selector group_sel(const std::string& g) {
  return Selector{Selector::Kind::Group, g};
}
Selector peer_sel(const std::string& p) {
  return Selector{Selector::Kind::Peer, p};
}

// One scripted peer: the far end of one session.
struct Peer {
  ip::address address;
  std::uint32_t discr = 0;
  std::uint32_t ours = 0;  // our discriminator, learned from our packets
  State state = State::Down;
  std::uint8_t diag = 0;
  std::uint8_t mult = 3;
  std::uint32_t tx_us = 1'000'000;  // Desired Min TX it advertises
  std::uint32_t rx_us = 1'000'000;  // Required Min RX it advertises
  bool answer_polls = true;         // reply F to our P at once (TMR-12)
  Duration every{0};                // periodic feed of packet() while > 0
  TimePoint next_at = TimePoint::max();
  RxInfo info;

  ControlPacket packet() const {
    ControlPacket p;
    p.version = 1;
    p.state = state;
    p.diag = diag;
    p.detect_mult = mult;
    p.my_discriminator = discr;
    p.your_discriminator = ours;
    p.desired_min_tx_us = tx_us;
    p.required_min_rx_us = rx_us;
    return p;
  }
  // Starts feeding packet() every `d`, the first one `d` from `now`.
  void feed(Duration d, TimePoint now) {
    every = d;
    next_at = now + d;
  }
};

class CoreTest : public ::testing::Test {
 protected:
  CoreTest() {
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
    sink_->set_pattern("%l %v");
    log_ = std::make_shared<spdlog::logger>("core-test", sink_);
    log_->set_level(spdlog::level::debug);
  }

  // ------------------------------------------------------------ set-up

  void open(std::uint64_t seed = 7) {
    core_ = std::make_unique<EngineCore>(opts_, net_, clock_, log_, seed);
    core_->open();
    core_->start();
    t0_ = now();
  }

  Peer& add_peer(const ip::address& a, unsigned ifindex = 2, bool multihop = false) {
    auto p = std::make_unique<Peer>();
    p->address = a;
    p->discr = 0x5eed0000u + static_cast<std::uint32_t>(peers_.size()) + 1;
    p->info.src = a;
    p->info.src_port = 50001;
    p->info.dst = a.is_v4() ? addr("10.255.255.254") : addr("fd00::fe");
    p->info.ifindex = multihop ? 0 : ifindex;
    p->info.ttl = 255;
    p->info.multihop = multihop;
    Peer& ref = *p;
    by_addr_[a] = &ref;
    peers_.push_back(std::move(p));
    return ref;
  }
  Peer& add_peer(const std::string& a, unsigned ifindex = 2, bool multihop = false) {
    return add_peer(addr(a), ifindex, multihop);
  }

  // ------------------------------------------------------------ time

  TimePoint now() const { return clock_.now(); }

  // Steps the fake clock to each next_wakeup() (and each peer feed) up to
  // `t`, calling on_timer() until it has nothing more due, then sets the
  // clock to `t`. Nothing sleeps.
  void run_until(TimePoint t) {
    for (std::uint64_t guard = 0;; ++guard) {
      ASSERT_LT(guard, 50'000'000u) << "run_until does not converge";
      pump();
      const auto w = core_->next_wakeup();
      const TimePoint wake = w ? *w : TimePoint::max();
      TimePoint feed = TimePoint::max();
      for (const auto& p : peers_) feed = std::min(feed, p->next_at);
      const TimePoint ev = std::min(wake, feed);
      if (ev > t) break;
      clock_.advance_to(ev);
      // The loop reads queued packets before it serves timers.
      for (const auto& p : peers_) {
        if (p->next_at <= now()) {
          deliver(*p, p->packet());
          p->next_at = p->every > Duration{0} ? p->next_at + p->every : TimePoint::max();
        }
      }
      if (wake <= now()) {
        int calls = 0;
        while (core_->on_timer(timer_limit_)) {
          ASSERT_LT(++calls, 1'000'000) << "on_timer keeps asking";
        }
      }
    }
    pump();
    clock_.advance_to(t);
  }
  void run_for(Duration d) { run_until(now() + d); }

  // ------------------------------------------------------------ packets

  void deliver_bytes(std::span<const std::uint8_t> b, const RxInfo& info) {
    core_->on_datagram(b, info);
  }
  void deliver(const ControlPacket& p, const RxInfo& info) {
    std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
    const std::size_t n = core::wire::encode(p, buf);
    ASSERT_NE(n, 0u);
    deliver_bytes(std::span<const std::uint8_t>(buf.data(), n), info);
  }
  void deliver(const Peer& p, const ControlPacket& pkt) { deliver(pkt, p.info); }
  void deliver(Peer& p, State s, std::uint8_t diag = 0) {
    p.state = s;
    p.diag = diag;
    deliver(p, p.packet());
  }

  // Lets every peer learn our discriminator from what we sent and answer our
  // Polls with F at once (peers with answer_polls).
  void pump() {
    while (pumped_ < net_.sent.size()) {
      const FakeTransport::Sent s = net_.sent[pumped_++];
      auto it = by_addr_.find(net_.peer_of(s.path));
      if (it == by_addr_.end()) continue;
      Peer& p = *it->second;
      if (s.pkt.my_discriminator != 0) p.ours = s.pkt.my_discriminator;
      if (p.answer_polls && s.pkt.poll) {
        ControlPacket f = p.packet();
        f.final = true;
        deliver(p, f);
      }
    }
  }

  // Three-way handshake from the peer's side (SM-04, SM-05, SM-10): Down with
  // YD 0, our Init (YD = its discriminator), Up; our Poll answered. Returns
  // our discriminator, 0 on failure.
  std::uint32_t bring_up(Peer& p) {
    const std::size_t before = net_.sent.size();
    p.ours = 0;
    deliver(p, State::Down);
    auto init = net_.last_to(p.address);
    if (!init || net_.sent.size() == before || init->pkt.state != State::Init ||
        init->pkt.your_discriminator != p.discr) {
      ADD_FAILURE() << "no Init from " << p.address.to_string();
      return 0;
    }
    p.ours = init->pkt.my_discriminator;
    deliver(p, State::Up);
    pump();
    auto s = find(p);
    if (!s || s->state != State::Up) {
      ADD_FAILURE() << "not Up: " << p.address.to_string();
      return 0;
    }
    return p.ours;
  }

  // ------------------------------------------------------------ reads

  std::optional<SessionSnapshot> find(const std::string& peer) const {
    for (auto& s : core_->sessions()) {
      if (s.peer == peer) return s;
    }
    return std::nullopt;
  }
  std::optional<SessionSnapshot> find(const Peer& p) const { return find(p.address.to_string()); }

  std::uint64_t drops(DropReason r) const {
    return core_->stats().drops[static_cast<std::size_t>(r)];
  }

  // Packets sent since index `from`, to `p`.
  std::vector<FakeTransport::Sent> sent_to(const Peer& p, std::size_t from = 0) const {
    return net_.to(p.address, from);
  }

  std::string lines_with(const std::string& needle) const {
    std::string out;
    for (const auto& l : sink_->last_formatted()) {
      if (l.find(needle) != std::string::npos) out += l + "\n";
    }
    return out;
  }

  int count_lines(const std::string& needle) const {
    int n = 0;
    for (const auto& l : sink_->last_formatted()) n += l.find(needle) != std::string::npos;
    return n;
  }

  FakeClock clock_;
  FakeTransport net_{clock_};
  EngineOptions opts_;
  std::unique_ptr<EngineCore> core_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<std::unique_ptr<Peer>> peers_;
  std::map<ip::address, Peer*> by_addr_;
  std::size_t pumped_ = 0;
  std::size_t timer_limit_ = static_cast<std::size_t>(-1);  // on_timer(limit) in run_until
  TimePoint t0_{};
};

// ================================================================ handshake, ports

// SH-09, SM-04, SM-05, SM-10, PKT-24: an active session speaks first (Down, YD
// 0), answers the peer's Down with Init carrying the peer's discriminator as
// YD and its own as MD, and reaches Up on the peer's Up.
TEST_F(CoreTest, ThreeWayHandshakeComesUp) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  Peer& p = add_peer("10.0.0.1");
  EXPECT_EQ(core_->session_count(), 1u);
  ASSERT_EQ(net_.paths.size(), 1u);
  const auto& spec = net_.paths.begin()->second.spec;
  EXPECT_EQ(spec.peer, addr("10.0.0.1"));
  EXPECT_FALSE(spec.multihop);
  EXPECT_EQ(spec.dest_port, 0);  // 3784 (SH-01)

  run_for(ms(10));  // one configured session: the initial phase is < 100 us
  auto first = net_.last_to(p.address);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->decode, DropReason::None);
  EXPECT_EQ(first->pkt.state, State::Down);
  EXPECT_EQ(first->pkt.your_discriminator, 0u);
  EXPECT_GE(first->pkt.desired_min_tx_us, 1'000'000u);  // TMR-04

  const std::size_t before = net_.sent.size();
  deliver(p, State::Down);  // YD 0
  auto init = sent_to(p, before);
  ASSERT_EQ(init.size(), 1u);  // SM-21: at once, at this instant
  EXPECT_EQ(init[0].at, now());
  EXPECT_EQ(init[0].pkt.state, State::Init);
  EXPECT_EQ(init[0].pkt.your_discriminator, p.discr);
  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(init[0].pkt.my_discriminator, s->local_discr);
  EXPECT_NE(s->local_discr, 0u);  // DIS-01
  EXPECT_EQ(s->state, State::Init);

  p.ours = s->local_discr;
  const std::size_t before_up = net_.sent.size();
  deliver(p, State::Up);
  auto up = sent_to(p, before_up);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].pkt.state, State::Up);
  EXPECT_EQ(up[0].pkt.your_discriminator, p.discr);
  EXPECT_EQ(up[0].pkt.my_discriminator, s->local_discr);
  s = find(p);
  EXPECT_EQ(s->state, State::Up);
  EXPECT_EQ(s->remote_discr, p.discr);
  EXPECT_EQ(s->remote_state, State::Up);
  EXPECT_EQ(s->group, "web");
  EXPECT_EQ(s->counters.up_count, 1u);
  EXPECT_EQ(core_->stats().tx_errors, 0u);
  EXPECT_EQ(net_.bad_sends, 0u);
  // Every packet so far went out on the one path, from its one source port.
  for (const auto& x : net_.sent) {
    EXPECT_EQ(x.path, net_.paths.begin()->first);
    EXPECT_EQ(x.decode, DropReason::None);
  }
  EXPECT_EQ(s->source_port, spec.source_port);
}

// SH-03: a flap keeps the path and its source port.
TEST_F(CoreTest, SourcePortFixedAcrossFlap) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  const auto port = find(p)->source_port;
  const std::size_t before = net_.sent.size();
  // Peer AdminDown -> we go Down diag 3 at once (ADM-06, SM-12).
  deliver(p, State::AdminDown, 7);
  auto down = sent_to(p, before);
  ASSERT_EQ(down.size(), 1u);
  EXPECT_EQ(down[0].pkt.state, State::Down);
  EXPECT_EQ(down[0].pkt.diag, 3);
  EXPECT_EQ(down[0].at, now());
  run_for(ms(2500));
  ASSERT_NE(bring_up(p), 0u);
  run_for(ms(2500));
  EXPECT_EQ(find(p)->source_port, port);
  EXPECT_EQ(find(p)->counters.up_count, 2u);
  EXPECT_EQ(net_.attempts.size(), 1u);  // never reopened
  EXPECT_EQ(net_.paths.size(), 1u);
  EXPECT_TRUE(net_.closes.empty());
  for (const auto& x : net_.sent) EXPECT_EQ(net_.paths.at(x.path).spec.source_port, port);
}

// SH-02, SH-04: every session its own source port in 49152-65535.
TEST_F(CoreTest, SourcePortsUniqueAndInRange) {
  for (std::size_t i = 0; i < 300; ++i) opts_.sessions.push_back(session_spec(nth_peer(i)));
  open();
  std::set<std::uint16_t> ports;
  for (const auto& s : core_->sessions()) {
    EXPECT_GE(s.source_port, 49152);
    EXPECT_LE(s.source_port, 65535);
    ports.insert(s.source_port);
  }
  EXPECT_EQ(ports.size(), 300u);
  std::set<std::uint16_t> opened;
  for (const auto& [path, o] : net_.paths) opened.insert(o.spec.source_port);
  EXPECT_EQ(opened, ports);
}

// A port someone else holds (EADDRINUSE) is skipped and stays reserved; the
// session opens on the next one.
TEST_F(CoreTest, AddressInUseTriesAnotherPort) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.push_back(session_spec("10.0.0.2"));
  net_.fail_ports[49152] = EADDRINUSE;
  net_.fail_ports[49153] = EADDRINUSE;
  open();
  ASSERT_EQ(net_.attempts.size(), 4u);
  EXPECT_EQ(net_.attempts[0].spec.source_port, 49152);
  EXPECT_EQ(net_.attempts[0].errnum, EADDRINUSE);
  EXPECT_EQ(net_.attempts[1].spec.source_port, 49153);
  EXPECT_EQ(net_.attempts[1].errnum, EADDRINUSE);
  EXPECT_EQ(net_.attempts[2].errnum, 0);
  EXPECT_EQ(net_.attempts[3].errnum, 0);
  const auto a = find("10.0.0.1");
  const auto b = find("10.0.0.2");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->source_port, net_.attempts[2].spec.source_port);
  EXPECT_EQ(b->source_port, net_.attempts[3].spec.source_port);
  for (auto port : {a->source_port, b->source_port}) {
    EXPECT_NE(port, 49152);
    EXPECT_NE(port, 49153);
  }
  EXPECT_NE(a->source_port, b->source_port);
}

// Any other bind error is fatal and names the session at fault.
TEST_F(CoreTest, OtherOpenErrorThrowsStartupErrorNamingTheSession) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.push_back(session_spec("10.0.0.2"));
  opts_.sessions.back().local = addr("10.9.9.9");
  net_.fail_ports[49153] = EADDRNOTAVAIL;  // the second session's first port
  core_ = std::make_unique<EngineCore>(opts_, net_, clock_, log_, 7);
  try {
    core_->open();
    FAIL() << "open() did not throw";
  } catch (const StartupError& e) {
    EXPECT_EQ(std::string(e.what()),
              "session 10.0.0.2: cannot bind UDP 10.9.9.9:49153: Cannot assign requested address");
  }
  EXPECT_EQ(net_.attempts.size(), 2u);  // not retried on another port
}

TEST_F(CoreTest, UnknownInterfaceThrowsStartupError) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.back().interface = "veth9";
  core_ = std::make_unique<EngineCore>(opts_, net_, clock_, log_, 7);
  try {
    core_->open();
    FAIL() << "open() did not throw";
  } catch (const StartupError& e) {
    EXPECT_EQ(std::string(e.what()), "session 10.0.0.1: interface \"veth9\" does not exist");
  }
  EXPECT_TRUE(net_.attempts.empty());
}

// SH-11: an interface-bound session opens its path on that device.
TEST_F(CoreTest, InterfaceBoundSessionOpensOnItsDevice) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.back().interface = "veth1";
  open();
  ASSERT_EQ(net_.paths.size(), 1u);
  EXPECT_EQ(net_.paths.begin()->second.spec.interface, "veth1");
  EXPECT_EQ(net_.paths.begin()->second.spec.ifindex, 3u);
  EXPECT_EQ(find("10.0.0.1")->interface, "veth1");
}

// A failed send is counted as a transmit error; nothing else breaks.
TEST_F(CoreTest, SendFailuresCounted) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  const auto st0 = core_->stats();
  net_.fail_sends = true;
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::Down, 5).error, "");
  const auto st1 = core_->stats();
  EXPECT_EQ(st1.tx_errors - st0.tx_errors, 1u);
  EXPECT_EQ(st1.tx_packets, st0.tx_packets);
  EXPECT_EQ(find(p)->state, State::Down);
  net_.fail_sends = false;
  const std::size_t before = net_.sent.size();
  run_for(ms(1100));
  EXPECT_FALSE(sent_to(p, before).empty());  // the periodic schedule goes on
  EXPECT_GT(core_->stats().tx_packets, st1.tx_packets);
}

// ================================================================ receive rules

// SH-07: single hop needs TTL 255; anything else is dropped before any lookup
// and counted by reason.
TEST_F(CoreTest, SingleHopTtlNot255Dropped) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 64));
  open();
  Peer& p = add_peer("10.0.0.1");
  Peer& q = add_peer("10.0.0.77");  // covered by the accept rule
  const std::size_t before = net_.sent.size();
  for (int ttl : {254, 1, 64, -1}) {
    p.info.ttl = ttl;
    deliver(p, State::Down);
    q.info.ttl = ttl;
    deliver(q, State::Down);
  }
  EXPECT_EQ(drops(DropReason::BadTtl), 8u);
  EXPECT_EQ(core_->stats().rx_datagrams, 8u);
  EXPECT_EQ(net_.sent.size(), before);
  auto s = find(p);
  EXPECT_EQ(s->state, State::Down);
  EXPECT_EQ(s->counters.rx_packets, 0u);
  EXPECT_EQ(core_->session_count(), 1u);  // nothing created for q
  p.info.ttl = 255;
  deliver(p, State::Down);
  EXPECT_EQ(find(p)->state, State::Init);
}

// MH-05: multihop accepts TTL >= min_ttl; below is dropped. A session's own
// min_ttl above the global one is enforced too.
TEST_F(CoreTest, MultihopBelowMinTtlDropped) {
  opts_.multihop_min_ttl = 250;
  auto a = session_spec("10.1.0.1");
  a.multihop = true;
  a.local = addr("10.255.255.254");
  a.min_ttl = 254;
  opts_.sessions.push_back(a);
  auto b = session_spec("10.1.0.2");
  b.multihop = true;
  b.local = addr("10.255.255.254");
  b.min_ttl = 250;
  opts_.sessions.push_back(b);
  open();
  Peer& pa = add_peer("10.1.0.1", 0, true);
  Peer& pb = add_peer("10.1.0.2", 0, true);
  EXPECT_TRUE(net_.paths.begin()->second.spec.multihop);
  pa.info.ttl = 249;  // below every minimum
  deliver(pa, State::Down);
  pa.info.ttl = 252;  // above the global 250, below the session's 254
  deliver(pa, State::Down);
  EXPECT_EQ(drops(DropReason::BadTtl), 2u);
  EXPECT_EQ(find(pa)->state, State::Down);
  pa.info.ttl = 254;
  deliver(pa, State::Down);
  EXPECT_EQ(find(pa)->state, State::Init);
  pb.info.ttl = 250;  // three hops fewer than 253: fine for min_ttl 250
  deliver(pb, State::Down);
  EXPECT_EQ(find(pb)->state, State::Init);
  EXPECT_EQ(drops(DropReason::BadTtl), 2u);
}

// MH-10: a single-hop session's discriminator arriving on the multihop port
// (and vice versa) is dropped as WrongPort.
TEST_F(CoreTest, DiscriminatorOnTheWrongPortDropped) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  auto mh = session_spec("10.1.0.1");
  mh.multihop = true;
  mh.local = addr("10.255.255.254");
  opts_.sessions.push_back(mh);
  open();
  Peer& sh = add_peer("10.0.0.1");
  Peer& m = add_peer("10.1.0.1", 0, true);
  const std::uint32_t d_sh = bring_up(sh);
  const std::uint32_t d_mh = bring_up(m);
  ASSERT_NE(d_sh, 0u);
  ASSERT_NE(d_mh, 0u);
  const auto rx_sh = find(sh)->counters.rx_packets;
  const auto rx_mh = find(m)->counters.rx_packets;
  RxInfo wrong = sh.info;
  wrong.multihop = true;
  deliver(sh.packet(), wrong);
  wrong = m.info;
  wrong.multihop = false;
  wrong.ifindex = 2;
  deliver(m.packet(), wrong);
  EXPECT_EQ(drops(DropReason::WrongPort), 2u);
  EXPECT_EQ(find(sh)->counters.rx_packets, rx_sh);
  EXPECT_EQ(find(m)->counters.rx_packets, rx_mh);
}

// PKT-11..17: garbage is counted per reason and has no other effect: no state
// change, no packet, no session although an accept rule covers the source.
TEST_F(CoreTest, GarbageCountedPerReasonWithoutEffect) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 64));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  const auto before = core_->stats();
  const std::size_t sent_before = net_.sent.size();
  const auto rx_before = find(p)->counters.rx_packets;

  RxInfo junk = p.info;
  junk.src = addr("10.0.0.9");
  std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
  auto enc = [&](const ControlPacket& q) {
    return std::span<const std::uint8_t>(buf.data(), core::wire::encode(q, buf));
  };
  std::map<DropReason, int> expected;
  auto send = [&](std::span<const std::uint8_t> b, DropReason r) {
    deliver_bytes(b, junk);
    ++expected[r];
  };
  // Also from the configured peer itself, with its valid YD: still no effect.
  auto send_both = [&](ControlPacket q, DropReason r) {
    deliver_bytes(enc(q), junk);
    ++expected[r];
    q.your_discriminator = p.ours;
    q.my_discriminator = q.my_discriminator == 0 ? 0 : p.discr;
    deliver_bytes(enc(q), p.info);
    ++expected[r];
  };
  ControlPacket good = p.packet();
  good.your_discriminator = 0;
  good.state = State::Down;
  send(std::span<const std::uint8_t>(buf.data(), 10), DropReason::TooShort);  // PKT-13
  ControlPacket q = good;
  q.version = 2;
  send_both(q, DropReason::BadVersion);  // PKT-12
  q = good;
  q.version = 0;
  send_both(q, DropReason::BadVersion);
  q = good;
  q.detect_mult = 0;
  send_both(q, DropReason::ZeroDetectMult);  // PKT-15
  q = good;
  q.multipoint = true;
  send_both(q, DropReason::MultipointSet);  // PKT-16
  q = good;
  q.my_discriminator = 0;
  send_both(q, DropReason::ZeroMyDiscriminator);  // PKT-17
  q = good;
  q.auth_present = true;
  q.auth.type = static_cast<core::wire::AuthType>(9);
  send_both(q, DropReason::BadAuthLayout);  // PKT-32
  {
    auto b = enc(good);
    buf[3] = 60;  // Length > payload (PKT-14)
    send(b, DropReason::LengthExceedsPayload);
    b = enc(good);
    buf[3] = 20;  // Length < 24 (PKT-13)
    send(b, DropReason::BadLength);
  }

  const auto after = core_->stats();
  int total = 0;
  for (std::size_t r = 1; r < core::wire::kDropReasonCount; ++r) {
    const auto reason = static_cast<DropReason>(r);
    const int want = expected.count(reason) ? expected[reason] : 0;
    EXPECT_EQ(after.drops[r] - before.drops[r], static_cast<std::uint64_t>(want))
        << core::wire::drop_reason_name(reason);
    total += want;
  }
  EXPECT_EQ(after.rx_datagrams - before.rx_datagrams, static_cast<std::uint64_t>(total));
  EXPECT_EQ(after.sessions, 1u);  // the accept rule created nothing
  EXPECT_EQ(after.passive_created, 0u);
  EXPECT_EQ(net_.sent.size(), sent_before);
  EXPECT_EQ(net_.paths.size(), 1u);
  auto s = find(p);
  EXPECT_EQ(s->state, State::Up);
  EXPECT_EQ(s->counters.rx_packets, rx_before);
  EXPECT_EQ(s->counters.rx_dropped, 0u);
}

// PKT-18: an unknown Your Discriminator is dropped and creates nothing, even
// from a prefix an accept rule covers. PKT-19: YD 0 with Init/Up dropped.
TEST_F(CoreTest, UnknownYourDiscriminatorAndZeroYdInitUpDropped) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 64));
  open();
  Peer& cfg = add_peer("10.0.0.1");
  Peer& p = add_peer("10.0.0.3");
  const std::size_t before = net_.sent.size();
  p.ours = 0x1234;
  deliver(p, State::Down);
  p.ours = 0;
  deliver(p, State::Init);
  deliver(p, State::Up);
  cfg.ours = 0;  // PKT-19 for a configured peer too: it stays Down
  deliver(cfg, State::Up);
  deliver(cfg, State::Init);
  EXPECT_EQ(drops(DropReason::UnknownYourDiscriminator), 1u);
  EXPECT_EQ(drops(DropReason::ZeroYourDiscInitUp), 4u);
  EXPECT_EQ(core_->session_count(), 1u);
  EXPECT_EQ(find(cfg)->state, State::Down);
  EXPECT_EQ(find(cfg)->counters.rx_packets, 0u);
  EXPECT_EQ(net_.sent.size(), before);
  EXPECT_EQ(net_.paths.size(), 1u);
}

// PKT-20 / step 9: no session and no accept rule covering it -> NoSessionForPeer.
TEST_F(CoreTest, NoSessionForPeerWithoutAcceptRule) {
  opts_.accepts.push_back(accept_spec("10.9.0.0", 16, "dyn", 64));
  open();
  Peer& p = add_peer("10.0.0.3");
  deliver(p, State::Down);
  Peer& v6 = add_peer("fd00::3");
  deliver(v6, State::Down);
  EXPECT_EQ(drops(DropReason::NoSessionForPeer), 2u);
  EXPECT_EQ(core_->session_count(), 0u);
  EXPECT_TRUE(net_.attempts.empty());
  EXPECT_TRUE(net_.sent.empty());
}

// ================================================================ accept rules

// An accept rule creates a passive, dynamic session for the peer's first YD-0
// packet; that packet carries P and the first reply carries F (TMR-12), Init
// (SM-04) and the peer's discriminator. The reply goes out through the
// ingress interface (SH-11); the next YD-0 packet finds the same session
// (DIS-04), and the handshake completes.
TEST_F(CoreTest, AcceptRuleCreatesPassiveSessionAnsweringFirstPollWithFinal) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 24, "dyn", 64));
  open();
  Peer& p = add_peer("10.0.0.7", 2);
  p.answer_polls = false;
  ControlPacket first = p.packet();
  first.poll = true;
  deliver(p, first);
  ASSERT_EQ(core_->session_count(), 1u);
  ASSERT_EQ(net_.sent.size(), 1u);
  const auto& reply = net_.sent[0];
  EXPECT_EQ(reply.at, now());
  EXPECT_TRUE(reply.pkt.final);
  EXPECT_FALSE(reply.pkt.poll);
  EXPECT_EQ(reply.pkt.state, State::Init);
  EXPECT_EQ(reply.pkt.your_discriminator, p.discr);
  const auto& spec = net_.paths.at(reply.path).spec;
  EXPECT_EQ(spec.peer, p.address);
  EXPECT_EQ(spec.ifindex, 2u);
  ASSERT_TRUE(spec.local);
  EXPECT_EQ(*spec.local, p.info.dst);
  EXPECT_FALSE(spec.multihop);
  EXPECT_GE(spec.source_port, 49152);

  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->dynamic);
  EXPECT_TRUE(s->passive);
  EXPECT_EQ(s->group, "dyn");
  EXPECT_EQ(s->interface, "veth0");
  EXPECT_EQ(s->local, "10.255.255.254");
  EXPECT_EQ(s->local_discr, reply.pkt.my_discriminator);
  EXPECT_EQ(s->counters.finals_sent, 1u);
  EXPECT_EQ(core_->stats().passive_created, 1u);

  // A second YD-0 Down from the same peer reaches the same session.
  deliver(p, State::Down);
  EXPECT_EQ(core_->session_count(), 1u);
  EXPECT_EQ(net_.attempts.size(), 1u);
  p.answer_polls = true;
  p.ours = s->local_discr;
  const std::size_t before_up = net_.sent.size();
  deliver(p, State::Up);  // SM-10
  auto up = sent_to(p, before_up);
  ASSERT_EQ(up.size(), 1u);
  EXPECT_EQ(up[0].pkt.state, State::Up);
  EXPECT_EQ(find(p)->state, State::Up);
  EXPECT_EQ(core_->session_count(), 1u);
}

// The rule's max_sessions caps what it creates; the rest is PassiveLimit.
TEST_F(CoreTest, AcceptRuleMaxSessionsEnforced) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 2));
  open();
  for (const char* a : {"10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}) {
    deliver(add_peer(a), State::Down);
  }
  EXPECT_EQ(core_->session_count(), 2u);
  EXPECT_EQ(drops(DropReason::PassiveLimit), 2u);
  EXPECT_EQ(core_->stats().passive_created, 2u);
  EXPECT_EQ(net_.paths.size(), 2u);
  EXPECT_TRUE(find("10.0.0.3"));
  EXPECT_TRUE(find("10.0.0.4"));
}

// Creation rate limit: a token bucket of passive_create_per_second tokens
// (burst the same). A burst of 5 new peers at one instant creates 2; 0.5 s
// later one token is back; 1 s after that one more peer is created at once,
// and a second (two tokens per second) but not a third.
TEST_F(CoreTest, PassiveCreationRateLimited) {
  opts_.passive_create_per_second = 2;
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 1000));
  open();
  std::size_t next = 100;
  auto burst = [&](int n) {
    for (int i = 0; i < n; ++i) deliver(add_peer(nth_peer(next++)), State::Down);
  };
  burst(5);
  EXPECT_EQ(core_->session_count(), 2u);
  EXPECT_EQ(drops(DropReason::PassiveLimit), 3u);
  run_for(ms(250));
  burst(1);
  EXPECT_EQ(core_->session_count(), 2u);  // half a token
  run_for(ms(250));
  burst(3);
  EXPECT_EQ(core_->session_count(), 3u);
  EXPECT_EQ(drops(DropReason::PassiveLimit), 6u);  // 3 + 1 + 2
  run_for(ms(1000));
  burst(1);
  EXPECT_EQ(core_->session_count(), 4u);  // one more
  burst(2);
  EXPECT_EQ(core_->session_count(), 5u);  // the second token of that second
  EXPECT_EQ(drops(DropReason::PassiveLimit), 7u);
  run_for(ms(10'000));  // the bucket holds at most 2
  burst(5);
  EXPECT_EQ(core_->stats().passive_created, 7u);
  EXPECT_EQ(net_.paths.size() - net_.closes.size(), core_->session_count());
}

// SM-02: a dynamic session outlives the peer's silence by at least one
// detection time, and never less than 5 s, then disappears, closes its path
// and frees its place under the rule's cap.
TEST_F(CoreTest, DynamicSessionRemovedAfterPeerSilence) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 1, ms(100)));
  open();
  Peer& p = add_peer("10.0.0.3");
  p.tx_us = p.rx_us = 100'000;
  deliver(p, State::Down);
  const TimePoint last_rx = now();
  ASSERT_EQ(core_->session_count(), 1u);
  const auto path = net_.paths.begin()->first;
  run_for(ms(301));  // Init -> detection time (3 x 100 ms) -> Down
  ASSERT_TRUE(find(p));
  EXPECT_EQ(find(p)->state, State::Down);
  EXPECT_EQ(find(p)->local_diag, 1);
  run_until(last_rx + ms(5000));
  EXPECT_TRUE(find(p)) << "removed before 5 s of silence";
  EXPECT_TRUE(net_.closes.empty());
  run_until(last_rx + ms(6000));
  EXPECT_FALSE(find(p));
  EXPECT_EQ(core_->session_count(), 0u);
  ASSERT_EQ(net_.closes.size(), 1u);
  EXPECT_EQ(net_.closes[0], path);
  const auto& closed = net_.paths.at(path);
  EXPECT_GE(closed.closed_at - last_rx, ms(5000));
  EXPECT_LE(closed.closed_at - last_rx, ms(5300) + opts_.timer_slot);
  EXPECT_EQ(core_->stats().passive_removed, 1u);
  EXPECT_EQ(net_.bad_sends, 0u);
  EXPECT_EQ(net_.bad_closes, 0u);
  // The cap (1) is free again.
  deliver(add_peer("10.0.0.4"), State::Down);
  EXPECT_TRUE(find("10.0.0.4"));
  EXPECT_EQ(core_->session_count(), 1u);
}

// SM-02 with a detection time longer than 5 s (Detect Mult 8 x 1 s): the
// session is kept at least that long after the last packet.
TEST_F(CoreTest, DynamicSessionKeptAtLeastOneLongDetectionTime) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 1));
  open();
  Peer& p = add_peer("10.0.0.3");
  p.mult = 8;
  deliver(p, State::Down);
  const TimePoint last_rx = now();
  ASSERT_EQ(find(p)->detection_time, ms(8000));
  run_until(last_rx + ms(8000));
  EXPECT_TRUE(find(p)) << "removed before one detection time of silence";
  run_until(last_rx + ms(30'000));
  EXPECT_FALSE(find(p));
  ASSERT_EQ(net_.closes.size(), 1u);
  EXPECT_GE(net_.paths.at(net_.closes[0]).closed_at - last_rx, ms(8000));
}

// A dynamic session whose peer keeps talking is never removed.
TEST_F(CoreTest, DynamicSessionKeptWhileThePeerTalks) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 4));
  open();
  Peer& p = add_peer("10.0.0.3");
  ASSERT_NE(bring_up(p), 0u);
  p.feed(ms(1000), now());
  run_for(ms(20'000));
  ASSERT_TRUE(find(p));
  EXPECT_EQ(find(p)->state, State::Up);
  EXPECT_TRUE(net_.closes.empty());
}

// PKT-11: a YD-0 packet the new passive session itself would drop (A = 1 with
// no authentication configured, step 10) creates nothing and costs no token.
TEST_F(CoreTest, PassivePacketTheSessionDropsCreatesNothing) {
  opts_.passive_create_per_second = 1;
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 8));
  open();
  Peer& p = add_peer("10.0.0.3");
  ControlPacket a = p.packet();
  a.auth_present = true;
  a.auth.type = core::wire::AuthType::SimplePassword;
  a.auth.key_id = 1;
  a.auth.password_len = 4;
  a.auth.password = {'a', 'b', 'c', 'd'};
  deliver(p, a);
  EXPECT_EQ(drops(DropReason::AuthPresentNotConfigured), 1u);
  EXPECT_EQ(core_->session_count(), 0u);
  EXPECT_TRUE(net_.attempts.empty());
  EXPECT_TRUE(net_.sent.empty());
  EXPECT_EQ(core_->stats().passive_created, 0u);
  // The one token is still there: a good packet at the same instant creates.
  deliver(p, State::Down);
  EXPECT_EQ(core_->session_count(), 1u);
}

// A passive session whose path cannot be opened is not created: the packet is
// dropped (PassiveLimit), a transmit error counted, and no token spent.
TEST_F(CoreTest, PassiveSessionWhosePathFailsIsNotCreated) {
  opts_.passive_create_per_second = 1;
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 8));
  open();
  Peer& p = add_peer("10.0.0.3");
  net_.fail_all_errno = EACCES;
  deliver(p, State::Down);
  EXPECT_EQ(core_->session_count(), 0u);
  EXPECT_EQ(drops(DropReason::PassiveLimit), 1u);
  EXPECT_EQ(core_->stats().tx_errors, 1u);
  EXPECT_EQ(core_->stats().passive_created, 0u);
  EXPECT_EQ(net_.attempts.size(), 1u);
  EXPECT_TRUE(net_.sent.empty());
  net_.fail_all_errno = 0;
  deliver(p, State::Down);
  ASSERT_EQ(core_->session_count(), 1u);
  ASSERT_EQ(net_.sent.size(), 1u);
  EXPECT_EQ(net_.sent[0].pkt.state, State::Init);
}

// RFC 5883 §4.1, MH-02: a multihop passive session is keyed on (peer, local
// address); the rule's min_ttl applies (MH-05).
TEST_F(CoreTest, MultihopAcceptRuleCreatesMultihopSession) {
  auto rule = accept_spec("10.1.0.0", 16, "mh", 8);
  rule.multihop = true;
  rule.min_ttl = 250;
  opts_.accepts.push_back(rule);
  open();
  Peer& p = add_peer("10.1.0.5", 0, true);
  p.info.ttl = 249;
  deliver(p, State::Down);
  EXPECT_EQ(drops(DropReason::BadTtl), 1u);
  EXPECT_EQ(core_->session_count(), 0u);
  p.info.ttl = 251;
  deliver(p, State::Down);
  ASSERT_EQ(core_->session_count(), 1u);
  const auto& spec = net_.paths.begin()->second.spec;
  EXPECT_TRUE(spec.multihop);
  ASSERT_TRUE(spec.local);
  EXPECT_EQ(*spec.local, p.info.dst);
  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->multihop);
  EXPECT_TRUE(s->dynamic);
  EXPECT_EQ(s->state, State::Init);
  // The same peer again: the same session.
  deliver(p, State::Down);
  EXPECT_EQ(core_->session_count(), 1u);
  // The same peer towards another local address is another pair: a new session.
  RxInfo other = p.info;
  other.dst = addr("10.255.255.253");
  ControlPacket d = p.packet();
  d.your_discriminator = 0;
  deliver(d, other);
  EXPECT_EQ(core_->session_count(), 2u);
  // On the single-hop port no rule covers it.
  RxInfo sh = p.info;
  sh.multihop = false;
  sh.ttl = 255;
  sh.ifindex = 2;
  deliver(d, sh);
  EXPECT_EQ(drops(DropReason::NoSessionForPeer), 1u);
  EXPECT_EQ(core_->session_count(), 2u);
}

// DIS-06: a configured passive session sends nothing until the peer speaks.
TEST_F(CoreTest, ConfiguredPassiveSessionWaitsForThePeer) {
  auto spec = session_spec("10.0.0.1");
  spec.passive = true;
  opts_.sessions.push_back(spec);
  open();
  run_for(ms(5000));
  EXPECT_TRUE(net_.sent.empty());
  Peer& p = add_peer("10.0.0.1");
  EXPECT_NE(bring_up(p), 0u);
}

// DIS-04, SH-10: one peer address on two interfaces is two sessions; a YD-0
// packet reaches the one of its ingress interface. DIS-02: with YD set, the
// discriminator alone selects the session, whatever the source.
TEST_F(CoreTest, SamePeerOnTwoInterfacesDemuxedByIngress) {
  auto a = session_spec("10.0.0.1", "web");
  a.interface = "veth0";
  auto b = session_spec("10.0.0.1", "db");
  b.interface = "veth1";
  opts_.sessions = {a, b};
  open();
  ASSERT_EQ(core_->session_count(), 2u);
  auto on = [&](const std::string& ifname) {
    for (auto& s : core_->sessions()) {
      if (s.interface == ifname) return s;
    }
    ADD_FAILURE() << "no session on " << ifname;
    return SessionSnapshot{};
  };
  Peer& p = add_peer("10.0.0.1", 3);  // arrives on veth1
  deliver(p, State::Down);
  EXPECT_EQ(on("veth1").state, State::Init);
  EXPECT_EQ(on("veth0").state, State::Down);
  ASSERT_EQ(net_.sent.size(), 1u);
  EXPECT_EQ(net_.paths.at(net_.sent[0].path).spec.interface, "veth1");  // SH-11
  EXPECT_EQ(net_.paths.at(net_.sent[0].path).spec.ifindex, 3u);
  p.ours = net_.sent[0].pkt.my_discriminator;
  RxInfo elsewhere = p.info;
  elsewhere.src = addr("10.0.0.99");
  elsewhere.src_port = 40000;
  elsewhere.ifindex = 2;
  p.state = State::Up;
  deliver(p.packet(), elsewhere);
  EXPECT_EQ(on("veth1").state, State::Up);
  EXPECT_EQ(on("veth0").state, State::Down);
  // A peer selector matches both.
  EXPECT_EQ(core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), core::Hold::Down, 5).matched,
            2u);
}

// SH-15: an IPv6 link-local peer means nothing without its interface: the
// passive session's path carries the scope, its name shows the interface, and
// a scoped peer selector reaches it only with the right scope.
TEST_F(CoreTest, LinkLocalPassiveSessionCarriesItsScope) {
  opts_.accepts.push_back(accept_spec("fe80::", 64, "ll", 8));
  open();
  Peer& p = add_peer("fe80::1", 2);
  p.info.dst = addr("fe80::fe");
  deliver(p, State::Down);
  ASSERT_EQ(core_->session_count(), 1u);
  const auto& spec = net_.paths.begin()->second.spec;
  EXPECT_EQ(spec.peer.to_v6().scope_id(), 2u);
  EXPECT_EQ(spec.ifindex, 2u);
  auto s = find("fe80::1%veth0");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->interface, "veth0");
  EXPECT_EQ(s->local, "fe80::fe");
  auto r = core_->set_hold(HoldSource::Admin, peer_sel("fe80::1%veth1"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "no session with peer fe80::1%veth1");
  r = core_->set_hold(HoldSource::Admin, peer_sel("fe80::1%veth0"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(find("fe80::1%veth0")->hold, core::Hold::Down);
}

// ================================================================ holds

// SM-21, SM-22: a Down hold on all sessions goes out at once (the packet at
// the same fake instant), diag 5; the peer's Down and Init are not answered
// with Init/Up while held; release lets the handshake complete again.
TEST_F(CoreTest, HoldDownAllSentAtOnceAndKept) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "db"));
  open();
  Peer& a = add_peer("10.0.0.1");
  Peer& b = add_peer("10.0.0.2");
  ASSERT_NE(bring_up(a), 0u);
  ASSERT_NE(bring_up(b), 0u);
  a.feed(kSlow, now());
  b.feed(kSlow, now());
  run_for(ms(300));
  const std::size_t before = net_.sent.size();
  auto r = core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::Down, 5, "maintenance");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 2u);
  ASSERT_EQ(net_.sent.size() - before, 2u);
  for (const auto* p : {&a, &b}) {
    auto pk = sent_to(*p, before);
    ASSERT_EQ(pk.size(), 1u);
    EXPECT_EQ(pk[0].at, now());
    EXPECT_EQ(pk[0].pkt.state, State::Down);
    EXPECT_EQ(pk[0].pkt.diag, 5);
    auto s = find(*p);
    EXPECT_EQ(s->hold, core::Hold::Down);
    EXPECT_EQ(s->hold_source, HoldSource::Admin);
    EXPECT_EQ(s->hold_reason, "maintenance");
  }
  // The peer follows (Down, then Init): we stay Down.
  a.every = Duration{0};
  a.next_at = TimePoint::max();
  deliver(a, State::Down, 3);
  deliver(a, State::Init, 3);
  run_for(ms(3000));
  for (const auto& x : sent_to(a, before)) EXPECT_EQ(x.pkt.state, State::Down);
  EXPECT_EQ(find(a)->state, State::Down);
  EXPECT_EQ(find(a)->hold, core::Hold::Down);
  // Release: the next Down from the peer brings it up again.
  r = core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::None, 0);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(find(a)->hold, core::Hold::None);
  EXPECT_EQ(find(a)->hold_reason, "");
  EXPECT_NE(bring_up(a), 0u);
}

// ADM-01: AdminDown by peer selector, diag 7, at once; the other session
// sends nothing at that instant.
TEST_F(CoreTest, HoldAdminDownByPeerSelector) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "web"));
  open();
  Peer& a = add_peer("10.0.0.1");
  Peer& b = add_peer("10.0.0.2");
  ASSERT_NE(bring_up(a), 0u);
  ASSERT_NE(bring_up(b), 0u);
  run_for(ms(300));
  const std::size_t before = net_.sent.size();
  auto r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), core::Hold::AdminDown, 0);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 1u);
  auto pk = sent_to(a, before);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::AdminDown);
  EXPECT_EQ(pk[0].pkt.diag, 7);  // default diag of AdminDown
  EXPECT_TRUE(sent_to(b, before).empty());
  EXPECT_EQ(find(b)->hold, core::Hold::None);
  EXPECT_EQ(find(a)->state, State::AdminDown);
  // Down by peer selector on the other one: at once, diag 5 by default.
  run_for(ms(10));
  const std::size_t before_b = net_.sent.size();
  r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.2"), core::Hold::Down, 0);
  EXPECT_EQ(r.matched, 1u);
  pk = sent_to(b, before_b);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(pk[0].pkt.diag, 5);
  EXPECT_TRUE(sent_to(a, before_b).empty());
  // Kept: the peer's Down and Init do not move it.
  deliver(b, State::Down, 3);
  deliver(b, State::Init, 3);
  run_for(ms(2000));
  for (const auto& x : sent_to(b, before_b)) EXPECT_EQ(x.pkt.state, State::Down);
  EXPECT_EQ(find(b)->state, State::Down);
}

// A Group hold touches only that group's sessions: they announce at once, the
// other group's sessions send nothing extra at that instant.
TEST_F(CoreTest, GroupHoldOnlyTouchesThatGroup) {
  for (int i = 1; i <= 6; ++i) {
    opts_.sessions.push_back(
        session_spec("10.0.0." + std::to_string(i), i <= 3 ? "web" : "db", kSlow));
  }
  open();
  std::vector<Peer*> web, db;
  for (int i = 1; i <= 6; ++i) {
    Peer& p = add_peer("10.0.0." + std::to_string(i));
    ASSERT_NE(bring_up(p), 0u);
    (i <= 3 ? web : db).push_back(&p);
  }
  run_for(ms(200));
  const std::size_t before = net_.sent.size();
  auto r = core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::Down, 6, "check");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 3u);
  EXPECT_EQ(net_.sent.size() - before, 3u);
  for (auto* p : web) {
    auto pk = sent_to(*p, before);
    ASSERT_EQ(pk.size(), 1u);
    EXPECT_EQ(pk[0].at, now());
    EXPECT_EQ(pk[0].pkt.state, State::Down);
    EXPECT_EQ(pk[0].pkt.diag, 6);
    EXPECT_EQ(find(*p)->hold_source, HoldSource::Health);
  }
  for (auto* p : db) {
    EXPECT_TRUE(sent_to(*p, before).empty());
    EXPECT_EQ(find(*p)->state, State::Up);
    EXPECT_EQ(find(*p)->hold, core::Hold::None);
  }
  // Kept: the held group's peers cannot bring their sessions up.
  for (auto* p : web) {
    deliver(*p, State::Down, 3);
    deliver(*p, State::Init, 3);
  }
  run_for(ms(2000));
  for (auto* p : web) {
    for (const auto& x : sent_to(*p, before)) EXPECT_EQ(x.pkt.state, State::Down);
    EXPECT_EQ(find(*p)->state, State::Down);
  }
}

// Health verdicts: a new diag under the same hold goes out at once (SM-21);
// the same hold and diag with a new reason only changes the reason shown; an
// Admin AdminDown (no reason) beats it, and its release shows the health
// reason again.
TEST_F(CoreTest, HoldReasonsAndDiagChanges) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  using core::Hold;
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), Hold::Down, 5, "check a: 503").error,
      "");
  run_for(ms(100));
  std::size_t before = net_.sent.size();
  core_->set_hold(HoldSource::Health, group_sel("web"), Hold::Down, 5, "check a: timeout");
  EXPECT_EQ(net_.sent.size(), before);  // nothing changed on the wire
  EXPECT_EQ(find(p)->hold_reason, "check a: timeout");
  core_->set_hold(HoldSource::Health, group_sel("web"), Hold::Down, 6, "check b: down");
  auto pk = sent_to(p, before);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(pk[0].pkt.diag, 6);
  EXPECT_EQ(find(p)->local_diag, 6);
  before = net_.sent.size();
  core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::AdminDown, 7);
  auto s = find(p);
  EXPECT_EQ(s->hold, Hold::AdminDown);
  EXPECT_EQ(s->hold_source, HoldSource::Admin);
  EXPECT_EQ(s->hold_reason, "");
  EXPECT_EQ(sent_to(p, before).size(), 1u);
  core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::None, 0);
  s = find(p);
  EXPECT_EQ(s->hold, Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, "check b: down");
  EXPECT_EQ(s->state, State::Down);
}

// Selectors naming nothing are refused (and change nothing); releasing an
// unknown peer is fine (a passive session may have gone), an unknown group
// is not; groups known from accept rules or [[group]] are valid.
TEST_F(CoreTest, HoldSelectorErrors) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.accepts.push_back(accept_spec("10.0.1.0", 24, "dyn", 8));
  opts_.declared_groups.push_back("declared");
  open();
  const std::size_t before = net_.sent.size();
  auto r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.99"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "no session with peer 10.0.0.99");
  r = core_->set_hold(HoldSource::Admin, peer_sel("not-an-address"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "invalid peer address \"not-an-address\"");
  r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1%veth0"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "invalid peer address \"10.0.0.1%veth0\"");
  r = core_->set_hold(HoldSource::Admin, group_sel("nope"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "no session in group \"nope\"");
  r = core_->set_hold(HoldSource::Count, all_sel(), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "invalid hold source");
  EXPECT_EQ(net_.sent.size(), before);
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::None);

  r = core_->set_hold(HoldSource::Admin, group_sel("dyn"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 0u);
  r = core_->set_hold(HoldSource::Admin, group_sel("declared"), core::Hold::Down, 5);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 0u);
  r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.99"), core::Hold::None, 0);
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 0u);
  // Releasing an unknown group is refused too, naming it: "set-state up
  // --group typo" must not succeed while changing nothing.
  r = core_->set_hold(HoldSource::Admin, group_sel("nope"), core::Hold::None, 0);
  EXPECT_EQ(r.error, "no session in group \"nope\"");
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::None);
  EXPECT_EQ(net_.sent.size(), before);
}

// A rule for a group that a reload removed can still be released (and only
// by the source that set it).
TEST_F(CoreTest, RuleOfAGroupGoneFromTheConfigCanBeReleased) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.declared_groups.push_back("old");
  open();
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("old"), core::Hold::Down, 5).error, "");
  EngineOptions next = opts_;
  next.declared_groups.clear();
  core_->reload(next);
  EXPECT_EQ(core_->set_hold(HoldSource::Health, group_sel("old"), core::Hold::None, 0).error,
            "no session in group \"old\"");
  EXPECT_EQ(core_->set_hold(HoldSource::Admin, group_sel("old"), core::Hold::None, 0).error, "");
}

// A hold applies to sessions created later: a passive session created by an
// accept rule under a group hold answers Down with the hold's diag (and the
// peer's discriminator), never Init.
TEST_F(CoreTest, HoldAppliesToLaterPassiveSession) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 8));
  open();
  ASSERT_EQ(core_->set_hold(HoldSource::Health, group_sel("dyn"), core::Hold::Down, 5, "bad").error,
            "");
  Peer& p = add_peer("10.0.0.3");
  deliver(p, State::Down);
  ASSERT_EQ(net_.sent.size(), 1u);
  EXPECT_EQ(net_.sent[0].pkt.state, State::Down);
  EXPECT_EQ(net_.sent[0].pkt.diag, 5);
  EXPECT_EQ(net_.sent[0].pkt.your_discriminator, p.discr);
  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, "bad");
  p.ours = s->local_discr;
  deliver(p, State::Init);
  run_for(ms(2000));
  EXPECT_EQ(find(p)->state, State::Down);
  for (const auto& x : net_.sent) EXPECT_EQ(x.pkt.state, State::Down);
}

// A group rule clears the peer rules of the same source that cover sessions
// of that group; other sources' rules and peers outside the group keep theirs.
TEST_F(CoreTest, GroupRuleClearsThatSourcesPeerRulesItCovers) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.3", "db"));
  open();
  using core::Hold;
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::AdminDown, 7).error, "");
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.3"), Hold::AdminDown, 7).error, "");
  ASSERT_EQ(core_->set_hold(HoldSource::Health, peer_sel("10.0.0.2"), Hold::AdminDown, 7).error,
            "");
  const std::size_t before = net_.sent.size();
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("web"), Hold::Down, 5).error, "");
  auto s1 = find("10.0.0.1");
  EXPECT_EQ(s1->hold, Hold::Down);  // the Admin peer rule was cleared
  EXPECT_EQ(s1->state, State::Down);
  EXPECT_EQ(s1->local_diag, 5);
  auto pk = net_.to(addr("10.0.0.1"), before);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(find("10.0.0.2")->hold, Hold::AdminDown);  // Health's rule stays
  EXPECT_EQ(find("10.0.0.2")->hold_source, HoldSource::Health);
  EXPECT_EQ(find("10.0.0.3")->hold, Hold::AdminDown);  // not in the group
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("web"), Hold::None, 0).error, "");
  EXPECT_EQ(find("10.0.0.1")->hold, Hold::None);  // nothing left of the peer rule
  EXPECT_EQ(find("10.0.0.2")->hold, Hold::AdminDown);
  EXPECT_EQ(find("10.0.0.3")->hold, Hold::AdminDown);
}

// A peer rule the group rule clears may also have covered a session of that
// peer outside the group (same address on another interface): that session
// is re-evaluated at once, not left with the stale hold.
TEST_F(CoreTest, ClearedPeerRuleReleasesTheSessionOutsideTheGroupToo) {
  auto a = session_spec("10.0.0.1", "web");
  a.interface = "veth0";
  auto b = session_spec("10.0.0.1", "db");
  b.interface = "veth1";
  opts_.sessions = {a, b};
  open();
  using core::Hold;
  auto on = [&](const std::string& ifname) {
    for (auto& s : core_->sessions()) {
      if (s.interface == ifname) return s;
    }
    ADD_FAILURE() << "no session on " << ifname;
    return SessionSnapshot{};
  };
  auto r = core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::AdminDown, 7);
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(on("veth1").state, State::AdminDown);
  const std::size_t before = net_.sent.size();
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("web"), Hold::Down, 5).error, "");
  EXPECT_EQ(on("veth0").hold, Hold::Down);
  EXPECT_EQ(on("veth0").state, State::Down);
  EXPECT_EQ(on("veth1").hold, Hold::None);
  EXPECT_EQ(on("veth1").state, State::Down);  // SM-19: AdminDown -> Down on release
  std::set<std::string> announced;
  for (std::size_t i = before; i < net_.sent.size(); ++i) {
    EXPECT_EQ(net_.sent[i].at, now());
    announced.insert(net_.paths.at(net_.sent[i].path).spec.interface);
  }
  EXPECT_EQ(announced, (std::set<std::string>{"veth0", "veth1"}));
}

// For one source the most specific rule wins: peer > group > all; `all`
// clears the more specific rules of that source.
TEST_F(CoreTest, MostSpecificRuleWins) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.3", "db"));
  open();
  using core::Hold;
  auto hold = [&](const char* p) { return find(p)->hold; };
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), Hold::Down, 5).error, "");
  EXPECT_EQ(hold("10.0.0.1"), Hold::Down);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("web"), Hold::None, 0).error, "");
  EXPECT_EQ(hold("10.0.0.1"), Hold::None);
  EXPECT_EQ(hold("10.0.0.2"), Hold::None);
  EXPECT_EQ(hold("10.0.0.3"), Hold::Down);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::AdminDown, 7).error, "");
  EXPECT_EQ(hold("10.0.0.1"), Hold::AdminDown);
  EXPECT_EQ(hold("10.0.0.2"), Hold::None);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.3"), Hold::None, 0).error, "");
  EXPECT_EQ(hold("10.0.0.3"), Hold::None);  // a peer None beats the all rule
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), Hold::Down, 5).error, "");
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) EXPECT_EQ(hold(p), Hold::Down) << p;
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), Hold::None, 0).error, "");
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) EXPECT_EQ(hold(p), Hold::None) << p;
}

// Over the sources the strongest hold wins (AdminDown > Down); on a tie the
// lower source; each source keeps its own rules and reason.
TEST_F(CoreTest, StrongestSourceWins) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "web"));
  open();
  using core::Hold;
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), Hold::Down, 5, "check a: 503").error,
      "");
  ASSERT_EQ(
      core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.1"), Hold::AdminDown, 7, "op").error, "");
  auto s = find("10.0.0.1");
  EXPECT_EQ(s->hold, Hold::AdminDown);
  EXPECT_EQ(s->hold_source, HoldSource::Admin);
  EXPECT_EQ(s->hold_reason, "op");
  EXPECT_EQ(s->state, State::AdminDown);
  s = find("10.0.0.2");
  EXPECT_EQ(s->hold, Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, "check a: 503");
  // Tie (Down / Down): the lower source (Admin) wins.
  ASSERT_EQ(
      core_->set_hold(HoldSource::Admin, peer_sel("10.0.0.2"), Hold::Down, 5, "admin too").error,
      "");
  EXPECT_EQ(find("10.0.0.2")->hold_source, HoldSource::Admin);
  EXPECT_EQ(find("10.0.0.2")->hold_reason, "admin too");
  // Shutdown AdminDown beats Health Down.
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), Hold::None, 0).error, "");
  s = find("10.0.0.1");
  EXPECT_EQ(s->hold, Hold::Down);  // back to the health rule
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, "check a: 503");
  EXPECT_EQ(s->state, State::Down);
  ASSERT_EQ(core_->set_hold(HoldSource::Shutdown, all_sel(), Hold::AdminDown, 7).error, "");
  EXPECT_EQ(find("10.0.0.2")->hold_source, HoldSource::Shutdown);
  EXPECT_EQ(find("10.0.0.2")->hold, Hold::AdminDown);
}

// ================================================================ health start-up hold, fail-safe

// A group driven by health checks starts held Down with its diag (SM-22):
// the peer's Down/Init never move us to Init/Up until the first verdict
// releases the group; other groups are not held.
TEST_F(CoreTest, HealthStartupHoldKeepsManagedGroupDownUntilFirstVerdict) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "plain"));
  opts_.sessions.push_back(session_spec("10.0.0.3", "nochecks"));
  opts_.declared_groups = {"web", "nochecks"};
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::AdminDown, 6, 2});
  open();
  Peer& p = add_peer("10.0.0.1");
  Peer& plain = add_peer("10.0.0.2");
  run_for(ms(10));
  auto first = net_.last_to(p.address);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->pkt.state, State::Down);
  EXPECT_EQ(first->pkt.diag, 6);
  auto s = find(p);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, kStartupReason);
  EXPECT_EQ(s->local_diag, 6);
  EXPECT_EQ(s->unhealthy_signal, "down");
  EXPECT_EQ(s->maintenance_signal, "admin-down");
  for (const char* other : {"10.0.0.2", "10.0.0.3"}) {
    auto o = find(other);
    EXPECT_EQ(o->hold, core::Hold::None) << other;
    EXPECT_EQ(o->hold_reason, "") << other;
    EXPECT_EQ(o->unhealthy_signal, "") << other;
    EXPECT_EQ(o->maintenance_signal, "") << other;
  }
  EXPECT_NE(bring_up(plain), 0u);

  // The peer tries Down (YD 0), then Init with our discriminator.
  deliver(p, State::Down);
  p.ours = s->local_discr;
  deliver(p, State::Init);
  p.feed(kSlow, now());
  run_for(ms(3000));
  for (const auto& x : sent_to(p)) EXPECT_EQ(x.pkt.state, State::Down);
  EXPECT_EQ(find(p)->state, State::Down);

  // The first verdict (healthy) releases it; the handshake completes.
  p.next_at = TimePoint::max();
  auto r = core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 1u);
  s = find(p);
  EXPECT_EQ(s->hold, core::Hold::None);
  EXPECT_EQ(s->hold_reason, "");
  EXPECT_NE(bring_up(p), 0u);
}

// Fail-safe: heartbeats flowing -> nothing; stale by more than the timeout ->
// managed groups held Down at once, reason ending "(fail-safe)", one trip;
// a later health verdict does not lift it; heartbeats resume -> released and
// the session comes back. An unmanaged group is untouched throughout.
TEST_F(CoreTest, FailsafeHoldsManagedGroupsAndReleases) {
  opts_.failsafe_timeout = ms(200);
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "plain"));
  opts_.declared_groups = {"web"};
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 5, 1});
  open();
  EXPECT_TRUE(core_->failsafe_enabled());
  EXPECT_EQ(core_->failsafe_period(), ms(50));
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
      "");
  Peer& p = add_peer("10.0.0.1");
  Peer& plain = add_peer("10.0.0.2");
  ASSERT_NE(bring_up(p), 0u);
  ASSERT_NE(bring_up(plain), 0u);
  p.feed(kSlow, now());
  plain.feed(kSlow, now());

  // Heartbeats every 50 ms for 600 ms: no trip.
  for (int i = 0; i < 12; ++i) {
    run_for(core_->failsafe_period());
    core_->failsafe_check(now());
  }
  EXPECT_EQ(core_->stats().failsafe_trips, 0u);
  EXPECT_EQ(find(p)->state, State::Up);

  // The ops loop stalls: the check keeps running with the old heartbeat.
  const TimePoint last_hb = now();
  run_until(last_hb + ms(200));
  const std::size_t before = net_.sent.size();
  core_->failsafe_check(last_hb);  // exactly the timeout: not yet
  EXPECT_EQ(core_->stats().failsafe_trips, 0u);
  EXPECT_EQ(net_.sent.size(), before);
  run_until(last_hb + ms(250));
  const std::size_t at_trip = net_.sent.size();
  core_->failsafe_check(last_hb);
  EXPECT_EQ(core_->stats().failsafe_trips, 1u);
  auto pk = sent_to(p, at_trip);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(pk[0].pkt.diag, 5);
  EXPECT_TRUE(sent_to(plain, at_trip).empty());
  auto s = find(p);
  EXPECT_EQ(s->state, State::Down);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Failsafe);
  EXPECT_EQ(s->hold_reason, "health verdicts stalled for 250ms (fail-safe)");
  EXPECT_TRUE(s->hold_reason.ends_with("(fail-safe)")) << s->hold_reason;
  EXPECT_EQ(count_lines("fail-safe: no health heartbeat"), 1);

  // Still stale: no second trip. A verdict does not lift the fail-safe.
  for (int i = 0; i < 5; ++i) {
    run_for(core_->failsafe_period());
    core_->failsafe_check(last_hb);
  }
  EXPECT_EQ(core_->stats().failsafe_trips, 1u);
  core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  EXPECT_EQ(find(p)->hold, core::Hold::Down);
  EXPECT_TRUE(find(p)->hold_reason.ends_with("(fail-safe)"));
  auto pl = find(plain);
  EXPECT_EQ(pl->state, State::Up);
  EXPECT_EQ(pl->hold, core::Hold::None);

  // While tripped the peer cannot bring it up.
  p.next_at = TimePoint::max();
  const std::size_t tripped = net_.sent.size();
  deliver(p, State::Down);
  deliver(p, State::Init);
  for (const auto& x : sent_to(p, tripped)) EXPECT_EQ(x.pkt.state, State::Down);
  EXPECT_EQ(find(p)->state, State::Down);

  // Heartbeats resume: released at the next check.
  run_for(core_->failsafe_period());
  core_->failsafe_check(now());
  s = find(p);
  EXPECT_EQ(s->hold, core::Hold::None);
  EXPECT_EQ(s->hold_reason, "");
  EXPECT_EQ(count_lines("fail-safe released"), 1);
  EXPECT_NE(bring_up(p), 0u);
  EXPECT_EQ(core_->stats().failsafe_trips, 1u);
}

// The first heartbeat window starts at start(), not at construction; a trip
// under the start-up hold leaves the start-up reason (tie: Health wins) until
// the first verdict, then the fail-safe shows.
TEST_F(CoreTest, FailsafeWindowStartsAtStart) {
  opts_.failsafe_timeout = ms(200);
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 5, 1});
  core_ = std::make_unique<EngineCore>(opts_, net_, clock_, log_, 7);
  core_->open();
  const TimePoint early_hb = now();
  clock_.advance(ms(400));  // older than the timeout at start()
  core_->start();
  const TimePoint started = now();
  run_until(started + ms(150));
  core_->failsafe_check(early_hb);
  EXPECT_EQ(core_->stats().failsafe_trips, 0u);
  run_until(started + ms(250));
  core_->failsafe_check(std::nullopt);
  EXPECT_EQ(core_->stats().failsafe_trips, 1u);
  EXPECT_EQ(find("10.0.0.1")->hold_reason, kStartupReason);
  core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  auto s = find("10.0.0.1");
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_TRUE(s->hold_reason.ends_with("(fail-safe)")) << s->hold_reason;
}

// Shutdown: the health side stops before the engine's shutdown begins, so
// heartbeats stop while the daemon is still signalling Up. Once disarmed
// (the stop signal was taken) that silence never trips the fail-safe: no
// Down diag 5 goes out ahead of the configured shutdown signal, which then
// goes out as configured (AdminDown diag 7 here).
TEST_F(CoreTest, DisarmedFailsafeNeverTripsDuringShutdown) {
  opts_.failsafe_timeout = ms(200);
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.declared_groups = {"web"};
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 5, 1});
  open();
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
      "");
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  p.feed(kSlow, now());

  const TimePoint last_hb = now();
  core_->disarm_failsafe();
  const std::size_t before = net_.sent.size();
  // A slow stop of the health side: far past the timeout, checks keep coming.
  for (int i = 0; i < 40; ++i) {
    run_for(core_->failsafe_period());
    p.feed(kSlow, now());
    core_->failsafe_check(last_hb);
  }
  EXPECT_EQ(core_->stats().failsafe_trips, 0u);
  for (const auto& x : sent_to(p, before)) {
    EXPECT_EQ(x.pkt.state, State::Up);
    EXPECT_EQ(x.pkt.diag, 0);
  }
  EXPECT_EQ(find(p)->state, State::Up);
  EXPECT_EQ(count_lines("fail-safe"), 0);

  const std::size_t at_shutdown = net_.sent.size();
  core_->begin_shutdown(core::Hold::AdminDown);
  auto pk = sent_to(p, at_shutdown);
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk[0].pkt.state, State::AdminDown);
  EXPECT_EQ(pk[0].pkt.diag, 7);
}

// Without the disarm the same silence trips it (the rule above is not vacuous).
TEST_F(CoreTest, FailsafeTripsWhenNotDisarmed) {
  opts_.failsafe_timeout = ms(200);
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.declared_groups = {"web"};
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 5, 1});
  open();
  core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy");
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  const TimePoint last_hb = now();
  run_until(last_hb + ms(250));
  core_->failsafe_check(last_hb);
  EXPECT_EQ(core_->stats().failsafe_trips, 1u);
  EXPECT_EQ(find(p)->state, State::Down);
}

// No health-managed group: no fail-safe, even without any heartbeat.
TEST_F(CoreTest, NoFailsafeWithoutManagedGroups) {
  opts_.failsafe_timeout = ms(100);
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.declared_groups = {"web"};  // declared, but no checks
  open();
  EXPECT_FALSE(core_->failsafe_enabled());
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  p.feed(kSlow, now());
  for (int i = 0; i < 40; ++i) {
    run_for(ms(100));
    core_->failsafe_check(std::nullopt);
  }
  EXPECT_EQ(core_->stats().failsafe_trips, 0u);
  EXPECT_EQ(find(p)->state, State::Up);
  EXPECT_EQ(find(p)->hold, core::Hold::None);
  EXPECT_EQ(count_lines("fail-safe"), 0);
}

// ================================================================ shutdown

// ADM-02, SM-21: shutdown announces Down (diag 5) at once to an Up session;
// it is done when the peer acknowledges (its Down), not before.
TEST_F(CoreTest, ShutdownAnnouncesDownAtOnceAndEndsOnAck) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 8));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  run_for(ms(100));
  EXPECT_FALSE(core_->shutting_down());
  const std::size_t before = net_.sent.size();
  core_->begin_shutdown(core::Hold::Down);
  EXPECT_TRUE(core_->shutting_down());
  auto pk = sent_to(p, before);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(pk[0].pkt.diag, 5);
  EXPECT_EQ(find(p)->hold_source, HoldSource::Shutdown);
  EXPECT_FALSE(core_->shutdown_done());
  run_for(ms(200));
  EXPECT_FALSE(core_->shutdown_done());
  // No new passive sessions while shutting down.
  deliver(add_peer("10.0.0.50"), State::Down);
  EXPECT_EQ(core_->session_count(), 1u);
  EXPECT_EQ(drops(DropReason::NoSessionForPeer), 1u);
  // The peer acknowledges.
  deliver(p, State::Down, 3);
  EXPECT_TRUE(core_->shutdown_done());
  EXPECT_EQ(find(p)->remote_state, State::Down);
}

// AdminDown signal: state AdminDown, diag 7.
TEST_F(CoreTest, ShutdownAdminDownSignal) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.push_back(session_spec("10.0.0.2"));
  open();
  Peer& a = add_peer("10.0.0.1");
  Peer& b = add_peer("10.0.0.2");
  ASSERT_NE(bring_up(a), 0u);
  ASSERT_NE(bring_up(b), 0u);
  const std::size_t before = net_.sent.size();
  core_->begin_shutdown(core::Hold::AdminDown);
  EXPECT_EQ(net_.sent.size() - before, 2u);
  for (const auto* p : {&a, &b}) {
    auto pk = sent_to(*p, before);
    ASSERT_EQ(pk.size(), 1u);
    EXPECT_EQ(pk[0].at, now());
    EXPECT_EQ(pk[0].pkt.state, State::AdminDown);
    EXPECT_EQ(pk[0].pkt.diag, 7);
  }
  // One acknowledges, the other does not: not done yet.
  deliver(a, State::Down, 3);
  EXPECT_FALSE(core_->shutdown_done());
  deliver(b, State::AdminDown, 0);
  EXPECT_TRUE(core_->shutdown_done());
}

// A silent peer is waited for one peer detection time (its Detect Mult x
// max(its Required Min RX, our Desired Min TX) = 3 x 100 ms here), not more;
// after the announcement the session keeps its own schedule (no repeats
// closer than 75 % of its interval).
TEST_F(CoreTest, ShutdownWaitsOnePeerDetectionTime) {
  opts_.sessions.push_back(session_spec(addr("10.0.0.1"), "web", ms(100)));
  open();
  Peer& p = add_peer("10.0.0.1");
  p.tx_us = p.rx_us = 100'000;
  ASSERT_NE(bring_up(p), 0u);
  p.feed(ms(100), now());
  run_for(ms(1000));
  ASSERT_EQ(find(p)->state, State::Up);
  ASSERT_EQ(find(p)->tx_interval, ms(100));
  p.next_at = TimePoint::max();  // silent from now on
  const std::size_t before = net_.sent.size();
  const TimePoint t = now();
  core_->begin_shutdown(core::Hold::Down);
  EXPECT_EQ(core_->shutdown_wake(), t + ms(300));
  EXPECT_FALSE(core_->shutdown_done());
  run_until(t + ms(300) - Duration{1});
  EXPECT_FALSE(core_->shutdown_done());
  run_until(t + ms(300));
  EXPECT_TRUE(core_->shutdown_done());
  run_until(t + ms(3000));
  auto pk = sent_to(p, before);
  ASSERT_GE(pk.size(), 2u);
  EXPECT_EQ(pk[0].at, t);
  const Duration iv = find(p)->tx_interval;
  EXPECT_GE(iv, ms(100));
  for (std::size_t i = 1; i < pk.size(); ++i) {
    EXPECT_EQ(pk[i].pkt.state, State::Down);
    EXPECT_GE(pk[i].at - pk[i - 1].at, iv * 3 / 4) << "packet " << i;
  }
}

// With slow timers a silent peer's detection time is 3 s: the wait is capped
// at 1 s.
TEST_F(CoreTest, ShutdownDoneAfterAtMostOneSecond) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  const std::size_t before = net_.sent.size();
  const TimePoint t = now();
  core_->begin_shutdown(core::Hold::Down);
  EXPECT_EQ(core_->shutdown_wake(), t + ms(1000));
  run_until(t + ms(999));
  EXPECT_FALSE(core_->shutdown_done());
  run_until(t + ms(1000));
  EXPECT_TRUE(core_->shutdown_done());
  // The announcement, then nothing closer than 75 % of the 1 s interval.
  auto pk = sent_to(p, before);
  ASSERT_GE(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, t);
  for (std::size_t i = 1; i < pk.size(); ++i) EXPECT_GE(pk[i].at - pk[i - 1].at, ms(750));
}

// Nothing Up: nothing to wait for.
TEST_F(CoreTest, ShutdownWithNothingUpIsDoneAtOnce) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  run_for(ms(10));
  core_->begin_shutdown(core::Hold::Down);
  EXPECT_TRUE(core_->shutdown_done());
}

// ================================================================ transmit schedule

// TMR-02, TMR-20, SM-21: 200 sessions at 10 ms x 3, Up, served by one timer
// with a slot: over 2 s of fake time every gap between two periodic packets
// of a session is >= 75 % of the interval (the jitter's lower bound is raised
// by the slot exactly so this holds) and <= 100 % + the slot (a packet served
// up to one slot early, the next one on time). Slots: the default 50 us, the
// 1 ms the configuration allows at most, 2.5 ms beyond it (the jitter range
// shrinks to nothing, the bounds still hold), and 1 ms served 4 sessions per
// on_timer() call.
constexpr std::size_t kNoLimit = static_cast<std::size_t>(-1);

struct ScheduleCase {
  int slot_us;
  std::size_t limit;  // sessions per on_timer() call
};

class CoreScheduleTest : public CoreTest, public ::testing::WithParamInterface<ScheduleCase> {};

TEST_P(CoreScheduleTest, PeriodicGapsOf200SessionsStayWithin75To100Percent) {
  constexpr std::size_t kSessions = 200;
  constexpr Duration kIv = ms(10);
  opts_.timer_slot = Duration{GetParam().slot_us};
  timer_limit_ = GetParam().limit;
  for (std::size_t i = 0; i < kSessions; ++i) {
    opts_.sessions.push_back(session_spec(nth_peer(i), "fast", kIv));
  }
  open();
  std::vector<Peer*> peers;
  for (std::size_t i = 0; i < kSessions; ++i) {
    Peer& p = add_peer(nth_peer(i));
    p.tx_us = 50'000;  // detection 3 x 50 ms
    p.rx_us = 10'000;
    peers.push_back(&p);
  }
  run_for(ms(5));
  for (auto* p : peers) ASSERT_NE(bring_up(*p), 0u);
  for (std::size_t i = 0; i < kSessions; ++i) {
    peers[i]->feed(ms(50), now() - ms(static_cast<int>(i % 50)));
  }
  run_for(ms(100));
  const TimePoint from = now();
  const std::size_t first = net_.sent.size();
  run_for(ms(2000));

  std::map<Transport::Path, std::vector<TimePoint>> by_path;
  for (std::size_t i = first; i < net_.sent.size(); ++i) {
    const auto& x = net_.sent[i];
    EXPECT_EQ(x.pkt.state, State::Up);
    EXPECT_FALSE(x.pkt.poll);
    EXPECT_FALSE(x.pkt.final);
    by_path[x.path].push_back(x.at);
  }
  ASSERT_EQ(by_path.size(), kSessions);
  Duration lo = Duration::max(), hi = Duration::min();
  std::size_t gaps = 0;
  for (const auto& [path, at] : by_path) {
    ASSERT_GE(at.size(), 150u);
    EXPECT_LE(at.front() - from, kIv + opts_.timer_slot);
    for (std::size_t i = 1; i < at.size(); ++i) {
      const Duration g = at[i] - at[i - 1];
      lo = std::min(lo, g);
      hi = std::max(hi, g);
      ++gaps;
    }
  }
  EXPECT_GE(lo, kIv * 3 / 4) << "slot " << opts_.timer_slot.count() << " us";
  EXPECT_LE(hi, kIv + opts_.timer_slot) << "slot " << opts_.timer_slot.count() << " us";
  for (auto* p : peers) EXPECT_EQ(find(*p)->state, State::Up);
  const auto st = core_->stats();
  EXPECT_EQ(st.tx_errors, 0u);
  EXPECT_EQ(st.timer_lateness_max, Duration{0});  // fake time: every wake-up on time
  std::printf(
      "slot %lld us, limit %s: %zu gaps, min %lld us, max %lld us, %llu fires in %llu wake-ups\n",
      static_cast<long long>(opts_.timer_slot.count()),
      GetParam().limit == kNoLimit ? "none" : std::to_string(GetParam().limit).c_str(), gaps,
      static_cast<long long>(lo.count()), static_cast<long long>(hi.count()),
      static_cast<unsigned long long>(st.timer_fires),
      static_cast<unsigned long long>(st.timer_wakeups));
}

INSTANTIATE_TEST_SUITE_P(Slots, CoreScheduleTest,
                         ::testing::Values(ScheduleCase{50, kNoLimit}, ScheduleCase{1000, kNoLimit},
                                           ScheduleCase{2500, kNoLimit}, ScheduleCase{1000, 4}),
                         [](const auto& info) {
                           std::string n = "slot" + std::to_string(info.param.slot_us) + "us";
                           if (info.param.limit != kNoLimit) {
                             n += "_limit" + std::to_string(info.param.limit);
                           }
                           return n;
                         });

// on_timer(limit) serves at most `limit` sessions, returns true while more are
// due, and the next call serves the rest (the loop lets receive run between).
TEST_F(CoreTest, OnTimerLimitServesTheRestOnTheNextCall) {
  opts_.timer_slot = ms(10);  // every first packet (phase < 5 ms) due at once
  for (std::size_t i = 0; i < 50; ++i) opts_.sessions.push_back(session_spec(nth_peer(i)));
  open();
  const auto w = core_->next_wakeup();
  ASSERT_TRUE(w);
  clock_.advance_to(*w);
  std::vector<std::size_t> served;
  bool more = true;
  for (int call = 0; more && call < 20; ++call) {
    const std::size_t before = net_.sent.size();
    more = core_->on_timer(8);
    served.push_back(net_.sent.size() - before);
    if (more) {
      ASSERT_TRUE(core_->next_wakeup());
      EXPECT_LE(*core_->next_wakeup(), now() + opts_.timer_slot);
    }
  }
  EXPECT_EQ(served, (std::vector<std::size_t>{8, 8, 8, 8, 8, 8, 2}));
  EXPECT_EQ(net_.sent.size(), 50u);
  std::set<Transport::Path> paths;
  for (const auto& x : net_.sent) {
    paths.insert(x.path);
    EXPECT_EQ(x.at, now());
    EXPECT_EQ(x.pkt.state, State::Down);
  }
  EXPECT_EQ(paths.size(), 50u);  // each session once
  ASSERT_TRUE(core_->next_wakeup());
  EXPECT_GT(*core_->next_wakeup(), now() + opts_.timer_slot);
}

// on_timer() returns true only when more is really due. A detection deadline
// that falls inside the slot of a transmit wake-up is not served early (it is
// never due before its instant, TMR-09), so the loop must not be told to call
// again at once: it arms its timer for that instant, and the detection fires
// exactly then (SM-15, diag 1).
TEST_F(CoreTest, OnTimerDoesNotAskAgainForADetectionDeadlineInsideTheSlot) {
  opts_.timer_slot = ms(1);  // the largest slot the configuration allows
  auto spec = session_spec("10.0.0.1");
  spec.params.required_min_rx = ms(10);
  opts_.sessions.push_back(spec);
  open();
  Peer& p = add_peer("10.0.0.1");
  ASSERT_NE(bring_up(p), 0u);
  run_for(ms(100));
  // The next wake-up is our next periodic packet, ~1 s away. The peer's last
  // packet (Detect Mult 1) makes the detection time expire 0.5 ms after it.
  const auto t_tx = core_->next_wakeup();
  ASSERT_TRUE(t_tx);
  ASSERT_GT(*t_tx, now() + ms(500));
  const TimePoint detect_at = *t_tx + Duration{500};
  p.mult = 1;
  p.tx_us = static_cast<std::uint32_t>((detect_at - now()).count());
  deliver(p, State::Up);
  ASSERT_EQ(find(p)->detection_time, detect_at - now());
  ASSERT_EQ(core_->next_wakeup(), t_tx);
  const std::size_t before = net_.sent.size();

  clock_.advance_to(*t_tx);
  int calls = 1;
  while (core_->on_timer() && calls < 100) ++calls;
  EXPECT_EQ(calls, 1) << "on_timer() kept returning true at one instant (busy loop)";
  ASSERT_EQ(net_.sent.size() - before, 1u);  // the periodic packet
  EXPECT_EQ(net_.sent.back().pkt.state, State::Up);
  EXPECT_EQ(core_->next_wakeup(), detect_at);
  EXPECT_EQ(find(p)->state, State::Up);

  run_until(detect_at + ms(5));
  auto s = find(p);
  EXPECT_EQ(s->state, State::Down);
  EXPECT_EQ(s->local_diag, 1);
  auto down = net_.last_to(p.address);
  ASSERT_TRUE(down);
  EXPECT_EQ(down->pkt.state, State::Down);
  EXPECT_EQ(down->at, detect_at);  // not before, not later
}

// Initial phase: 1,000 configured sessions do not all send their first packet
// at the same instant: at most 10 % share one, all go out within 1 s.
TEST_F(CoreTest, InitialPacketsOfManySessionsAreSpread) {
  constexpr std::size_t kSessions = 1000;
  for (std::size_t i = 0; i < kSessions; ++i) opts_.sessions.push_back(session_spec(nth_peer(i)));
  open();
  run_for(ms(1000));
  std::map<Transport::Path, TimePoint> first;
  for (const auto& x : net_.sent) first.emplace(x.path, x.at);
  ASSERT_EQ(first.size(), kSessions);
  std::map<TimePoint, std::size_t> per_instant;
  TimePoint last = t0_;
  for (const auto& [path, at] : first) {
    ++per_instant[at];
    last = std::max(last, at);
  }
  std::size_t worst = 0;
  for (const auto& [at, n] : per_instant) worst = std::max(worst, n);
  EXPECT_LE(worst, kSessions / 10);
  EXPECT_LE(last - t0_, ms(1000));
  EXPECT_GE(per_instant.size(), 10u);
  std::printf("first packets: %zu instants, at most %zu at one, last %lld us after open\n",
              per_instant.size(), worst, static_cast<long long>((last - t0_).count()));
}

// ================================================================ snapshots

// sessions(from, max, next) returns each session exactly once across chunks,
// holes left by removed dynamic sessions included; next == SIZE_MAX at the end.
TEST_F(CoreTest, SnapshotsInChunksCoverEachSessionOnce) {
  for (std::size_t i = 0; i < 23; ++i) opts_.sessions.push_back(session_spec(nth_peer(i)));
  opts_.accepts.push_back(accept_spec("10.200.0.0", 16, "dyn", 64));
  open();
  std::vector<Peer*> dyn;
  for (int i = 1; i <= 4; ++i) {
    Peer& p = add_peer("10.200.0." + std::to_string(i));
    deliver(p, State::Down);
    dyn.push_back(&p);
  }
  ASSERT_EQ(core_->session_count(), 27u);
  // Two dynamic peers keep talking (their sessions stay Init), two go silent
  // and their sessions are removed: holes in the slot list.
  dyn[0]->feed(kSlow, now());
  dyn[2]->feed(kSlow, now());
  run_for(ms(9000));
  ASSERT_EQ(core_->session_count(), 25u);
  ASSERT_EQ(core_->stats().passive_removed, 2u);

  for (std::size_t max : {1u, 5u, 7u, 25u, 100u}) {
    std::multiset<std::uint32_t> seen;
    std::size_t from = 0, next = 0, chunks = 0;
    do {
      auto chunk = core_->sessions(from, max, next);
      EXPECT_LE(chunk.size(), max);
      for (const auto& s : chunk) seen.insert(s.local_discr);
      ASSERT_LT(++chunks, 1000u);
      if (next != kDone) {
        EXPECT_GT(next, from);
      }
      from = next;
    } while (next != kDone);
    EXPECT_EQ(seen.size(), core_->session_count()) << "max " << max;
    EXPECT_EQ(std::set<std::uint32_t>(seen.begin(), seen.end()).size(), seen.size())
        << "max " << max;
  }
  std::size_t next = 0;
  EXPECT_TRUE(core_->sessions(1000, 10, next).empty());
  EXPECT_EQ(next, kDone);
  EXPECT_EQ(core_->sessions().size(), core_->session_count());
  EXPECT_EQ(core_->stats().sessions, core_->session_count());
  // A new dynamic session may take a freed slot: still each once.
  deliver(add_peer("10.200.0.9"), State::Down);
  std::set<std::uint32_t> all;
  std::size_t from = 0;
  do {
    for (const auto& s : core_->sessions(from, 4, next))
      EXPECT_TRUE(all.insert(s.local_discr).second);
    from = next;
  } while (next != kDone);
  EXPECT_EQ(all.size(), 26u);
  EXPECT_EQ(core_->session_count(), 26u);
}

// The published view moves when only the peer's side changes: we came Up on
// its Init, then its Up arrives (remote state Init -> Up, ours unchanged). A
// reader must see remote Up without waiting for the periodic rebuild; a
// repeated identical packet moves nothing.
TEST_F(CoreTest, ViewMovesWhenOnlyTheRemoteStateChanges) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  open();
  Peer& p = add_peer("10.0.0.1");
  deliver(p, State::Down);
  auto init = net_.last_to(p.address);
  ASSERT_TRUE(init);
  p.ours = init->pkt.my_discriminator;
  deliver(p, State::Init);
  ASSERT_EQ(find(p)->state, State::Up);
  ASSERT_EQ(find(p)->remote_state, State::Init);
  const std::uint64_t g0 = core_->view_generation();
  deliver(p, State::Up);
  EXPECT_EQ(find(p)->state, State::Up);
  EXPECT_EQ(find(p)->remote_state, State::Up);
  const std::uint64_t g1 = core_->view_generation();
  EXPECT_GT(g1, g0);
  deliver(p, State::Up);
  EXPECT_EQ(core_->view_generation(), g1);
}

// ================================================================ operator maintenance

ManagedGroup group_signals(const std::string& name, core::Hold maintenance, std::uint8_t diag) {
  return ManagedGroup{name, core::Hold::Down, maintenance, diag, 0};
}

// Maintenance for all: every session is held at once with its own
// maintenance signal: a [[group]] with maintenance_signal admin-down sends
// AdminDown diag 7, one with down sends Down with the group's diag, a group
// without a table sends Down diag 5. Lifting it lets every session come back.
TEST_F(CoreTest, MaintenanceHoldsEachSessionWithItsGroupsSignal) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "api"));
  opts_.sessions.push_back(session_spec("10.0.0.3", "plain"));
  opts_.declared_groups = {"web", "api"};
  opts_.group_signals = {group_signals("web", core::Hold::AdminDown, 5),
                         group_signals("api", core::Hold::Down, 6)};
  open();
  Peer& web = add_peer("10.0.0.1");
  Peer& api = add_peer("10.0.0.2");
  Peer& plain = add_peer("10.0.0.3");
  for (Peer* p : {&web, &api, &plain}) ASSERT_NE(bring_up(*p), 0u);
  run_for(ms(100));
  const std::size_t before = net_.sent.size();
  auto r = core_->set_maintenance({MaintenanceScope{"", "kernel upgrade"}});
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 3u);
  struct Want {
    Peer* peer;
    State state;
    std::uint8_t diag;
  };
  for (const Want& w : {Want{&web, State::AdminDown, 7}, Want{&api, State::Down, 6},
                        Want{&plain, State::Down, 5}}) {
    SCOPED_TRACE(w.peer->address.to_string());
    auto pk = sent_to(*w.peer, before);
    ASSERT_FALSE(pk.empty());
    EXPECT_EQ(pk[0].at, now());  // SM-21: at once
    EXPECT_EQ(pk[0].pkt.state, w.state);
    EXPECT_EQ(pk[0].pkt.diag, w.diag);
    auto s = find(*w.peer);
    EXPECT_EQ(s->hold_source, HoldSource::Maintenance);
    EXPECT_EQ(s->hold_reason, "kernel upgrade");
    EXPECT_EQ(s->local_diag, w.diag);
  }
  // Held: the peers' attempts never bring a session back Up.
  for (Peer* p : {&web, &api, &plain}) {
    deliver(*p, State::Down);
    deliver(*p, State::Init);
  }
  run_for(ms(2000));
  for (Peer* p : {&web, &api, &plain}) EXPECT_NE(find(*p)->state, State::Up);
  EXPECT_EQ(hold_source_name(HoldSource::Maintenance), "maintenance");

  r = core_->set_maintenance({});
  EXPECT_EQ(r.matched, 0u);
  for (Peer* p : {&web, &api, &plain}) {
    EXPECT_EQ(find(*p)->hold, core::Hold::None);
    EXPECT_NE(bring_up(*p), 0u);
  }
}

// Group scopes: only that group's sessions; a group scope's reason wins over
// the all-scope's; replacing the set drops the scopes left out.
TEST_F(CoreTest, MaintenanceScopesByGroupAndReason) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "api"));
  opts_.declared_groups = {"web", "api"};
  open();
  auto r = core_->set_maintenance({MaintenanceScope{"web", "swap disk"}});
  EXPECT_EQ(r.matched, 1u);
  EXPECT_EQ(find("10.0.0.1")->hold_source, HoldSource::Maintenance);
  EXPECT_EQ(find("10.0.0.1")->hold_reason, "swap disk");
  EXPECT_EQ(find("10.0.0.2")->hold, core::Hold::None);
  r = core_->set_maintenance(
      {MaintenanceScope{"web", "swap disk"}, MaintenanceScope{"", "whole box"}});
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(find("10.0.0.1")->hold_reason, "swap disk");
  EXPECT_EQ(find("10.0.0.2")->hold_reason, "whole box");
  EXPECT_EQ(find("10.0.0.2")->hold, core::Hold::Down);
  r = core_->set_maintenance({MaintenanceScope{"", "whole box"}});
  EXPECT_EQ(find("10.0.0.1")->hold_reason, "whole box");
  // A group nobody uses yet is kept, not refused.
  r = core_->set_maintenance({MaintenanceScope{"later", ""}});
  EXPECT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 0u);
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::None);
}

// Maintenance from the state file is in force before any session exists:
// the first packet already says Down, the peer's handshake never brings the
// session Up; other groups come up normally.
TEST_F(CoreTest, InitialMaintenanceHoldsFromTheFirstPacket) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  opts_.sessions.push_back(session_spec("10.0.0.2", "api"));
  opts_.declared_groups = {"web", "api"};
  opts_.group_signals = {group_signals("web", core::Hold::Down, 5)};
  opts_.initial_maintenance = {MaintenanceScope{"web", "maintenance (state file): rack move"}};
  open();
  Peer& p = add_peer("10.0.0.1");
  Peer& other = add_peer("10.0.0.2");
  run_for(ms(10));
  auto first = net_.last_to(p.address);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->pkt.state, State::Down);
  EXPECT_EQ(first->pkt.diag, 5);
  auto s = find(p);
  EXPECT_EQ(s->hold_source, HoldSource::Maintenance);
  EXPECT_EQ(s->hold_reason, "maintenance (state file): rack move");
  deliver(p, State::Down);
  p.ours = s->local_discr;
  deliver(p, State::Init);
  p.feed(kSlow, now());
  run_for(ms(3000));
  for (const auto& x : sent_to(p)) EXPECT_EQ(x.pkt.state, State::Down);
  EXPECT_EQ(find(p)->state, State::Down);
  EXPECT_NE(bring_up(other), 0u);
  p.next_at = TimePoint::max();
  core_->set_maintenance({});
  EXPECT_NE(bring_up(p), 0u);
}

// A passive session created by an [[accept]] rule while its group is in
// maintenance starts held with the group's signal.
TEST_F(CoreTest, MaintenanceAppliesToLaterPassiveSession) {
  opts_.accepts.push_back(accept_spec("10.1.0.0", 16, "edge", 8));
  opts_.declared_groups = {"edge"};
  opts_.group_signals = {group_signals("edge", core::Hold::AdminDown, 5)};
  open();
  core_->set_maintenance({MaintenanceScope{"edge", "drain"}});
  Peer& p = add_peer("10.1.0.5");
  deliver(p, State::Down);
  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hold, core::Hold::AdminDown);
  EXPECT_EQ(s->hold_source, HoldSource::Maintenance);
  EXPECT_EQ(s->hold_reason, "drain");
  auto pk = net_.last_to(p.address);
  ASSERT_TRUE(pk);
  EXPECT_EQ(pk->pkt.state, State::AdminDown);
  EXPECT_EQ(pk->pkt.diag, 7);
}

// Maintenance is one source among the others: the strongest hold wins
// (an operator AdminDown over maintenance Down), and releasing the operator
// hold falls back to maintenance, not to Up.
TEST_F(CoreTest, MaintenanceCombinesWithOtherSources) {
  opts_.sessions.push_back(session_spec("10.0.0.1", "web"));
  open();
  core_->set_maintenance({MaintenanceScope{"", "m"}});
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::AdminDown, 7).error, "");
  EXPECT_EQ(find("10.0.0.1")->hold_source, HoldSource::Admin);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::None, 0).error, "");
  auto s = find("10.0.0.1");
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Maintenance);
  EXPECT_EQ(s->hold_reason, "m");
}

// ================================================================ reload

class ReloadTest : public CoreTest {
 protected:
  // Two Up sessions whose peers keep talking every 100 ms (timers 100 ms).
  void two_up() {
    opts_.sessions.push_back(session_spec("10.0.0.1", "web", ms(100)));
    opts_.sessions.push_back(session_spec("10.0.0.2", "web", ms(100)));
    open();
    for (const char* a : {"10.0.0.1", "10.0.0.2"}) {
      Peer& p = add_peer(a);
      p.tx_us = p.rx_us = 100'000;
      ASSERT_NE(bring_up(p), 0u);
      p.feed(ms(100), now());
    }
    run_for(ms(1000));
  }
  Peer& peer(const std::string& a) { return *by_addr_.at(addr(a)); }
  ReloadResult reload(EngineOptions next) {
    auto r = core_->reload(std::move(next));
    pump();
    return r;
  }
};

// Reloading the same sessions touches nothing: no packet at the reload, the
// next deadline and every later send are where they would have been, same
// discriminators, ports and paths.
TEST_F(ReloadTest, UnchangedSessionsAreNotTouched) {
  two_up();
  const auto before = core_->sessions();
  const auto wake = core_->next_wakeup();
  const std::size_t sent = net_.sent.size();
  const std::size_t attempts = net_.attempts.size();
  const ReloadResult r = reload(opts_);
  EXPECT_TRUE(r.applied);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.unchanged, 2u);
  EXPECT_EQ(r.added + r.removed + r.params_changed + r.moved, 0u);
  EXPECT_EQ(net_.sent.size(), sent) << "a packet went out at the reload";
  EXPECT_EQ(core_->next_wakeup(), wake);
  EXPECT_EQ(net_.attempts.size(), attempts);
  EXPECT_TRUE(net_.closes.empty());
  EXPECT_TRUE(core_->reload_progress().settled());
  const auto after = core_->sessions();
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].local_discr, before[i].local_discr);
    EXPECT_EQ(after[i].source_port, before[i].source_port);
    EXPECT_EQ(after[i].state, State::Up);
    EXPECT_EQ(after[i].counters.state_changes, before[i].counters.state_changes);
    EXPECT_FALSE(after[i].removing);
  }
  // Twenty more reloads while running: every gap stays in [75 %, 100 %].
  for (int k = 0; k < 20; ++k) {
    run_for(ms(37));
    reload(opts_);
  }
  run_for(ms(500));
  for (const char* a : {"10.0.0.1", "10.0.0.2"}) {
    auto pk = sent_to(peer(a), sent);
    ASSERT_GT(pk.size(), 10u);
    for (std::size_t i = 1; i < pk.size(); ++i) {
      const Duration gap = pk[i].at - pk[i - 1].at;
      EXPECT_GE(gap, ms(75) - opts_.timer_slot) << a << " packet " << i;
      EXPECT_LE(gap, ms(100)) << a << " packet " << i;
      EXPECT_FALSE(pk[i].pkt.poll);
    }
    EXPECT_EQ(find(a)->counters.up_count, 1u);
  }
}

// A timer change goes through a Poll; the peer's Final completes it; the
// session stays Up and the new interval is in force.
TEST_F(ReloadTest, TimerChangeRunsAPollSequence) {
  two_up();
  peer("10.0.0.1").answer_polls = false;
  EngineOptions next = opts_;
  next.sessions[0].params = params(ms(300), ms(300));
  const std::size_t sent = net_.sent.size();
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.params_changed, 1u);
  EXPECT_EQ(r.timers_changed, 1u);
  EXPECT_EQ(r.unchanged, 1u);
  EXPECT_EQ(core_->reload_progress().polls, 1u);
  EXPECT_FALSE(core_->reload_progress().settled());
  // The Poll rides on the session's next packet (within one interval).
  run_for(ms(100));
  auto pk = sent_to(peer("10.0.0.1"), sent);
  ASSERT_FALSE(pk.empty());
  EXPECT_TRUE(pk.back().pkt.poll);
  EXPECT_EQ(pk.back().pkt.desired_min_tx_us, 300'000u);
  EXPECT_EQ(core_->reload_progress().polls, 1u);
  for (const auto& x : sent_to(peer("10.0.0.2"), sent)) EXPECT_FALSE(x.pkt.poll);
  Peer& p = peer("10.0.0.1");
  ControlPacket f = p.packet();
  f.final = true;
  deliver(p, f);
  EXPECT_EQ(core_->reload_progress().polls, 0u);
  run_for(ms(2000));
  auto s = find("10.0.0.1");
  EXPECT_EQ(s->state, State::Up);
  EXPECT_EQ(s->counters.up_count, 1u);
  EXPECT_EQ(s->params.desired_min_tx, ms(300));
  EXPECT_FALSE(s->removing);
}

// A second timer change while the first Poll runs is queued behind it
// (RFC 5880 §6.8.3): the first Final completes the first Poll only, the
// queued one follows with its own Poll, and the reload settles after both.
TEST_F(ReloadTest, SecondTimerChangeDuringAPollWaitsForItsOwnPoll) {
  two_up();
  Peer& p = peer("10.0.0.1");
  p.answer_polls = false;
  EngineOptions next = opts_;
  next.sessions[0].params = params(ms(300), ms(300));
  reload(next);
  const std::size_t first = net_.sent.size();
  run_for(ms(100));
  auto pk = sent_to(p, first);
  ASSERT_FALSE(pk.empty());
  ASSERT_TRUE(pk.back().pkt.poll);
  EXPECT_EQ(pk.back().pkt.desired_min_tx_us, 300'000u);
  next.sessions[0].params = params(ms(500), ms(500));
  EXPECT_EQ(reload(next).timers_changed, 1u);
  EXPECT_EQ(core_->reload_progress().polls, 1u);
  ControlPacket f = p.packet();
  f.final = true;
  deliver(p, f);  // ends the first Poll; the queued change is still pending
  EXPECT_EQ(core_->reload_progress().polls, 1u);
  const std::size_t second = net_.sent.size();
  run_for(ms(1500));
  bool polled_500 = false;
  for (const auto& x : sent_to(p, second)) {
    polled_500 |= x.pkt.poll && x.pkt.desired_min_tx_us == 500'000u;
  }
  EXPECT_TRUE(polled_500) << "the queued change never went out with its own Poll";
  deliver(p, f);
  EXPECT_EQ(core_->reload_progress().polls, 0u);
  EXPECT_EQ(find(p)->params.desired_min_tx, ms(500));
  EXPECT_EQ(find(p)->state, State::Up);
}

// An added session is created at once; in a new health-managed group it is
// held Down until that group's first verdict.
TEST_F(ReloadTest, AddedSessionStartsBehindItsNewGroupsStartupHold) {
  two_up();
  EngineOptions next = opts_;
  next.sessions.push_back(session_spec("10.0.0.3", "db", ms(100)));
  next.declared_groups = {"db"};
  next.managed.push_back(ManagedGroup{"db", core::Hold::Down, core::Hold::Down, 5, 1});
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.added, 1u);
  EXPECT_EQ(r.unchanged, 2u);
  auto s = find("10.0.0.3");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hold, core::Hold::Down);
  EXPECT_EQ(s->hold_source, HoldSource::Health);
  EXPECT_EQ(s->hold_reason, kStartupReason);
  Peer& p = add_peer("10.0.0.3");
  deliver(p, State::Down);
  deliver(p, State::Init);
  EXPECT_EQ(find(p)->state, State::Down);
  core_->set_hold(HoldSource::Health, group_sel("db"), core::Hold::None, 0, "healthy");
  EXPECT_NE(bring_up(p), 0u);
  EXPECT_EQ(find("10.0.0.1")->state, State::Up);
}

// A removed session signals Down diag 5 at once, is shown as removing, and
// is deleted when the peer acknowledges.
TEST_F(ReloadTest, RemovedSessionSignalsDownAndGoesOnAck) {
  two_up();
  peer("10.0.0.2").next_at = TimePoint::max();  // stop its feed: we script it
  EngineOptions next = opts_;
  next.sessions.pop_back();
  const std::size_t sent = net_.sent.size();
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.removed, 1u);
  auto pk = sent_to(peer("10.0.0.2"), sent);
  ASSERT_EQ(pk.size(), 1u);
  EXPECT_EQ(pk[0].at, now());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  EXPECT_EQ(pk[0].pkt.diag, 5);
  auto s = find("10.0.0.2");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->removing);
  EXPECT_EQ(s->hold_source, HoldSource::Shutdown);
  EXPECT_EQ(core_->reload_progress().removing, 1u);
  EXPECT_EQ(core_->session_count(), 2u);
  run_for(ms(50));
  EXPECT_TRUE(find("10.0.0.2"));
  deliver(peer("10.0.0.2"), State::Down, 3);
  EXPECT_FALSE(find("10.0.0.2"));
  EXPECT_EQ(core_->session_count(), 1u);
  EXPECT_EQ(net_.closes.size(), 1u);
  EXPECT_TRUE(core_->reload_progress().settled());
  EXPECT_EQ(find("10.0.0.1")->state, State::Up);
  EXPECT_EQ(net_.bad_closes, 0u);
  // Re-adding it later is a new session (new discriminator is allowed).
  const ReloadResult again = reload(opts_);
  EXPECT_EQ(again.added, 1u);
  EXPECT_TRUE(find("10.0.0.2"));
}

// A silent peer: deleted after one peer detection time (3 x 100 ms here),
// the signal sent as AdminDown diag 7 when shutdown_signal says so.
TEST_F(ReloadTest, RemovedSessionGoesAfterOneDetectionTimeWithAdminDown) {
  two_up();
  peer("10.0.0.2").next_at = TimePoint::max();
  EngineOptions next = opts_;
  next.sessions.pop_back();
  next.removal_signal = core::Hold::AdminDown;
  const TimePoint t = now();
  const std::size_t sent = net_.sent.size();
  reload(next);
  auto pk = sent_to(peer("10.0.0.2"), sent);
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk[0].pkt.state, State::AdminDown);
  EXPECT_EQ(pk[0].pkt.diag, 7);
  run_until(t + ms(290));
  EXPECT_TRUE(find("10.0.0.2"));
  run_until(t + ms(310));
  EXPECT_FALSE(find("10.0.0.2"));
  ASSERT_EQ(net_.closes.size(), 1u);
  EXPECT_LE(net_.paths.at(net_.closes[0]).closed_at - t, ms(300) + opts_.timer_slot);
}

// A session that is not Up is deleted at once (after its one signal packet).
TEST_F(ReloadTest, RemovedSessionNotUpIsDeletedAtOnce) {
  opts_.sessions.push_back(session_spec("10.0.0.1"));
  opts_.sessions.push_back(session_spec("10.0.0.9"));
  open();
  run_for(ms(10));
  EngineOptions next = opts_;
  next.sessions.pop_back();
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.removed, 1u);
  EXPECT_FALSE(find("10.0.0.9"));
  EXPECT_EQ(net_.closes.size(), 1u);
  EXPECT_TRUE(core_->reload_progress().settled());
}

// A bad addition (an interface that does not exist) refuses the reload
// before anything changes: the removal it carried is not done either.
TEST_F(ReloadTest, InvalidAdditionRefusesTheWholeReload) {
  two_up();
  EngineOptions next = opts_;
  next.sessions.pop_back();
  auto bad = session_spec("10.0.0.7");
  bad.interface = "nope0";
  next.sessions.push_back(bad);
  next.accepts.push_back(accept_spec("10.1.0.0", 16, "dyn", 4));
  next.accepts.back().interface = "nope1";
  const std::size_t sent = net_.sent.size();
  const ReloadResult r = reload(next);
  EXPECT_FALSE(r.applied);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_NE(r.errors[0].find("nope0"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[1].find("nope1"), std::string::npos) << r.errors[1];
  EXPECT_EQ(net_.sent.size(), sent);
  EXPECT_EQ(core_->session_count(), 2u);
  EXPECT_FALSE(find("10.0.0.2")->removing);
  EXPECT_FALSE(find("10.0.0.7"));
}

// A group change moves the session: the new group's hold applies at once,
// the old group's no longer does; the same discriminator throughout.
TEST_F(ReloadTest, GroupChangeMovesTheSessionUnderTheNewGroupsHolds) {
  two_up();
  core_->set_hold(HoldSource::Admin, group_sel("db"), core::Hold::Down, 0);  // unknown group
  opts_.declared_groups = {"db"};
  reload(opts_);
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, group_sel("db"), core::Hold::Down, 0).error, "");
  const auto discr = find("10.0.0.1")->local_discr;
  EngineOptions next = opts_;
  next.sessions[0].group = "db";
  const std::size_t sent = net_.sent.size();
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.moved, 1u);
  auto s = find("10.0.0.1");
  EXPECT_EQ(s->group, "db");
  EXPECT_EQ(s->local_discr, discr);
  EXPECT_EQ(s->hold, core::Hold::Down);
  auto pk = sent_to(peer("10.0.0.1"), sent);
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  // Holds by group follow the indexes: releasing "web" does not touch it.
  EXPECT_EQ(core_->set_hold(HoldSource::Admin, group_sel("web"), core::Hold::None, 0).matched, 1u);
  EXPECT_EQ(core_->set_hold(HoldSource::Admin, group_sel("db"), core::Hold::None, 0).matched, 1u);
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::None);
}

// An identity change on the same path (single hop: the local address) is
// remove + add; the old session makes way at once for the new one.
TEST_F(ReloadTest, IdentityChangeOnTheSamePathReplacesTheSession) {
  two_up();
  EngineOptions next = opts_;
  next.sessions[0].local = addr("10.255.255.254");
  const ReloadResult r = reload(next);
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(r.added, 1u);
  EXPECT_TRUE(r.errors.empty()) << r.errors[0];
  std::size_t n = 0;
  for (const auto& s : core_->sessions()) n += s.peer == "10.0.0.1";
  EXPECT_EQ(n, 1u);
  EXPECT_FALSE(find("10.0.0.1")->removing);
  EXPECT_EQ(net_.bad_closes, 0u);
}

// Accept rules are replaced at once: a dynamic session still covered stays
// (timers and group of its new rule), one no rule covers is removed with a
// signal, and new sessions follow the new rules.
// A reload that replaces the accept rules keeps the creation budget: the
// burst spent just before it is not handed out again (a reload cannot be
// used to get round passive_create_per_second).
TEST_F(ReloadTest, AcceptReloadDoesNotRefillTheCreationBudget) {
  opts_.passive_create_per_second = 2;
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 1000));
  open();
  std::size_t next_peer = 100;
  auto burst = [&](int n) {
    for (int i = 0; i < n; ++i) deliver(add_peer(nth_peer(next_peer++)), State::Down);
  };
  burst(3);
  EXPECT_EQ(core_->session_count(), 2u);
  EngineOptions next = opts_;
  next.accepts.push_back(accept_spec("10.1.0.0", 16, "dyn2", 10));
  ASSERT_TRUE(reload(next).accepts_replaced);
  burst(2);
  EXPECT_EQ(core_->session_count(), 2u);
  EXPECT_EQ(drops(DropReason::PassiveLimit), 3u);
  run_for(ms(500));  // one token back at 2/s
  burst(2);
  EXPECT_EQ(core_->session_count(), 3u);
}

TEST_F(ReloadTest, AcceptRulesReplacedAndUncoveredDynamicSessionsRemoved) {
  opts_.accepts.push_back(accept_spec("10.0.0.0", 8, "dyn", 8, ms(100)));
  open();
  Peer& a = add_peer("10.0.1.1");
  Peer& b = add_peer("10.0.2.1");
  for (Peer* p : {&a, &b}) {
    p->tx_us = p->rx_us = 100'000;
    ASSERT_NE(bring_up(*p), 0u);
  }
  const auto discr_a = find(a)->local_discr;
  EngineOptions next = opts_;
  next.accepts[0] = accept_spec("10.0.1.0", 24, "dyn2", 8, ms(200));
  const std::size_t sent = net_.sent.size();
  const ReloadResult r = reload(next);
  EXPECT_TRUE(r.accepts_replaced);
  EXPECT_EQ(r.dynamic_kept, 1u);
  EXPECT_EQ(r.dynamic_removed, 1u);
  auto sa = find(a);
  EXPECT_EQ(sa->local_discr, discr_a);
  EXPECT_EQ(sa->group, "dyn2");
  EXPECT_EQ(sa->params.desired_min_tx, ms(200));
  EXPECT_FALSE(sa->removing);
  auto sb = find(b);
  ASSERT_TRUE(sb);
  EXPECT_TRUE(sb->removing);
  auto pk = sent_to(b, sent);
  ASSERT_FALSE(pk.empty());
  EXPECT_EQ(pk[0].pkt.state, State::Down);
  deliver(b, State::Down, 3);
  EXPECT_FALSE(find(b));
  // A new peer outside the new prefix is refused; inside, created in dyn2.
  deliver(add_peer("10.0.3.1"), State::Down);
  EXPECT_FALSE(find("10.0.3.1"));
  deliver(add_peer("10.0.1.7"), State::Down);
  ASSERT_TRUE(find("10.0.1.7"));
  EXPECT_EQ(find("10.0.1.7")->group, "dyn2");
}

// A group that stops being health-managed loses its health hold; one that
// becomes managed gets the start-up hold (its running sessions go Down
// until its first verdict).
TEST_F(ReloadTest, ManagedGroupsFollowTheNewConfiguration) {
  two_up();
  EngineOptions next = opts_;
  next.declared_groups = {"web"};
  next.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 5, 1});
  reload(next);
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::Down);
  EXPECT_EQ(find("10.0.0.1")->hold_reason, kStartupReason);
  EXPECT_EQ(find("10.0.0.1")->unhealthy_signal, "down");
  next.managed.clear();
  reload(next);
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::None);
  EXPECT_EQ(find("10.0.0.1")->unhealthy_signal, "");
}

// ================================================================ per-session signals

// The rule every session applies to a health cause, with its own signals.
TEST(SessionSignals, CauseMapsToEachSessionsOwnSignal) {
  using core::Hold;
  struct Case {
    Hold unhealthy, maintenance;
    HoldCause cause;
    Hold hold;
    std::uint8_t diag;
  };
  const std::vector<Case> cases = {
      {Hold::Down, Hold::Down, HoldCause::Unhealthy, Hold::Down, 6},
      {Hold::AdminDown, Hold::Down, HoldCause::Unhealthy, Hold::AdminDown, 7},
      {Hold::Down, Hold::AdminDown, HoldCause::Maintenance, Hold::AdminDown, 7},
      {Hold::Down, Hold::Down, HoldCause::Maintenance, Hold::Down, 6},
      // Maintenance while a check also fails: Down unless both are AdminDown.
      {Hold::Down, Hold::AdminDown, HoldCause::MaintenanceFailing, Hold::Down, 6},
      {Hold::AdminDown, Hold::Down, HoldCause::MaintenanceFailing, Hold::Down, 6},
      {Hold::AdminDown, Hold::AdminDown, HoldCause::MaintenanceFailing, Hold::AdminDown, 7},
      {Hold::Down, Hold::Down, HoldCause::MaintenanceFailing, Hold::Down, 6},
  };
  for (const auto& c : cases) {
    SessionSignals s{c.unhealthy, c.maintenance, 6, true, false};
    const ResolvedHold r = signal_for(s, c.cause);
    EXPECT_EQ(r.hold, c.hold) << hold_cause_name(c.cause);
    EXPECT_EQ(r.diag, c.diag) << hold_cause_name(c.cause);
  }
  EXPECT_EQ(signal_for(SessionSignals{}, HoldCause::Fixed).hold, Hold::None);
}

class SignalOverrideTest : public CoreTest {
 protected:
  // Group "web" (health-managed: unhealthy Down, maintenance Down, diag 6):
  // 10.0.0.1 overrides maintenance_signal = admin-down, 10.0.0.2 does not,
  // 10.0.0.3 overrides unhealthy_signal = admin-down. Released and Up.
  void SetUp() override {
    auto a = session_spec("10.0.0.1", "web");
    a.maintenance_signal = core::Hold::AdminDown;
    auto c = session_spec("10.0.0.3", "web");
    c.unhealthy_signal = core::Hold::AdminDown;
    opts_.sessions = {a, session_spec("10.0.0.2", "web"), c};
    opts_.declared_groups = {"web"};
    opts_.managed.push_back(ManagedGroup{"web", core::Hold::Down, core::Hold::Down, 6, 1});
    open();
    for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) peers.push_back(&add_peer(p));
    ASSERT_EQ(
        core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
        "");
    for (Peer* p : peers) ASSERT_NE(bring_up(*p), 0u);
  }

  // The last packet each peer got: {state, diag}.
  std::pair<State, int> wire(int i) {
    auto last = net_.last_to(peers[static_cast<std::size_t>(i)]->address);
    if (!last) return {State::Up, -1};
    return {last->pkt.state, last->pkt.diag};
  }

  std::vector<Peer*> peers;
};

TEST_F(SignalOverrideTest, SnapshotsShowEachSessionsResolvedSignals) {
  auto a = find("10.0.0.1"), b = find("10.0.0.2"), c = find("10.0.0.3");
  EXPECT_EQ(a->unhealthy_signal, "down");
  EXPECT_EQ(a->maintenance_signal, "admin-down");
  EXPECT_TRUE(a->signal_override);
  EXPECT_EQ(b->unhealthy_signal, "down");
  EXPECT_EQ(b->maintenance_signal, "down");
  EXPECT_FALSE(b->signal_override);
  EXPECT_EQ(c->unhealthy_signal, "admin-down");
  EXPECT_EQ(c->maintenance_signal, "down");
  EXPECT_TRUE(c->signal_override);
}

// One group in maintenance: the override session announces AdminDown diag 7
// at once (SM-21), the others Down with the group's diag 6.
TEST_F(SignalOverrideTest, MaintenanceSendsEachSessionsOwnSignal) {
  auto r = core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Maintenance,
                           "maintenance: check maint: file exists");
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.matched, 3u);
  EXPECT_EQ(wire(0), std::make_pair(State::AdminDown, 7));
  EXPECT_EQ(wire(1), std::make_pair(State::Down, 6));
  EXPECT_EQ(wire(2), std::make_pair(State::Down, 6));
  auto a = find("10.0.0.1");
  EXPECT_EQ(a->hold, core::Hold::AdminDown);
  EXPECT_EQ(a->hold_source, HoldSource::Health);
  EXPECT_EQ(a->hold_reason, "maintenance: check maint: file exists");
  EXPECT_EQ(find("10.0.0.2")->hold, core::Hold::Down);
  // It keeps being asserted on every packet, not only the first.
  run_for(ms(3000));
  for (const auto& x : sent_to(*peers[0])) {
    if (x.at > now() - ms(2500)) {
      EXPECT_EQ(x.pkt.state, State::AdminDown);
    }
  }
  // Healthy again releases every session.
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
      "");
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    EXPECT_EQ(find(p)->hold, core::Hold::None) << p;
  }
}

TEST_F(SignalOverrideTest, UnhealthyAndMaintenanceWhileFailing) {
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Unhealthy, "check").error,
      "");
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::Down);
  EXPECT_EQ(find("10.0.0.2")->hold, core::Hold::Down);
  EXPECT_EQ(find("10.0.0.3")->hold, core::Hold::AdminDown);
  EXPECT_EQ(wire(2), std::make_pair(State::AdminDown, 7));
  EXPECT_EQ(wire(0), std::make_pair(State::Down, 6));
  // Maintenance and a failing check: 10.0.0.1 (unhealthy Down) is held Down,
  // never the weaker AdminDown; 10.0.0.3 (unhealthy AdminDown, maintenance
  // Down) is Down too.
  ASSERT_EQ(core_
                ->set_hold(HoldSource::Health, group_sel("web"), HoldCause::MaintenanceFailing,
                           "maintenance; also failing")
                .error,
            "");
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    EXPECT_EQ(find(p)->hold, core::Hold::Down) << p;
    EXPECT_EQ(find(p)->local_diag, 6) << p;
  }
}

// Operator maintenance (its own source) on an unhealthy group follows the
// same rule as a check in maintenance while another fails: maintenance wins,
// but a session whose unhealthy signal is Down sends Down, never the weaker
// AdminDown of its maintenance signal (RFC 5882-strict routers keep a route
// on AdminDown, so a broken box would stay in rotation there). 10.0.0.3
// (unhealthy AdminDown, maintenance Down) sends its maintenance Down.
TEST_F(SignalOverrideTest, OperatorMaintenanceNeverWeakensAnUnhealthyDown) {
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Unhealthy, "check").error,
      "");
  core_->set_maintenance({MaintenanceScope{"web", "maintenance by root: patch"}});
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    auto s = find(p);
    EXPECT_EQ(s->hold, core::Hold::Down) << p;
    EXPECT_EQ(s->local_diag, 6) << p;
    EXPECT_EQ(s->hold_source, HoldSource::Maintenance) << p;
    EXPECT_EQ(s->hold_reason, "maintenance by root: patch") << p;
  }
  EXPECT_EQ(wire(0), std::make_pair(State::Down, 6));
  EXPECT_EQ(wire(2), std::make_pair(State::Down, 6));
  // Healthy again: 10.0.0.1 sends its maintenance AdminDown.
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), core::Hold::None, 0, "healthy").error,
      "");
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::AdminDown);
  EXPECT_EQ(wire(0), std::make_pair(State::AdminDown, 7));
  EXPECT_EQ(find("10.0.0.3")->hold, core::Hold::Down);
  // Maintenance ends: back to the health verdict alone.
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Unhealthy, "check").error,
      "");
  core_->set_maintenance({});
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::Down);
  EXPECT_EQ(find("10.0.0.1")->hold_source, HoldSource::Health);
  EXPECT_EQ(find("10.0.0.3")->hold, core::Hold::AdminDown);
}

// Admin holds keep their own fixed signal, override or not; the strongest
// source still wins.
TEST_F(SignalOverrideTest, AdminHoldsAreNotResolvedPerSession) {
  ASSERT_EQ(core_->set_hold(HoldSource::Admin, all_sel(), core::Hold::Down, 5).error, "");
  for (const char* p : {"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
    EXPECT_EQ(find(p)->hold, core::Hold::Down) << p;
    EXPECT_EQ(find(p)->hold_source, HoldSource::Admin) << p;
  }
  ASSERT_EQ(
      core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Maintenance, "m").error, "");
  EXPECT_EQ(find("10.0.0.1")->hold, core::Hold::AdminDown);  // stronger than Admin's Down
  EXPECT_EQ(find("10.0.0.1")->hold_source, HoldSource::Health);
  EXPECT_EQ(find("10.0.0.2")->hold_source, HoldSource::Admin);  // a tie: the lower source
  EXPECT_NE(core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Fixed, "x").error, "");
  EXPECT_NE(core_->set_hold(HoldSource::Health, group_sel("nope"), HoldCause::Unhealthy, "x").error,
            "");
}

// Sessions of an [[accept]] rule take their group's signals.
TEST_F(CoreTest, AcceptedSessionsTakeTheirGroupsSignals) {
  config::AcceptSpec a;
  a.prefix = addr("10.1.0.0");
  a.prefix_len = 16;
  a.group = "web";
  a.params = core::SessionParams{ms(50), ms(50), 3, true};
  opts_.accepts.push_back(a);
  opts_.managed.push_back(ManagedGroup{"web", core::Hold::AdminDown, core::Hold::Down, 5, 1});
  open();
  ASSERT_EQ(core_->set_hold(HoldSource::Health, group_sel("web"), HoldCause::Unhealthy, "c").error,
            "");
  Peer& p = add_peer("10.1.0.7");
  deliver(p, State::Down);
  auto s = find(p);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->unhealthy_signal, "admin-down");
  EXPECT_FALSE(s->signal_override);
  EXPECT_EQ(s->hold, core::Hold::AdminDown);
  EXPECT_EQ(s->local_diag, 7);
}

// ================================================================ authentication

std::shared_ptr<const core::auth::KeyRing> key_ring(
    core::wire::AuthType t, std::vector<std::pair<std::uint8_t, std::string>> keys) {
  std::vector<core::auth::Key> out;
  for (const auto& [id, secret] : keys) {
    core::auth::Key k;
    k.id = id;
    k.len = static_cast<std::uint8_t>(secret.size());
    std::copy(secret.begin(), secret.end(), k.secret.begin());
    out.push_back(k);
  }
  return std::make_shared<const core::auth::KeyRing>(t, std::move(out), crypto::libcrypto_ops());
}

config::AuthSpec auth_spec(std::shared_ptr<const core::auth::KeyRing> keys) {
  config::AuthSpec a;
  a.type = keys->type();
  a.keys_path = "/test/keys";
  a.keys = std::move(keys);
  return a;
}

// The engine signs what it sends and checks what it receives with the
// session's keys (RFC 5880 §6.7); the peer here signs with its own ring.
class AuthCoreTest : public CoreTest {
 protected:
  std::shared_ptr<const core::auth::KeyRing> peer_keys;
  core::auth::TxSeq peer_tx;

  void send_signed(Peer& p, State s, const RxInfo* info = nullptr, bool poll = false) {
    p.state = s;
    ControlPacket pkt = p.packet();
    pkt.poll = poll;
    core::auth::stamp(*peer_keys, peer_tx, pkt);
    std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
    const std::size_t n = core::auth::encode(pkt, peer_keys.get(), buf);
    ASSERT_NE(n, 0u);
    deliver_bytes(std::span<const std::uint8_t>(buf.data(), n), info ? *info : p.info);
  }
  // Every packet we sent to `p` from `from` on verifies with `keys`.
  void expect_signed(const Peer& p, const core::auth::KeyRing& keys, std::size_t from,
                     std::uint8_t key_id) {
    const auto sent = sent_to(p, from);
    ASSERT_FALSE(sent.empty());
    for (const auto& x : sent) {
      EXPECT_TRUE(x.pkt.auth_present);  // PKT-04
      EXPECT_EQ(x.pkt.auth.key_id, key_id);
      EXPECT_EQ(core::auth::verify(keys, false, 0, x.pkt, x.raw), DropReason::None);
    }
  }
  // The fixture's pump() answers Polls unsigned; these peers answer signed.
  void handshake(Peer& p) {
    p.answer_polls = false;
    send_signed(p, State::Down);
    auto init = net_.last_to(p.address);
    ASSERT_TRUE(init);
    ASSERT_EQ(init->pkt.state, State::Init);
    p.ours = init->pkt.my_discriminator;
    send_signed(p, State::Up);
    for (int i = 0; i < 5; ++i) {  // answer our Poll (signed)
      auto last = net_.last_to(p.address);
      if (!last || !last->pkt.poll) break;
      p.state = State::Up;
      ControlPacket f = p.packet();
      f.final = true;
      core::auth::stamp(*peer_keys, peer_tx, f);
      std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
      const std::size_t n = core::auth::encode(f, peer_keys.get(), buf);
      deliver_bytes(std::span<const std::uint8_t>(buf.data(), n), p.info);
    }
    ASSERT_EQ(find(p)->state, State::Up);
  }
};

TEST_F(AuthCoreTest, SignedSessionComesUpAndSignsEveryPacket) {  // PKT-04, AUTH-05, PKT-23
  auto keys = key_ring(core::wire::AuthType::MeticulousKeyedSha1, {{4, "engine-key"}});
  peer_keys = keys;
  peer_tx.seq = 77;
  auto spec = session_spec("10.0.0.1");
  spec.auth = auth_spec(keys);
  opts_.sessions = {spec};
  open();
  Peer& p = add_peer("10.0.0.1");
  handshake(p);
  run_for(ms(3500));
  expect_signed(p, *keys, 0, 4);
  const auto s = find(p);
  EXPECT_EQ(s->auth_type, core::wire::AuthType::MeticulousKeyedSha1);
  EXPECT_EQ(s->auth_key_id, 4);
  EXPECT_EQ(s->counters.rx_dropped, 0u);
  // Meticulous: consecutive sequence numbers on the wire (AUTH-07).
  const auto sent = sent_to(p);
  for (std::size_t i = 1; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].pkt.auth.sequence, sent[i - 1].pkt.auth.sequence + 1);
  }
}

TEST_F(AuthCoreTest, FailuresCountedPerReasonWithARateLimitedWarning) {  // AUTH-14
  auto keys = key_ring(core::wire::AuthType::KeyedSha1, {{1, "s3cretR"}});
  auto spec = session_spec("10.0.0.1");
  spec.auth = auth_spec(keys);
  opts_.sessions = {spec};
  open();
  Peer& p = add_peer("10.0.0.1");
  peer_keys = key_ring(core::wire::AuthType::KeyedSha1, {{1, "s3cretW"}});
  for (int i = 0; i < 10; ++i) send_signed(p, State::Down);
  peer_keys = key_ring(core::wire::AuthType::KeyedSha1, {{9, "s3cretR"}});
  send_signed(p, State::Down);
  peer_keys = key_ring(core::wire::AuthType::KeyedMd5, {{1, "s3cretR"}});
  send_signed(p, State::Down);
  deliver(p, State::Down);  // no auth section at all
  EXPECT_EQ(drops(DropReason::AuthFailed), 10u);
  EXPECT_EQ(drops(DropReason::AuthUnknownKeyId), 1u);
  EXPECT_EQ(drops(DropReason::AuthWrongType), 1u);
  EXPECT_EQ(drops(DropReason::AuthMissing), 1u);
  const auto s = find(p);
  EXPECT_EQ(s->state, State::Down);
  EXPECT_EQ(s->counters.drops[static_cast<std::size_t>(DropReason::AuthFailed)], 10u);
  EXPECT_EQ(s->counters.rx_packets, 0u);
  // One warning per reason in the second, naming the key id, never a secret.
  EXPECT_EQ(count_lines("warning authentication failure from 10.0.0.1 port 50001: auth_failed"), 1);
  EXPECT_EQ(count_lines("auth_unknown_key_id (auth type keyed-sha1 key id 9"), 1);
  EXPECT_EQ(count_lines("auth_missing (no auth section"), 1);
  EXPECT_EQ(count_lines("s3cret"), 0) << lines_with("s3cret");
  run_for(ms(1100));
  peer_keys = key_ring(core::wire::AuthType::KeyedSha1, {{1, "s3cretW"}});
  send_signed(p, State::Down);
  EXPECT_EQ(count_lines(": auth_failed"), 2);
}

TEST_F(AuthCoreTest, TtlIsCheckedBeforeTheDigest) {  // SH-08: choice pinned
  auto keys = key_ring(core::wire::AuthType::KeyedSha1, {{1, "k"}});
  peer_keys = keys;
  auto spec = session_spec("10.0.0.1");
  spec.auth = auth_spec(keys);
  opts_.sessions = {spec};
  open();
  Peer& p = add_peer("10.0.0.1");
  RxInfo low = p.info;
  low.ttl = 254;
  send_signed(p, State::Down, &low);
  EXPECT_EQ(drops(DropReason::BadTtl), 1u);
  EXPECT_EQ(drops(DropReason::AuthFailed), 0u);
  EXPECT_EQ(find(p)->state, State::Down);
}

TEST_F(AuthCoreTest, AcceptRuleAuthenticatesTheFirstPacket) {  // PKT-22, PKT-11
  auto keys = key_ring(core::wire::AuthType::SimplePassword, {{2, "passw0rd"}});
  peer_keys = keys;
  auto rule = accept_spec("10.0.0.0", 24, "web", 8);
  rule.auth = auth_spec(keys);
  opts_.accepts = {rule};
  open();
  Peer& p = add_peer("10.0.0.1");
  deliver(p, State::Down);  // unsigned: no session created
  EXPECT_EQ(drops(DropReason::AuthMissing), 1u);
  EXPECT_EQ(core_->session_count(), 0u);
  send_signed(p, State::Down);
  ASSERT_EQ(core_->session_count(), 1u);
  expect_signed(p, *keys, 0, 2);
  EXPECT_EQ(find(p)->auth_type, core::wire::AuthType::SimplePassword);
}

TEST_F(AuthCoreTest, ReloadRotatesKeysWithoutAFlap) {  // AUTH-12
  auto old_keys = key_ring(core::wire::AuthType::MeticulousKeyedMd5, {{1, "old"}});
  peer_keys = old_keys;
  auto spec = session_spec("10.0.0.1", "web", ms(100));
  spec.auth = auth_spec(old_keys);
  opts_.sessions = {spec};
  open();
  Peer& p = add_peer("10.0.0.1");
  p.tx_us = p.rx_us = 100'000;
  handshake(p);
  auto keep_up = [&](Duration d) {
    const TimePoint end = now() + d;
    while (now() < end) {
      run_for(ms(100));
      send_signed(p, State::Up);
    }
  };
  keep_up(ms(500));
  // Step 1: both keys, the old one signs.
  auto both = key_ring(core::wire::AuthType::MeticulousKeyedMd5, {{1, "old"}, {2, "new"}});
  EngineOptions next = opts_;
  next.sessions[0].auth = auth_spec(both);
  ReloadResult r = core_->reload(next);
  ASSERT_TRUE(r.applied);
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_NE(r.messages[0].find("authentication meticulous-keyed-md5, signing key id 1 of 1 key ->"
                               " meticulous-keyed-md5, signing key id 1 of 2 keys"),
            std::string::npos)
      << r.messages[0];
  keep_up(ms(500));
  // Step 2: the new key signs; the peer still signs with the old one, then moves.
  const std::size_t from = net_.sent.size();
  next.sessions[0].auth =
      auth_spec(key_ring(core::wire::AuthType::MeticulousKeyedMd5, {{2, "new"}, {1, "old"}}));
  ASSERT_TRUE(core_->reload(next).applied);
  keep_up(ms(500));
  expect_signed(p, *both, from, 2);
  peer_keys = key_ring(core::wire::AuthType::MeticulousKeyedMd5, {{2, "new"}});
  keep_up(ms(500));
  // Step 3: the old key goes.
  next.sessions[0].auth = auth_spec(peer_keys);
  ASSERT_TRUE(core_->reload(next).applied);
  keep_up(ms(500));
  const auto s = find(p);
  EXPECT_EQ(s->state, State::Up);
  EXPECT_EQ(s->counters.down_count, 0u);
  EXPECT_EQ(s->counters.rx_dropped, 0u) << lines_with("drop") << lines_with("authentication");
  EXPECT_EQ(s->auth_key_id, 2);
}

}  // namespace
}  // namespace beacon::engine
