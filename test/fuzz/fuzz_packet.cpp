// Fuzz target: the packet path. wire::decode() of the raw bytes, then the
// same bytes as a datagram into engine::EngineCore (FakeTransport, FakeClock)
// from the peer of a session that was first driven to Down, Init, Up or
// AdminDown, with or without authentication, single or multihop, IPv4 or
// IPv6, configured or created passively by an [[accept]] rule.
//
// Input: two scenario bytes, then the datagram(s).
//   byte 0: bits 0-1 state (Down, Init, Up, Up then AdminDown by hold)
//           bits 2-4 auth type (index into kAuthTypes; 6, 7: none)
//           bit 5 multihop; bit 6 re-sign the datagram with the session's
//           key (so the fuzzer gets past the digest); bit 7 the peer is not
//           configured but inside an [[accept]] prefix (passive session)
//   byte 1: bits 0-3 fake time between datagrams (x 10 ms)
//           bit 4 TTL 254 instead of 255; bit 5 IPv6; bit 6 run the timers
//           for 1.2 s afterwards; bit 7 several datagrams, each prefixed by
//           its length byte (at most 16)
// Oracle besides the sanitizers: every packet the engine sends decodes and,
// with auth, verifies with the session's key.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "beacon/core/auth.hpp"
#include "beacon/core/wire.hpp"
#include "beacon/engine/core.hpp"
#include "fake_clock.hpp"
#include "fake_transport.hpp"
#include "fuzz_common.hpp"

namespace {

namespace ip = boost::asio::ip;
using beacon::core::Duration;
using beacon::core::TimePoint;
using beacon::core::wire::ControlPacket;
using beacon::core::wire::DropReason;
using beacon::core::wire::State;
namespace auth = beacon::core::auth;
namespace engine = beacon::engine;
namespace wire = beacon::core::wire;

[[noreturn]] void oracle_failed() {
  std::abort();
}

struct Scenario {
  engine::EngineOptions opts;
  beacon::test::FakeClock clock;
  beacon::test::FakeTransport net{clock};
  std::unique_ptr<engine::EngineCore> core;
  std::shared_ptr<const auth::KeyRing> ring;
  auth::TxSeq peer_tx;
  engine::RxInfo info;
  ip::address peer;
  std::uint32_t peer_discr = 0x5eed0001;
  std::uint32_t ours = 0;

  void deliver(std::span<const std::uint8_t> b) { core->on_datagram(b, info); }

  // A packet from the scripted peer, signed when the session uses auth.
  void send(State s, bool final = false) {
    ControlPacket p;
    p.version = 1;
    p.state = s;
    p.detect_mult = 3;
    p.final = final;
    p.my_discriminator = peer_discr;
    p.your_discriminator = ours;
    p.desired_min_tx_us = 10'000;
    p.required_min_rx_us = 10'000;
    if (ring) auth::stamp(*ring, peer_tx, p);
    std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
    const std::size_t n = auth::encode(p, ring.get(), buf);
    if (n == 0) oracle_failed();
    deliver(std::span<const std::uint8_t>(buf.data(), n));
  }

  void learn_ours() {
    if (auto last = net.last_to(peer); last && last->pkt.my_discriminator != 0) {
      ours = last->pkt.my_discriminator;
    }
  }

  // Steps the clock to each wakeup up to now + d (bounded).
  void run_for(Duration d) {
    const TimePoint end = clock.now() + d;
    for (int guard = 0; guard < 10'000; ++guard) {
      const auto w = core->next_wakeup();
      if (!w || *w > end) break;
      clock.advance_to(*w);
      for (int calls = 0; calls < 10'000 && core->on_timer(); ++calls) {
      }
    }
    clock.advance_to(end);
  }

  void check_sent() const {
    for (const auto& s : net.sent) {
      if (s.decode != DropReason::None) oracle_failed();
      if (s.pkt.auth_present != (ring != nullptr)) oracle_failed();
      if (ring && auth::verify(*ring, false, 0, s.pkt, s.raw) != DropReason::None) {
        oracle_failed();
      }
    }
  }
};

// Writes the digest the session's key gives (for the keyed types) over a
// copy of the datagram, when the bytes are laid out as a keyed packet.
std::vector<std::uint8_t> resign(const auth::KeyRing* r, std::span<const std::uint8_t> b) {
  std::vector<std::uint8_t> out(b.begin(), b.end());
  if (r == nullptr || out.size() < wire::kAuthOffset) return out;
  const std::size_t len = out[3];
  if (len <= out.size()) (void)auth::sign(*r, std::span(out).first(len));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t h0 = data[0];
  const std::uint8_t h1 = data[1];
  const std::span<const std::uint8_t> rest(data + 2, size - 2);

  {  // The codec on its own: decode, and encode what decoded.
    ControlPacket p;
    if (wire::decode(rest, p) == DropReason::None) {
      std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
      if (wire::encode(p, buf) == 0) oracle_failed();
    }
  }

  const unsigned target = h0 & 3u;
  const std::size_t auth_idx = (h0 >> 2) & 7u;
  const bool multihop = (h0 & 0x20) != 0;
  const bool do_resign = (h0 & 0x40) != 0;
  const bool passive = (h0 & 0x80) != 0;
  const Duration gap{static_cast<std::int64_t>(h1 & 0x0f) * 10'000};
  const bool low_ttl = (h1 & 0x10) != 0;
  const bool v6 = (h1 & 0x20) != 0;
  const bool run_timers = (h1 & 0x40) != 0;
  const bool several = (h1 & 0x80) != 0;

  Scenario sc;
  if (auth_idx < beacon::fuzz::kAuthTypes.size()) sc.ring = beacon::fuzz::ring(auth_idx);
  beacon::config::AuthSpec as;
  if (sc.ring) {
    as.type = sc.ring->type();
    as.keys_path = "/fuzz/keys";
    as.keys = sc.ring;
  }
  const beacon::core::SessionParams params{Duration{10'000}, Duration{10'000}, 3, false};
  const ip::address cfg_peer = ip::make_address(v6 ? "fd00::1" : "10.0.0.1");
  sc.peer = passive ? ip::make_address(v6 ? "fd01::5" : "10.1.0.5") : cfg_peer;

  beacon::config::SessionSpec spec;
  spec.peer = cfg_peer;
  spec.group = "web";
  spec.params = params;
  spec.multihop = multihop;
  spec.min_ttl = multihop ? 254 : 255;
  if (!multihop) spec.interface = "veth0";
  spec.auth = as;
  sc.opts.sessions.push_back(spec);

  beacon::config::AcceptSpec acc;
  acc.prefix = ip::make_address(v6 ? "fd01::" : "10.1.0.0");
  acc.prefix_len = v6 ? 64 : 16;
  acc.group = "dyn";
  acc.max_sessions = 4;
  acc.multihop = multihop;
  acc.params = params;
  acc.params.passive = true;
  acc.min_ttl = multihop ? 254 : 255;
  acc.auth = as;
  sc.opts.accepts.push_back(acc);
  sc.opts.passive_create_per_second = 10;

  sc.info.src = sc.peer;
  sc.info.src_port = 49152;
  sc.info.dst = ip::make_address(v6 ? "fd00::fe" : "10.255.255.254");
  sc.info.ifindex = multihop ? 0 : 2;
  sc.info.ttl = low_ttl ? 254 : 255;
  sc.info.multihop = multihop;
  sc.peer_tx.seq = 1000;

  sc.core = std::make_unique<engine::EngineCore>(sc.opts, sc.net, sc.clock,
                                                 beacon::fuzz::null_logger(), 7);
  sc.core->open();
  sc.core->start();
  sc.run_for(Duration{20'000});

  // Drive the session (configured or passive) to the target state with
  // well-formed peer packets (the driving uses TTL 255).
  const int scenario_ttl = sc.info.ttl;
  sc.info.ttl = 255;
  if (target >= 1) {
    sc.ours = 0;
    sc.send(State::Down);  // -> Init (SM-04)
    sc.learn_ours();
  }
  if (target >= 2) {
    sc.send(State::Up);  // -> Up (SM-10)
    sc.learn_ours();
    // Answer the Poll that brings in the fast timers.
    if (auto last = sc.net.last_to(sc.peer); last && last->pkt.poll) sc.send(State::Up, true);
  }
  if (target == 3) {
    sc.core->set_hold(engine::HoldSource::Admin, engine::Selector{}, beacon::core::Hold::AdminDown,
                      7);
  }
  sc.info.ttl = scenario_ttl;

  // The fuzzed datagram(s).
  auto feed = [&](std::span<const std::uint8_t> b) {
    if (do_resign) {
      const auto signed_bytes = resign(sc.ring.get(), b);
      sc.deliver(signed_bytes);
    } else {
      sc.deliver(b);
    }
  };
  if (!several) {
    feed(rest);
  } else {
    std::size_t off = 0;
    for (int n = 0; n < 16 && off < rest.size(); ++n) {
      const std::size_t len = std::min<std::size_t>(rest[off], rest.size() - off - 1);
      feed(rest.subspan(off + 1, len));
      off += 1 + len;
      if (gap > Duration{0}) sc.run_for(gap);
    }
  }
  if (run_timers) sc.run_for(Duration{1'200'000});

  // Reads the control socket and the metrics would do.
  (void)sc.core->sessions();
  (void)sc.core->stats();
  sc.check_sent();
  return 0;
}
