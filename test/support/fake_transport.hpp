// FakeTransport: an engine::Transport that records instead of touching the
// network, for driving engine::EngineCore with a FakeClock.
//
// It records every open_path() attempt (spec, errno), the paths it opened and
// closed, and every packet handed to send() (decoded with wire::decode, with
// the path and the clock time). It can be told to fail open_path() with a
// given errno for given source ports (EADDRINUSE: the core tries another
// port), or for every attempt, and to fail sends. Interface names and indexes
// come from a small table. No sockets, no root, no sleeps.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "beacon/core/time.hpp"
#include "beacon/core/wire.hpp"
#include "beacon/engine/core.hpp"

namespace beacon::test {

class FakeTransport final : public engine::Transport {
 public:
  struct Attempt {
    engine::PathSpec spec;
    int errnum = 0;  // 0: opened
  };
  struct Opened {
    engine::PathSpec spec;
    Path path = 0;
    core::TimePoint at{};
    bool closed = false;
    core::TimePoint closed_at{};
  };
  struct Sent {
    Path path = 0;
    core::TimePoint at{};
    core::wire::ControlPacket pkt;
    core::wire::DropReason decode = core::wire::DropReason::None;  // of our own bytes
    std::size_t bytes = 0;
    std::vector<std::uint8_t> raw;  // the bytes as sent (digests checkable)
  };

  explicit FakeTransport(const core::Clock& clock) : clock_(clock) {}

  // --- knobs
  std::map<std::uint16_t, int> fail_ports;  // source port -> errno for open_path()
  int fail_all_errno = 0;                   // nonzero: every open_path() fails with it
  bool fail_sends = false;                  // send() returns false (nothing recorded in sent)
  std::map<std::string, unsigned, std::less<>> interfaces{{"lo", 1}, {"veth0", 2}, {"veth1", 3}};

  // --- records
  std::vector<Attempt> attempts;
  std::map<Path, Opened> paths;
  std::vector<Path> closes;
  std::vector<Sent> sent;
  std::size_t failed_sends = 0;
  std::size_t bad_sends = 0;   // sends on a path that is closed or was never opened
  std::size_t bad_closes = 0;  // closes of a path that is closed or was never opened

  // --- Transport
  std::optional<Path> open_path(const engine::PathSpec& spec, engine::PathOpenError& err) override {
    int e = fail_all_errno;
    if (auto it = fail_ports.find(spec.source_port); it != fail_ports.end()) e = it->second;
    attempts.push_back(Attempt{spec, e});
    if (e != 0) {
      err.errnum = e;
      err.message = "cannot bind UDP " + (spec.local ? spec.local->to_string() : "0.0.0.0") + ":" +
                    std::to_string(spec.source_port) + ": " + std::strerror(e);
      return std::nullopt;
    }
    const Path p = next_path_++;
    paths[p] = Opened{spec, p, clock_.now(), false, {}};
    return p;
  }

  void close_path(Path p) override {
    closes.push_back(p);
    auto it = paths.find(p);
    if (it == paths.end() || it->second.closed) {
      ++bad_closes;
      return;
    }
    it->second.closed = true;
    it->second.closed_at = clock_.now();
  }

  bool send(Path p, std::span<const std::uint8_t> bytes) override {
    auto it = paths.find(p);
    if (it == paths.end() || it->second.closed) ++bad_sends;
    if (fail_sends) {
      ++failed_sends;
      return false;
    }
    Sent s;
    s.path = p;
    s.at = clock_.now();
    s.decode = core::wire::decode(bytes, s.pkt);
    s.bytes = bytes.size();
    s.raw.assign(bytes.begin(), bytes.end());
    sent.push_back(s);
    return true;
  }

  unsigned interface_index(const std::string& name) const override {
    auto it = interfaces.find(name);
    return it == interfaces.end() ? 0 : it->second;
  }

  std::string interface_name(unsigned ifindex) const override {
    for (const auto& [name, idx] : interfaces) {
      if (idx == ifindex) return name;
    }
    return "";
  }

  // --- queries

  // The peer a path sends to, without scope id.
  boost::asio::ip::address peer_of(Path p) const {
    const auto a = paths.at(p).spec.peer;
    if (a.is_v6() && a.to_v6().scope_id() != 0) {
      return boost::asio::ip::address_v6(a.to_v6().to_bytes());
    }
    return a;
  }

  // Every packet sent to `peer` (any path), in order.
  std::vector<Sent> to(const boost::asio::ip::address& peer, std::size_t from = 0) const {
    std::vector<Sent> out;
    for (std::size_t i = from; i < sent.size(); ++i) {
      if (peer_of(sent[i].path) == peer) out.push_back(sent[i]);
    }
    return out;
  }

  std::optional<Sent> last_to(const boost::asio::ip::address& peer) const {
    for (auto i = sent.size(); i-- > 0;) {
      if (peer_of(sent[i].path) == peer) return sent[i];
    }
    return std::nullopt;
  }

  // Paths opened (and not closed) towards `peer`.
  std::vector<Path> open_paths_to(const boost::asio::ip::address& peer) const {
    std::vector<Path> out;
    for (const auto& [p, o] : paths) {
      if (!o.closed && peer_of(p) == peer) out.push_back(p);
    }
    return out;
  }

 private:
  const core::Clock& clock_;
  Path next_path_ = 1;
};

}  // namespace beacon::test
