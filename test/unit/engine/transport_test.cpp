// Transport: listeners (recvmmsg batches, packet info, TTL) and per-session
// send sockets (TTL 255, DSCP CS6, fixed source port), over loopback in a
// private network namespace.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "../../../src/engine/core_impl.hpp"
#include "../../../src/engine/transport_impl.hpp"
#include "beacon/engine/engine.hpp"
#include "netns_peer.hpp"

namespace beacon::engine::detail {
namespace {

using namespace std::chrono_literals;
using test::UdpPeer;

constexpr std::uint16_t kTestPort = 3784;

class TransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::enter_private_netns()) GTEST_SKIP() << "needs root to unshare(CLONE_NEWNET)";
  }

  // Runs the loop until `n` datagrams arrived or 2 s passed.
  void run_until(std::size_t n) {
    const auto end = std::chrono::steady_clock::now() + 2s;
    while (got_.size() < n && std::chrono::steady_clock::now() < end) {
      io_.run_for(20ms);
    }
  }

  struct Got {
    std::vector<std::uint8_t> bytes;
    RxInfo info;
  };

  boost::asio::io_context io_;
  RxBatch batch_;
  std::vector<Got> got_;
  RxHandler handler_ = [this](std::span<const std::uint8_t> b, const RxInfo& i) {
    got_.push_back(Got{{b.begin(), b.end()}, i});
  };
};

// SH-07 groundwork: source, destination, ifindex and TTL reach the handler.
TEST_F(TransportTest, ListenerReportsPacketInfoV4) {
  Listener l(io_, false, false, kTestPort);
  ASSERT_TRUE(l.open());
  l.start(batch_, &handler_);
  UdpPeer tx("127.0.0.2", 50001);
  tx.set_ttl(254);
  const std::uint8_t data[] = {1, 2, 3};
  ASSERT_TRUE(tx.send_raw("127.0.0.1", kTestPort, data));
  run_until(1);
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].bytes, std::vector<std::uint8_t>({1, 2, 3}));
  EXPECT_EQ(got_[0].info.src.to_string(), "127.0.0.2");
  EXPECT_EQ(got_[0].info.src_port, 50001);
  EXPECT_EQ(got_[0].info.dst.to_string(), "127.0.0.1");
  EXPECT_EQ(got_[0].info.ifindex, interface_index("lo"));
  EXPECT_EQ(got_[0].info.ttl, 254);
  EXPECT_FALSE(got_[0].info.multihop);
}

TEST_F(TransportTest, ListenerReportsPacketInfoV6) {
  Listener l(io_, true, true, core::wire::kMultiHopPort);
  ASSERT_TRUE(l.open());
  l.start(batch_, &handler_);
  UdpPeer tx("fd00::2", 50001);
  ASSERT_TRUE(tx.bound());
  const std::uint8_t data[] = {9};
  ASSERT_TRUE(tx.send_raw("fd00::1", core::wire::kMultiHopPort, data));
  run_until(1);
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].info.src.to_string(), "fd00::2");
  EXPECT_EQ(got_[0].info.dst.to_string(), "fd00::1");
  EXPECT_EQ(got_[0].info.ttl, 255);
  EXPECT_TRUE(got_[0].info.multihop);
}

// More datagrams than one recvmmsg batch: all delivered, in order.
TEST_F(TransportTest, ListenerDrainsSeveralBatches) {
  Listener l(io_, false, false, kTestPort);
  ASSERT_TRUE(l.open());
  l.start(batch_, &handler_);
  UdpPeer tx("127.0.0.2", 50001);
  constexpr int kCount = 3 * RxBatch::kBatch + 5;
  for (int i = 0; i < kCount; ++i) {
    const std::uint8_t b[] = {static_cast<std::uint8_t>(i)};
    ASSERT_TRUE(tx.send_raw("127.0.0.1", kTestPort, b));
  }
  run_until(kCount);
  ASSERT_EQ(got_.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) EXPECT_EQ(got_[i].bytes[0], static_cast<std::uint8_t>(i));
}

// The receive queue rides out a stall of the engine (a large buffer), and
// what the kernel drops when it is full anyway is counted (SO_RXQ_OVFL):
// every datagram sent is either received or counted as dropped.
TEST_F(TransportTest, ListenerHasALargeBufferAndCountsKernelDrops) {
  Listener l(io_, false, false, kTestPort);
  ASSERT_TRUE(l.open());
  // The kernel reports twice the size asked for (bookkeeping overhead).
  EXPECT_GE(l.stats().rcvbuf, kListenerRcvBuf);
  UdpPeer tx("127.0.0.2", 50001);
  constexpr int kCount = 40'000;  // far more than 8 MiB holds while nobody reads
  const std::uint8_t b[] = {7};
  for (int i = 0; i < kCount; ++i) ASSERT_TRUE(tx.send_raw("127.0.0.1", kTestPort, b));
  l.start(batch_, &handler_);
  const auto end = std::chrono::steady_clock::now() + 5s;
  std::size_t last = SIZE_MAX;
  while (std::chrono::steady_clock::now() < end && got_.size() != last) {
    last = got_.size();
    io_.run_for(50ms);
  }
  // The kernel stamps each queued datagram with the drop count at that time,
  // so the drops show on the first datagram queued after them.
  const std::size_t held = got_.size();
  ASSERT_TRUE(tx.send_raw("127.0.0.1", kTestPort, b));
  run_until(held + 1);
  std::printf("[rx] %zu received, %llu dropped by the kernel, rcvbuf %d bytes\n", got_.size(),
              static_cast<unsigned long long>(l.stats().kernel_drops), l.stats().rcvbuf);
  EXPECT_GT(held, 4'000u);  // the buffer held thousands
  EXPECT_GT(l.stats().kernel_drops, 0u);
  EXPECT_EQ(got_.size() + l.stats().kernel_drops, static_cast<std::size_t>(kCount) + 1);
}

// PKT-31: a datagram longer than the buffer is cut, not lost.
TEST_F(TransportTest, OversizedDatagramTruncated) {
  Listener l(io_, false, false, kTestPort);
  ASSERT_TRUE(l.open());
  l.start(batch_, &handler_);
  UdpPeer tx("127.0.0.2", 50001);
  std::vector<std::uint8_t> big(1400, 0xAB);
  ASSERT_TRUE(tx.send_raw("127.0.0.1", kTestPort, big));
  run_until(1);
  ASSERT_EQ(got_.size(), 1u);
  EXPECT_EQ(got_[0].bytes.size(), RxBatch::kBufferSize);
}

TEST_F(TransportTest, ListenerBindErrorNamesAddressAndPort) {
  UdpPeer squatter("0.0.0.0", 4999, /*reuse=*/false);
  ASSERT_TRUE(squatter.bound());
  Listener l(io_, false, false, 4999);
  try {
    l.open();
    FAIL() << "open() succeeded";
  } catch (const StartupError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot bind UDP 0.0.0.0:4999: Address already in use");
  }
}

// SH-02/03, SH-06, DSCP CS6: what the send socket puts on the wire.
TEST_F(TransportTest, SendSocketTtlTosAndSourcePort) {
  UdpPeer rx("127.0.0.2", kTestPort);
  SendSpec spec;
  spec.peer = boost::asio::ip::make_address("127.0.0.2");
  spec.local = boost::asio::ip::make_address("127.0.0.1");
  spec.source_port = 49200;
  SendOpenError err;
  auto s = SendSocket::open(spec, err);
  ASSERT_TRUE(s) << err.message;
  const std::uint8_t data[] = {1, 2, 3, 4};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->send(data));
  for (int i = 0; i < 3; ++i) {
    auto r = rx.recv(1000ms);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->ttl, 255);
    EXPECT_EQ(r->tos, 0xC0);
    EXPECT_EQ(r->src, "127.0.0.1");
    EXPECT_EQ(r->src_port, 49200);
  }
}

TEST_F(TransportTest, SendSocketV6HopLimitAndTrafficClass) {
  UdpPeer rx("fd00::2", core::wire::kMultiHopPort);
  SendSpec spec;
  spec.peer = boost::asio::ip::make_address("fd00::2");
  spec.local = boost::asio::ip::make_address("fd00::1");
  spec.multihop = true;  // MH-01: 4784
  spec.source_port = 49201;
  SendOpenError err;
  auto s = SendSocket::open(spec, err);
  ASSERT_TRUE(s) << err.message;
  const std::uint8_t data[] = {1};
  ASSERT_TRUE(s->send(data));
  auto r = rx.recv(1000ms);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->ttl, 255);
  EXPECT_EQ(r->tos, 0xC0);
  EXPECT_EQ(r->src_port, 49201);
}

// SH-15: a link-local peer without an interface cannot be addressed.
TEST_F(TransportTest, LinkLocalPeerNeedsInterface) {
  SendSpec spec;
  spec.peer = boost::asio::ip::make_address("fe80::1");
  spec.source_port = 49202;
  SendOpenError err;
  EXPECT_FALSE(SendSocket::open(spec, err));
  EXPECT_NE(err.message.find("needs an interface"), std::string::npos);
}

TEST_F(TransportTest, SendSocketErrors) {
  SendOpenError err;
  SendSpec spec;
  spec.peer = boost::asio::ip::make_address("127.0.0.2");
  spec.local = boost::asio::ip::make_address("198.18.0.7");  // not ours
  spec.source_port = 49203;
  EXPECT_FALSE(SendSocket::open(spec, err));
  EXPECT_EQ(err.message, "cannot bind UDP 198.18.0.7:49203: Cannot assign requested address");

  spec.local.reset();
  spec.interface = "nosuchif0";
  EXPECT_FALSE(SendSocket::open(spec, err));
  EXPECT_NE(err.message.find("nosuchif0"), std::string::npos);

  spec.interface.clear();
  spec.local = boost::asio::ip::make_address("::1");
  EXPECT_FALSE(SendSocket::open(spec, err));
  EXPECT_NE(err.message.find("address family"), std::string::npos);

  // A source port someone else holds reports EADDRINUSE (the engine skips it).
  UdpPeer squatter("0.0.0.0", 49204, /*reuse=*/false);
  spec.local.reset();
  spec.source_port = 49204;
  EXPECT_FALSE(SendSocket::open(spec, err));
  EXPECT_EQ(err.errnum, EADDRINUSE);
}

// Packets due together leave 16 per system call (io_uring), each from its
// session's own socket and source port (SH-02/03), TTL 255 and CS6 intact.
TEST_F(TransportTest, BatchedTransmitSixteenPacketsPerSystemCall) {
  SocketTransport t;
  const std::string why = t.set_mode("io_uring");
  if (!why.empty()) GTEST_SKIP() << "io_uring unavailable here: " << why;
  ASSERT_TRUE(t.batched());
  UdpPeer rx("127.0.0.2", kTestPort);
  constexpr int kPaths = 40;
  std::vector<Transport::Path> paths;
  for (int i = 0; i < kPaths; ++i) {
    PathSpec spec;
    spec.peer = boost::asio::ip::make_address("127.0.0.2");
    spec.local = boost::asio::ip::make_address("127.0.0.1");
    spec.source_port = static_cast<std::uint16_t>(49300 + i);
    PathOpenError err;
    auto p = t.open_path(spec, err);
    ASSERT_TRUE(p) << err.message;
    paths.push_back(*p);
  }
  // Fewer than a batch: queued, not sent, until the loop turn ends.
  std::uint64_t before = t.tx_syscalls();
  for (int i = 0; i < 10; ++i) {
    const std::uint8_t data[] = {static_cast<std::uint8_t>(i)};
    ASSERT_TRUE(t.send(paths[static_cast<std::size_t>(i)], data));
  }
  EXPECT_FALSE(rx.recv(50ms));
  EXPECT_EQ(t.flush(), 0u);
  EXPECT_EQ(t.tx_syscalls() - before, 1u);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rx.recv(1000ms)) << "packet " << i << " missing";
  // A burst leaves 16 at a time (a packet never waits behind many others).
  before = t.tx_syscalls();
  for (int i = 0; i < kPaths; ++i) {
    const std::uint8_t data[] = {static_cast<std::uint8_t>(i), 2, 3};
    ASSERT_TRUE(t.send(paths[static_cast<std::size_t>(i)], data));
  }
  EXPECT_EQ(t.flush(), 0u);
  EXPECT_EQ(t.tx_syscalls() - before, 3u);  // 16 + 16 + 8
  std::vector<bool> seen(kPaths, false);
  for (int i = 0; i < kPaths; ++i) {
    auto r = rx.recv(1000ms);
    ASSERT_TRUE(r) << "packet " << i << " missing";
    EXPECT_EQ(r->ttl, 255);
    EXPECT_EQ(r->tos, 0xC0);
    ASSERT_GE(r->src_port, 49300);
    ASSERT_LT(r->src_port, 49300 + kPaths);
    seen[r->src_port - 49300] = true;
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](bool b) { return b; }));
  // More packets than the ring holds: flushed as it fills, nothing lost (the
  // receiver gets a buffer large enough to hold them all).
  const int big = 4 * 1024 * 1024;
  ASSERT_EQ(::setsockopt(rx.fd(), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big), 0);
  for (int round = 0; round < 10; ++round) {
    for (auto p : paths) {
      const std::uint8_t data[] = {9};
      ASSERT_TRUE(t.send(p, data));
    }
  }
  EXPECT_EQ(t.flush(), 0u);
  int got = 0;
  while (rx.recv(200ms)) ++got;
  EXPECT_EQ(got, 10 * kPaths);
}

TEST_F(TransportTest, UnbatchedModeSendsAtOnce) {
  SocketTransport t;
  ASSERT_EQ(t.set_mode("send"), "");
  EXPECT_FALSE(t.batched());
  UdpPeer rx("127.0.0.2", kTestPort);
  PathSpec spec;
  spec.peer = boost::asio::ip::make_address("127.0.0.2");
  spec.source_port = 49400;
  PathOpenError err;
  auto p = t.open_path(spec, err);
  ASSERT_TRUE(p) << err.message;
  const std::uint8_t data[] = {1};
  ASSERT_TRUE(t.send(*p, data));
  EXPECT_TRUE(rx.recv(1000ms));  // before any flush
  EXPECT_EQ(t.tx_syscalls(), 1u);
}

// A connected socket reports an earlier packet's ICMP port unreachable on the
// next send, which the kernel then drops: that packet must still go out (the
// peer's BFD may have just started listening), in both transmit modes.
TEST_F(TransportTest, IcmpErrorOfAnEarlierPacketDoesNotSwallowTheNext) {
  for (const char* mode : {"send", "io_uring"}) {
    SCOPED_TRACE(mode);
    SocketTransport t;
    if (!t.set_mode(mode).empty()) continue;  // io_uring unavailable: send covered it
    PathSpec spec;
    spec.peer = boost::asio::ip::make_address("127.0.0.3");
    spec.source_port = static_cast<std::uint16_t>(std::string(mode) == "send" ? 49410 : 49411);
    PathOpenError err;
    auto p = t.open_path(spec, err);
    ASSERT_TRUE(p) << err.message;
    const std::uint8_t data[] = {7};
    // Nobody listens on 127.0.0.3:3784 yet: ICMP port unreachable comes back.
    ASSERT_TRUE(t.send(*p, data));
    EXPECT_EQ(t.flush(), 0u);
    std::this_thread::sleep_for(20ms);
    UdpPeer rx("127.0.0.3", kTestPort);
    ASSERT_TRUE(rx.bound());
    EXPECT_TRUE(t.send(*p, data));
    EXPECT_EQ(t.flush(), 0u);
    EXPECT_TRUE(rx.recv(1000ms)) << "the packet after the ICMP error was lost";
  }
}

// No route to the peer when the session starts (link down at boot): the path
// opens all the same and sends once the route exists.
TEST_F(TransportTest, PathWithoutRouteOpensAndSendsOnceRouted) {
  SocketTransport t;
  (void)t.set_mode("auto");
  PathSpec spec;
  spec.peer = boost::asio::ip::make_address("198.18.7.2");
  spec.source_port = 49420;
  PathOpenError err;
  auto p = t.open_path(spec, err);
  ASSERT_TRUE(p) << err.message;
  const std::uint8_t data[] = {1};
  EXPECT_FALSE(t.send(*p, data));  // ENETUNREACH: counted by the caller
  ASSERT_EQ(
      std::system("ip link add bt0 type veth peer name bt1 && ip addr add 198.18.7.1/24 dev bt0 && "
                  "ip link set bt0 up && ip link set bt1 up && ip addr add 198.18.7.2/32 dev lo"),
      0);
  UdpPeer rx("198.18.7.2", kTestPort);
  ASSERT_TRUE(rx.bound());
  bool sent = false;
  for (int i = 0; i < 5 && !sent; ++i) {
    sent = t.send(*p, data);
    EXPECT_EQ(t.flush(), 0u);
  }
  EXPECT_TRUE(sent);
  EXPECT_TRUE(rx.recv(1000ms));
}

TEST(TransportHelpers, AddressText) {
  auto ll = boost::asio::ip::make_address("fe80::1");
  EXPECT_EQ(address_text(ll, "veth0"), "fe80::1%veth0");
  EXPECT_EQ(address_text(boost::asio::ip::make_address("198.18.0.1"), "veth0"), "198.18.0.1");
  auto v6 = ll.to_v6();
  v6.scope_id(7);
  EXPECT_EQ(without_scope(v6).to_string(), "fe80::1");
  EXPECT_EQ(interface_index(""), 0u);
  EXPECT_EQ(interface_index("definitely-not-an-interface"), 0u);
}

}  // namespace
}  // namespace beacon::engine::detail
