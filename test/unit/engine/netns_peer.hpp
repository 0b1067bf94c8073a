// Test helpers for the engine/transport tests: a private network namespace,
// a raw UDP "peer" speaking BFD with wire::encode/decode, and EngineFixture,
// the common fixture of engine_test and health_hold_test.
//
// Not a test support library (lives next to its two users): enter_private_netns()
// unshares the network namespace of the calling thread once per process (threads
// created later inherit it), so every address used here exists only inside it.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "beacon/config/config.hpp"
#include "beacon/core/wire.hpp"
#include "beacon/engine/engine.hpp"

namespace beacon::test {

// Returns false when the process may not create a network namespace (not root).
inline bool enter_private_netns() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    // system() children inherit the namespace of this thread.
    ok = std::system("ip link set lo up") == 0 &&
         std::system(
             "ip -6 addr add fd00::1/128 dev lo nodad && "
             "ip -6 addr add fd00::2/128 dev lo nodad") == 0;
    // A veth pair for interface-bound sessions (the kernel may lack "dummy").
    if (ok) {
      (void)std::system(
          "ip link add beaconeng0 type veth peer name beaconeng1 && "
          "ip link set beaconeng0 up && ip link set beaconeng1 up");
    }
  });
  return ok;
}

struct Received {
  core::wire::ControlPacket pkt;
  core::wire::DropReason decode = core::wire::DropReason::None;
  int ttl = -1;
  int tos = -1;
  std::uint16_t src_port = 0;
  std::string src;
  std::chrono::steady_clock::time_point at;
};

// A UDP socket bound to addr:port, with TTL/TOS reception on.
class UdpPeer {
 public:
  UdpPeer(const std::string& addr, std::uint16_t port, bool reuse = true) {
    v6_ = addr.find(':') != std::string::npos;
    fd_ = ::socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (reuse) ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (v6_) {
      ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
      ::setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one));
      ::setsockopt(fd_, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof(one));
    } else {
      ::setsockopt(fd_, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one));
      ::setsockopt(fd_, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one));
    }
    sockaddr_storage sa;
    socklen_t len = make(addr, port, sa);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0;
    set_ttl(255);
  }
  ~UdpPeer() {
    if (fd_ >= 0) ::close(fd_);
  }
  UdpPeer(const UdpPeer&) = delete;
  UdpPeer& operator=(const UdpPeer&) = delete;

  bool bound() const { return bound_; }
  int fd() const { return fd_; }

  void set_ttl(int ttl) {
    if (v6_) {
      ::setsockopt(fd_, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
    } else {
      ::setsockopt(fd_, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
    }
  }

  bool send_raw(const std::string& addr, std::uint16_t port, std::span<const std::uint8_t> b) {
    sockaddr_storage sa;
    socklen_t len = make(addr, port, sa);
    return ::sendto(fd_, b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&sa), len) ==
           static_cast<ssize_t>(b.size());
  }

  bool send(const std::string& addr, std::uint16_t port, const core::wire::ControlPacket& p) {
    std::array<std::uint8_t, core::wire::kMaxPacketLength> buf{};
    std::size_t n = core::wire::encode(p, buf);
    return send_raw(addr, port, std::span<const std::uint8_t>(buf.data(), n));
  }

  // Waits up to `timeout` for one datagram.
  std::optional<Received> recv(std::chrono::milliseconds timeout) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return std::nullopt;
    std::array<std::uint8_t, 512> data{};
    alignas(cmsghdr) std::array<std::uint8_t, 256> cbuf{};
    sockaddr_storage from{};
    iovec iov{data.data(), data.size()};
    msghdr h{};
    h.msg_name = &from;
    h.msg_namelen = sizeof(from);
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = cbuf.data();
    h.msg_controllen = cbuf.size();
    ssize_t n = ::recvmsg(fd_, &h, MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    Received r;
    r.at = std::chrono::steady_clock::now();
    r.decode = core::wire::decode(
        std::span<const std::uint8_t>(data.data(), static_cast<std::size_t>(n)), r.pkt);
    char text[INET6_ADDRSTRLEN] = {};
    if (from.ss_family == AF_INET) {
      auto& s = reinterpret_cast<sockaddr_in&>(from);
      ::inet_ntop(AF_INET, &s.sin_addr, text, sizeof(text));
      r.src_port = ntohs(s.sin_port);
    } else {
      auto& s = reinterpret_cast<sockaddr_in6&>(from);
      ::inet_ntop(AF_INET6, &s.sin6_addr, text, sizeof(text));
      r.src_port = ntohs(s.sin6_port);
    }
    r.src = text;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      int v = 0;
      if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS) {
        std::uint8_t t;
        std::memcpy(&t, CMSG_DATA(c), 1);
        r.tos = t;
        continue;
      }
      if (c->cmsg_len < CMSG_LEN(sizeof(int))) continue;
      std::memcpy(&v, CMSG_DATA(c), sizeof(v));
      if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
          (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
        r.ttl = v;
      } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS) {
        r.tos = v;
      }
    }
    return r;
  }

  // Reads until a packet satisfies `pred` or `timeout` passes.
  template <class Pred>
  std::optional<Received> recv_until(Pred pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          end - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      auto r = recv(left);
      if (!r) return std::nullopt;
      if (pred(*r)) return r;
    }
  }

  void drain() {
    while (recv(std::chrono::milliseconds(0))) {
    }
  }

 private:
  socklen_t make(const std::string& addr, std::uint16_t port, sockaddr_storage& sa) const {
    std::memset(&sa, 0, sizeof(sa));
    if (v6_) {
      auto& s = reinterpret_cast<sockaddr_in6&>(sa);
      s.sin6_family = AF_INET6;
      s.sin6_port = htons(port);
      ::inet_pton(AF_INET6, addr.c_str(), &s.sin6_addr);
      return sizeof(s);
    }
    auto& s = reinterpret_cast<sockaddr_in&>(sa);
    s.sin_family = AF_INET;
    s.sin_port = htons(port);
    ::inet_pton(AF_INET, addr.c_str(), &s.sin_addr);
    return sizeof(s);
  }

  int fd_ = -1;
  bool v6_ = false;
  bool bound_ = false;
};

inline core::wire::ControlPacket bfd_packet(core::wire::State st, std::uint32_t my,
                                            std::uint32_t your, std::uint8_t diag = 0,
                                            std::uint32_t interval_us = 1'000'000) {
  core::wire::ControlPacket p;
  p.version = 1;
  p.state = st;
  p.diag = diag;
  p.detect_mult = 3;
  p.my_discriminator = my;
  p.your_discriminator = your;
  p.desired_min_tx_us = interval_us;
  p.required_min_rx_us = interval_us;
  return p;
}

// Common fixture of the engine tests: the config under test, a ring-buffer
// log, the Engine, and bounded polling of its session snapshots. A derived
// SetUp() enters the private namespace (or skips) and then calls init_log().
class EngineFixture : public ::testing::Test {
 protected:
  void init_log(const char* logger_name, const char* pattern) {
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
    sink_->set_pattern(pattern);
    log_ = std::make_shared<spdlog::logger>(logger_name, sink_);
    log_->set_level(spdlog::level::debug);
    cfg_.source = "test";
  }

  engine::Engine& open() {
    engine_ = std::make_unique<engine::Engine>(cfg_, log_);
    engine_->open();
    return *engine_;
  }
  // Opens a fresh Engine on cfg_ expecting a StartupError; returns its
  // message ("" and a test failure if open() succeeded).
  std::string startup_error() {
    engine::Engine e(cfg_, log_);
    try {
      e.open();
    } catch (const engine::StartupError& ex) {
      return ex.what();
    }
    ADD_FAILURE() << "open() succeeded";
    return "";
  }
  engine::Engine& start() {
    open();
    engine_->run();
    return *engine_;
  }

  std::optional<engine::SessionSnapshot> find(const std::string& peer) {
    for (auto& s : engine_->sessions()) {
      if (s.peer == peer) return s;
    }
    return std::nullopt;
  }

  // Waits until `peer`'s session satisfies pred (bounded).
  template <class Pred>
  std::optional<engine::SessionSnapshot> wait_session(
      const std::string& peer, Pred pred,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (auto s = find(peer); s && pred(*s)) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return std::nullopt;
  }

  config::Config cfg_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> log_;
  std::unique_ptr<engine::Engine> engine_;
};

// A single-hop session to `peer` from 127.0.0.1 in group "web", timers 1 s x 3:
// slow enough that nothing but the test's own actions changes what it reads.
inline config::SessionSpec loopback_session(const std::string& peer) {
  config::SessionSpec s;
  s.peer = boost::asio::ip::make_address(peer);
  s.local = boost::asio::ip::make_address("127.0.0.1");
  s.group = "web";
  s.params = core::SessionParams{core::Duration{1'000'000}, core::Duration{1'000'000}, 3, false};
  return s;
}

}  // namespace beacon::test
