// Shared pieces of the fuzz targets: key rings for every auth type (built
// once, from libcrypto) and a logger that discards everything.
//
// A fuzz target must be deterministic (the same input always takes the same
// path), so every target builds its state afresh per input from these
// immutable parts.
#pragma once

#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include <algorithm>
#include <array>
#include <memory>
#include <string_view>
#include <vector>

#include "beacon/core/auth.hpp"
#include "beacon/crypto/libcrypto.hpp"

namespace beacon::fuzz {

// The keyed and password types in wire order (index 0 is None).
inline constexpr std::array<core::wire::AuthType, 6> kAuthTypes = {
    core::wire::AuthType::None,      core::wire::AuthType::SimplePassword,
    core::wire::AuthType::KeyedMd5,  core::wire::AuthType::MeticulousKeyedMd5,
    core::wire::AuthType::KeyedSha1, core::wire::AuthType::MeticulousKeyedSha1};

// Two keys. The first (it signs) is the one of the captured vectors in
// proto/vectors: secret "wirecap-secret", Key ID = the type's wire value
// (simple 1, MD5 2, meticulous MD5 3, SHA1 4, meticulous SHA1 5), so the
// captured BIRD packets verify as they are. The second (Key ID 200) has the
// longest secret the type allows, so the length checks see both sides.
inline std::shared_ptr<const core::auth::KeyRing> make_ring(core::wire::AuthType t) {
  if (t == core::wire::AuthType::None) return nullptr;
  constexpr std::string_view kCaptured = "wirecap-secret";
  std::vector<core::auth::Key> keys(2);
  keys[0].id = static_cast<std::uint8_t>(t);
  keys[0].len = static_cast<std::uint8_t>(kCaptured.size());
  std::copy(kCaptured.begin(), kCaptured.end(), keys[0].secret.begin());
  keys[1].id = 200;
  keys[1].len = static_cast<std::uint8_t>(core::auth::max_secret_len(t));
  for (std::size_t i = 0; i < keys[1].len; ++i) {
    keys[1].secret[i] = static_cast<std::uint8_t>('A' + i % 26);
  }
  return std::make_shared<const core::auth::KeyRing>(t, std::move(keys), crypto::libcrypto_ops());
}

// Index i of kAuthTypes -> its ring (nullptr for None); built on first use.
inline const std::shared_ptr<const core::auth::KeyRing>& ring(std::size_t i) {
  static const std::array<std::shared_ptr<const core::auth::KeyRing>, kAuthTypes.size()> rings =
      [] {
        std::array<std::shared_ptr<const core::auth::KeyRing>, kAuthTypes.size()> r;
        for (std::size_t j = 0; j < kAuthTypes.size(); ++j) r[j] = make_ring(kAuthTypes[j]);
        return r;
      }();
  return rings[i % rings.size()];
}

inline std::shared_ptr<spdlog::logger> null_logger() {
  static const auto log = [] {
    auto l =
        std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_st>());
    // Debug level so the formatting of every log line is exercised too.
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return log;
}

}  // namespace beacon::fuzz
