// BFD control packet codec (RFC 5880 §4, §6.8.6 steps 1-6).
//
// Every field is read and written big-endian at an explicit offset; no struct
// is ever cast over a buffer. decode() works on a local packet and assigns
// `out` only on success, so a dropped datagram leaves no side effect (PKT-11).
#include "beacon/core/wire.hpp"

#include <algorithm>
#include <array>

namespace beacon::core::wire {
namespace {

// Byte 1 flag bits (§4.1): Sta(2) P F C A D M.
constexpr std::uint8_t kPollBit = 0x20;
constexpr std::uint8_t kFinalBit = 0x10;
constexpr std::uint8_t kCpiBit = 0x08;
constexpr std::uint8_t kAuthBit = 0x04;
constexpr std::uint8_t kDemandBit = 0x02;
constexpr std::uint8_t kMultipointBit = 0x01;

constexpr std::size_t kMinAuthPacketLength = 26;  // header + Auth Type + Auth Len
constexpr std::size_t kMd5DigestLength = 16;
constexpr std::size_t kSha1DigestLength = 20;
constexpr std::size_t kMaxPasswordLength = 16;

std::uint32_t read_u32(std::span<const std::uint8_t> b, std::size_t off) {
  return (std::uint32_t{b[off]} << 24) | (std::uint32_t{b[off + 1]} << 16) |
         (std::uint32_t{b[off + 2]} << 8) | std::uint32_t{b[off + 3]};
}

void write_u32(std::span<std::uint8_t> b, std::size_t off, std::uint32_t v) {
  b[off] = static_cast<std::uint8_t>(v >> 24);
  b[off + 1] = static_cast<std::uint8_t>(v >> 16);
  b[off + 2] = static_cast<std::uint8_t>(v >> 8);
  b[off + 3] = static_cast<std::uint8_t>(v);
}

bool is_md5(AuthType t) {
  return t == AuthType::KeyedMd5 || t == AuthType::MeticulousKeyedMd5;
}
bool is_sha1(AuthType t) {
  return t == AuthType::KeyedSha1 || t == AuthType::MeticulousKeyedSha1;
}

// PKT-32: the auth section must fit inside Length and have exactly the layout
// of its type before any of its bytes are read. `pkt` is already limited to
// Length bytes (>= 26, checked by step 2).
DropReason decode_auth(std::span<const std::uint8_t> pkt, AuthSection& a) {
  const auto type = static_cast<AuthType>(pkt[kAuthOffset]);
  const std::uint8_t len = pkt[kAuthOffset + 1];
  if (kAuthOffset + len > pkt.size()) return DropReason::BadAuthLayout;
  a.type = type;
  a.len = len;
  if (type == AuthType::SimplePassword) {
    if (len < kMinPasswordAuthLen || len > kMaxPasswordAuthLen) return DropReason::BadAuthLayout;
    a.key_id = pkt[kAuthKeyIdOffset];
    a.password_len = static_cast<std::uint8_t>(len - 3);
    std::copy_n(pkt.begin() + kAuthPasswordOffset, a.password_len, a.password.begin());
    return DropReason::None;
  }
  std::size_t digest_len = 0;
  if (is_md5(type) && len == kMd5AuthLen) {
    digest_len = kMd5DigestLength;
  } else if (is_sha1(type) && len == kSha1AuthLen) {
    digest_len = kSha1DigestLength;
  } else {
    // Wrong Auth Len for a known type, or a type outside 1..5 (0 included):
    // no session can ever authenticate it (§6.8.6 steps 10-12 would drop it),
    // and its bytes have no layout we could carry, so it is a layout error.
    return DropReason::BadAuthLayout;
  }
  a.key_id = pkt[kAuthKeyIdOffset];
  // pkt[kAuthReservedOffset] is ignored on receipt (PKT-10).
  a.sequence = read_u32(pkt, kAuthSequenceOffset);
  std::copy_n(pkt.begin() + kAuthDigestOffset, digest_len, a.digest.begin());
  return DropReason::None;
}

}  // namespace

std::string_view drop_reason_name(DropReason r) {
  switch (r) {
    case DropReason::None:
      return "none";
    case DropReason::TooShort:
      return "too_short";
    case DropReason::BadVersion:
      return "bad_version";
    case DropReason::BadLength:
      return "bad_length";
    case DropReason::LengthExceedsPayload:
      return "length_exceeds_payload";
    case DropReason::ZeroDetectMult:
      return "zero_detect_mult";
    case DropReason::MultipointSet:
      return "multipoint_set";
    case DropReason::ZeroMyDiscriminator:
      return "zero_my_discriminator";
    case DropReason::BadAuthLayout:
      return "bad_auth_layout";
    case DropReason::UnknownYourDiscriminator:
      return "unknown_your_discriminator";
    case DropReason::ZeroYourDiscInitUp:
      return "zero_your_disc_init_up";
    case DropReason::NoSessionForPeer:
      return "no_session_for_peer";
    case DropReason::AuthPresentNotConfigured:
      return "auth_present_not_configured";
    case DropReason::AuthMissing:
      return "auth_missing";
    case DropReason::AuthFailed:
      return "auth_failed";
    case DropReason::BadTtl:
      return "bad_ttl";
    case DropReason::WrongPort:
      return "wrong_port";
    case DropReason::PassiveLimit:
      return "passive_limit";
    case DropReason::AuthWrongType:
      return "auth_wrong_type";
    case DropReason::AuthUnknownKeyId:
      return "auth_unknown_key_id";
    case DropReason::AuthBadSequence:
      return "auth_bad_sequence";
    case DropReason::Count:
      break;
  }
  return "unknown";
}

std::string_view state_name(State s) {
  switch (s) {
    case State::AdminDown:
      return "AdminDown";
    case State::Down:
      return "Down";
    case State::Init:
      return "Init";
    case State::Up:
      return "Up";
  }
  return "Unknown";
}

std::string_view diag_name(std::uint8_t diag) {
  // 0-8 from RFC 5880 §4.1, 9 from RFC 6428; the rest are unassigned but legal
  // on the wire (PKT-33). The field is 5 bits, so > 31 never comes from decode().
  static constexpr std::array<std::string_view, 32> kNames = {
      "none",
      "control-detection-time-expired",
      "echo-function-failed",
      "neighbor-signaled-down",
      "forwarding-plane-reset",
      "path-down",
      "concatenated-path-down",
      "administratively-down",
      "reverse-concatenated-path-down",
      "mis-connectivity-defect",
      "diag-10",
      "diag-11",
      "diag-12",
      "diag-13",
      "diag-14",
      "diag-15",
      "diag-16",
      "diag-17",
      "diag-18",
      "diag-19",
      "diag-20",
      "diag-21",
      "diag-22",
      "diag-23",
      "diag-24",
      "diag-25",
      "diag-26",
      "diag-27",
      "diag-28",
      "diag-29",
      "diag-30",
      "diag-31",
  };
  if (diag < kNames.size()) return kNames[diag];
  return "diag-invalid";
}

std::string_view auth_type_name(AuthType t) {
  switch (t) {
    case AuthType::None:
      return "none";
    case AuthType::SimplePassword:
      return "simple-password";
    case AuthType::KeyedMd5:
      return "keyed-md5";
    case AuthType::MeticulousKeyedMd5:
      return "meticulous-keyed-md5";
    case AuthType::KeyedSha1:
      return "keyed-sha1";
    case AuthType::MeticulousKeyedSha1:
      return "meticulous-keyed-sha1";
  }
  return "auth-type-unknown";
}

std::uint8_t auth_len_for(const AuthSection& a) {
  if (a.type == AuthType::SimplePassword) {
    const auto n = std::clamp<std::size_t>(a.password_len, 1, kMaxPasswordLength);
    return static_cast<std::uint8_t>(n + 3);
  }
  if (is_md5(a.type)) return kMd5AuthLen;
  if (is_sha1(a.type)) return kSha1AuthLen;
  return 2;
}

// RFC 5880 §6.8.6 steps 1-6, then PKT-32. TooShort is checked before step 1:
// a datagram under 24 bytes fails step 2 (Length < 24) or step 3 (Length >
// payload) whatever its Length byte says, so the pre-check never changes
// whether a datagram is dropped, only which counter names it; and it makes
// every later read of the 24-byte header in bounds.
DropReason decode(std::span<const std::uint8_t> datagram, ControlPacket& out) {
  if (datagram.size() < kMandatoryLength) return DropReason::TooShort;

  ControlPacket p;
  p.version = static_cast<std::uint8_t>(datagram[0] >> 5);
  p.diag = static_cast<std::uint8_t>(datagram[0] & 0x1f);
  const std::uint8_t flags = datagram[1];
  p.state = static_cast<State>(flags >> 6);
  p.poll = (flags & kPollBit) != 0;
  p.final = (flags & kFinalBit) != 0;
  p.control_plane_independent = (flags & kCpiBit) != 0;
  p.auth_present = (flags & kAuthBit) != 0;
  p.demand = (flags & kDemandBit) != 0;
  p.multipoint = (flags & kMultipointBit) != 0;
  p.detect_mult = datagram[2];
  p.length = datagram[3];

  if (p.version != 1) return DropReason::BadVersion;  // step 1, PKT-12
  const std::size_t min_length = p.auth_present ? kMinAuthPacketLength : kMandatoryLength;
  if (p.length < min_length) return DropReason::BadLength;                  // step 2, PKT-13
  if (p.length > datagram.size()) return DropReason::LengthExceedsPayload;  // step 3, PKT-14
  if (p.detect_mult == 0) return DropReason::ZeroDetectMult;                // step 4, PKT-15
  if (p.multipoint) return DropReason::MultipointSet;                       // step 5, PKT-16
  p.my_discriminator = read_u32(datagram, 4);
  if (p.my_discriminator == 0) return DropReason::ZeroMyDiscriminator;  // step 6, PKT-17

  p.your_discriminator = read_u32(datagram, 8);
  // Diag, C, D and Desired Min TX 0 are never discard reasons (PKT-33).
  p.desired_min_tx_us = read_u32(datagram, 12);
  p.required_min_rx_us = read_u32(datagram, 16);
  p.required_min_echo_rx_us = read_u32(datagram, 20);

  // Bytes past Length are padding (RFC 9764) and are never looked at (PKT-31).
  const auto pkt = datagram.first(p.length);
  if (p.auth_present) {
    if (const auto r = decode_auth(pkt, p.auth); r != DropReason::None) return r;
  }
  out = p;
  return DropReason::None;
}

// Writes exactly what `p` holds, M bit included: sessions never set
// p.multipoint (PKT-02); encode() does not police it so tests can build
// invalid packets with the same code. Length and Auth Len are computed.
std::size_t encode(const ControlPacket& p, std::span<std::uint8_t> out) {
  const std::size_t auth_len = p.auth_present ? auth_len_for(p.auth) : 0;
  const std::size_t length = kMandatoryLength + auth_len;
  if (out.size() < length) return 0;
  std::fill_n(out.begin(), length, std::uint8_t{0});

  out[0] = static_cast<std::uint8_t>(((p.version & 0x07) << 5) | (p.diag & 0x1f));
  std::uint8_t flags = static_cast<std::uint8_t>((static_cast<std::uint8_t>(p.state) & 0x03) << 6);
  if (p.poll) flags |= kPollBit;
  if (p.final) flags |= kFinalBit;
  if (p.control_plane_independent) flags |= kCpiBit;
  if (p.auth_present) flags |= kAuthBit;
  if (p.demand) flags |= kDemandBit;
  if (p.multipoint) flags |= kMultipointBit;
  out[1] = flags;
  out[2] = p.detect_mult;
  out[3] = static_cast<std::uint8_t>(length);
  write_u32(out, 4, p.my_discriminator);
  write_u32(out, 8, p.your_discriminator);
  write_u32(out, 12, p.desired_min_tx_us);
  write_u32(out, 16, p.required_min_rx_us);
  write_u32(out, 20, p.required_min_echo_rx_us);
  if (!p.auth_present) return length;

  const AuthSection& a = p.auth;
  out[kAuthOffset] = static_cast<std::uint8_t>(a.type);
  out[kAuthOffset + 1] = static_cast<std::uint8_t>(auth_len);
  if (a.type == AuthType::SimplePassword) {
    out[kAuthKeyIdOffset] = a.key_id;
    std::copy_n(a.password.begin(), auth_len - 3, out.begin() + kAuthPasswordOffset);
  } else if (is_md5(a.type) || is_sha1(a.type)) {
    out[kAuthKeyIdOffset] = a.key_id;
    out[kAuthReservedOffset] = 0;  // §4.3, §4.4: Reserved is sent as 0 (PKT-10)
    write_u32(out, kAuthSequenceOffset, a.sequence);
    const std::size_t digest_len = is_md5(a.type) ? kMd5DigestLength : kSha1DigestLength;
    std::copy_n(a.digest.begin(), digest_len, out.begin() + kAuthDigestOffset);
  }
  return length;
}

}  // namespace beacon::core::wire
