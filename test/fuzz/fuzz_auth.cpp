// Fuzz target: the authentication verifier (core::auth::verify, in_window,
// sign) on its own, with the key ring of every type.
//
// Input: byte 0 bits 0-2 the ring's type (index into kAuthTypes, 0 and 6, 7
// wrap to a keyed type), bit 3 bfd.AuthSeqKnown, bit 4 re-sign the packet
// first (so the fuzzer gets past the digest to the sequence rules), bit 5
// verify from the struct (empty raw, re-encoded); bytes 1-4 bfd.RcvAuthSeq
// (big endian); the rest is the datagram, decoded with wire::decode.
// Oracles: verify() of a packet the ring just signed (sequence not known)
// succeeds; in_window() agrees with the RFC's arithmetic.
#include <array>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "beacon/core/auth.hpp"
#include "beacon/core/wire.hpp"
#include "fuzz_common.hpp"

namespace {

namespace auth = beacon::core::auth;
namespace wire = beacon::core::wire;
using wire::DropReason;

[[noreturn]] void oracle_failed() {
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::uint8_t h = data[0];
  std::size_t idx = h & 7u;
  if (idx == 0 || idx >= beacon::fuzz::kAuthTypes.size()) idx = 1 + idx % 5;
  const bool seq_known = (h & 0x08) != 0;
  const bool do_resign = (h & 0x10) != 0;
  const bool from_struct = (h & 0x20) != 0;
  const std::uint32_t rcv = (std::uint32_t{data[1]} << 24) | (std::uint32_t{data[2]} << 16) |
                            (std::uint32_t{data[3]} << 8) | std::uint32_t{data[4]};
  const auth::KeyRing& ring = *beacon::fuzz::ring(idx);

  std::vector<std::uint8_t> bytes(data + 5, data + size);
  if (do_resign && bytes.size() > 3 && bytes[3] <= bytes.size()) {
    (void)auth::sign(ring, std::span(bytes).first(bytes[3]));
  }

  wire::ControlPacket p;
  if (wire::decode(bytes, p) != DropReason::None) return 0;

  // The window arithmetic modulo 2^32 (AUTH-09).
  if (p.auth_present) {
    const std::uint64_t ahead =
        (std::uint64_t{p.auth.sequence} + (1ull << 32) - rcv) % (1ull << 32);
    const bool met = auth::is_meticulous(ring.type());
    const bool expect = ahead <= 3ull * p.detect_mult && (!met || ahead >= 1);
    if (auth::in_window(met, rcv, p.auth.sequence, p.detect_mult) != expect) oracle_failed();
  }
  if (!p.auth_present) return 0;

  const std::span<const std::uint8_t> raw =
      from_struct ? std::span<const std::uint8_t>() : std::span<const std::uint8_t>(bytes);
  const DropReason r = auth::verify(ring, seq_known, rcv, p, raw);
  (void)wire::drop_reason_name(r);

  // What the ring signs itself always verifies (sequence not yet known).
  if (auth::is_keyed(ring.type()) && p.auth.type == ring.type() &&
      ring.find(p.auth.key_id) != nullptr) {
    std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
    const std::size_t n = auth::encode(p, &ring, buf);
    if (n == 0) oracle_failed();
    wire::ControlPacket q;
    if (wire::decode(std::span<const std::uint8_t>(buf.data(), n), q) != DropReason::None) {
      oracle_failed();
    }
    if (auth::verify(ring, false, 0, q, std::span<const std::uint8_t>(buf.data(), n)) !=
        DropReason::None) {
      oracle_failed();
    }
  }
  return 0;
}
