// BFD control packet codec (RFC 5880 §4). Pure: no I/O, no allocation.
//
// decode() applies the packet-only steps of RFC 5880 §6.8.6 in order (steps
// 1-6) plus bounds checks of the authentication section layout (PKT-32); the
// session-dependent steps (7-12: discriminator lookup, auth type match,
// authentication) are applied by the demultiplexer and the session, which
// report the remaining DropReason values. Each reason has one counter.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace beacon::core::wire {

inline constexpr std::size_t kMandatoryLength = 24;
inline constexpr std::size_t kMaxPacketLength = 24 + 28;  // SHA1 is the largest section
inline constexpr std::uint16_t kSingleHopPort = 3784;
inline constexpr std::uint16_t kMultiHopPort = 4784;

// Offsets of the authentication section (§4.2-4.4), from the start of the
// packet. The auth layer hashes the encoded bytes with the key written at
// kAuthDigestOffset (§6.7.3, §6.7.4).
inline constexpr std::size_t kAuthOffset = 24;          // Auth Type, then Auth Len
inline constexpr std::size_t kAuthKeyIdOffset = 26;     // every auth type
inline constexpr std::size_t kAuthPasswordOffset = 27;  // Simple Password
inline constexpr std::size_t kAuthReservedOffset = 27;  // MD5/SHA1: sent 0, ignored (PKT-10)
inline constexpr std::size_t kAuthSequenceOffset = 28;  // MD5/SHA1
inline constexpr std::size_t kAuthDigestOffset = 32;    // MD5 digest (16) / SHA1 hash (20)
inline constexpr std::uint8_t kMd5AuthLen = 24;
inline constexpr std::uint8_t kSha1AuthLen = 28;
inline constexpr std::uint8_t kMinPasswordAuthLen = 4;   // 1-byte password
inline constexpr std::uint8_t kMaxPasswordAuthLen = 19;  // 16-byte password

enum class State : std::uint8_t { AdminDown = 0, Down = 1, Init = 2, Up = 3 };

enum class Diag : std::uint8_t {
  None = 0,
  ControlDetectionTimeExpired = 1,
  EchoFunctionFailed = 2,
  NeighborSignaledDown = 3,
  ForwardingPlaneReset = 4,
  PathDown = 5,
  ConcatenatedPathDown = 6,
  AdministrativelyDown = 7,
  ReverseConcatenatedPathDown = 8,
};

enum class AuthType : std::uint8_t {
  None = 0,
  SimplePassword = 1,
  KeyedMd5 = 2,
  MeticulousKeyedMd5 = 3,
  KeyedSha1 = 4,
  MeticulousKeyedSha1 = 5,
};

// Authentication section as laid out on the wire (§4.2-4.4). Only the fields
// of the given type are meaningful. Verification is done elsewhere.
struct AuthSection {
  AuthType type = AuthType::None;
  std::uint8_t len = 0;  // Auth Len as received / to send
  std::uint8_t key_id = 0;
  std::uint32_t sequence = 0;             // MD5/SHA1 types
  std::array<std::uint8_t, 20> digest{};  // 16 bytes MD5, 20 bytes SHA1
  std::array<std::uint8_t, 16> password{};
  std::uint8_t password_len = 0;  // Simple Password: 1..16

  friend bool operator==(const AuthSection&, const AuthSection&) = default;
};

// One BFD control packet, host byte order. Intervals are microseconds.
struct ControlPacket {
  std::uint8_t version = 1;
  std::uint8_t diag = 0;  // raw 5-bit value: unknown diags are legal (PKT-33)
  State state = State::Down;
  bool poll = false;
  bool final = false;
  bool control_plane_independent = false;
  bool auth_present = false;
  bool demand = false;
  bool multipoint = false;
  std::uint8_t detect_mult = 0;
  std::uint8_t length = 0;  // as received; encode() computes it
  std::uint32_t my_discriminator = 0;
  std::uint32_t your_discriminator = 0;
  std::uint32_t desired_min_tx_us = 0;
  std::uint32_t required_min_rx_us = 0;
  std::uint32_t required_min_echo_rx_us = 0;
  AuthSection auth{};  // valid when auth_present

  friend bool operator==(const ControlPacket&, const ControlPacket&) = default;
};

// Why a received datagram was dropped. Order follows RFC 5880 §6.8.6; the
// first group is decided by decode(), the second by demux/session code.
enum class DropReason : std::uint8_t {
  None = 0,
  // decode(): §6.8.6 steps 1-6 and auth layout
  TooShort,              // datagram shorter than 24 bytes, cannot read header. Checked
                         // before step 1: such a datagram fails step 2 or 3 anyway, so
                         // this only names the counter (it never changes the verdict).
  BadVersion,            // step 1
  BadLength,             // step 2: Length < 24 (A=0) or < 26 (A=1)
  LengthExceedsPayload,  // step 3
  ZeroDetectMult,        // step 4
  MultipointSet,         // step 5
  ZeroMyDiscriminator,   // step 6
  BadAuthLayout,         // PKT-32: Auth Len / type / Length inconsistent; also an
                         // Auth Type outside 1..5 (no session could accept it)
  // demux / session
  UnknownYourDiscriminator,  // step 7
  ZeroYourDiscInitUp,        // step 8
  NoSessionForPeer,          // step 9: no session and no accept rule
  AuthPresentNotConfigured,  // step 10: unexpected auth (A = 1, session has none)
  AuthMissing,               // step 11: missing auth (A = 0, session uses auth)
  AuthFailed,                // step 12: bad digest (MD5/SHA1) or wrong password
  BadTtl,                    // RFC 5881 §5 / RFC 5883 min TTL (checked before step 7)
  WrongPort,                 // MH-10: single-hop session on 4784 or vice versa
  PassiveLimit,              // accept rule cap / creation rate limit reached
  // step 12, the other §6.7 failures (appended: the names above keep their
  // place in every listing)
  AuthWrongType,     // Auth Type is not the session's
  AuthUnknownKeyId,  // Key ID not among the session's keys
  AuthBadSequence,   // MD5/SHA1 sequence number outside the replay window
  Count
};

inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::Count);

// Stable snake_case name for logs, metrics and bfdctl ("bad_version", ...).
std::string_view drop_reason_name(DropReason r);
std::string_view state_name(State s);           // "AdminDown", "Down", "Init", "Up"
std::string_view diag_name(std::uint8_t diag);  // "none", "path-down", ...; "diag-N" if unknown
std::string_view auth_type_name(AuthType t);    // "none", "keyed-sha1", ...; "auth-type-unknown"

// Auth Len that encode() writes for `a`: password_len + 3 (password_len
// clamped to 1..16) for Simple Password, 24 for MD5 types, 28 for SHA1 types,
// 2 for a type outside 1..5 (a section decode() rejects with BadAuthLayout).
std::uint8_t auth_len_for(const AuthSection& a);

// Decodes `datagram` (the whole UDP payload) into `out`. Returns None on
// success; on failure `out` is left untouched. Never reads outside the span.
// Trailing bytes past Length are ignored (PKT-31); a Length larger than 24 +
// Auth Len is accepted and kept in `out.length`. Unknown Diag, C, D and
// Desired Min TX 0 are accepted (PKT-33). The MD5/SHA1 Reserved byte is
// ignored (PKT-10). Auth Len must be exact for its type: 4..19 (password),
// 24 (MD5), 28 (SHA1), and 24 + Auth Len <= Length (PKT-32).
DropReason decode(std::span<const std::uint8_t> datagram, ControlPacket& out);

// Serializes `p` into `out` (which must hold at least kMaxPacketLength bytes),
// computing Length and Auth Len from the auth section (auth_len_for();
// p.length and p.auth.len are not used). Returns the number of bytes written,
// or 0 if `out` is too small. Writes the flags it is given, M included: the
// session never sets M (PKT-02), but encode() does not enforce it so tests can
// build invalid packets. The MD5/SHA1 Reserved byte is written as 0 (PKT-10).
// The digest field is written as stored in p.auth.digest (the auth layer fills
// it in before/after as RFC 5880 §6.7 requires).
std::size_t encode(const ControlPacket& p, std::span<std::uint8_t> out);

}  // namespace beacon::core::wire
