// Unit tests for the BFD control packet codec (include/beacon/core/wire.hpp).
//
// Conformance IDs (bfd-conformance.md) are in test names and comments:
// PKT-10..17 and PKT-31..33 are pinned here; the byte layout tests back
// PKT-01/02/04 for the sender side; proto/vectors/ holds real BIRD and FRR
// packets (see proto/vectors/README.md).
#include "beacon/core/wire.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace beacon::core::wire {
namespace {

using Bytes = std::vector<std::uint8_t>;

ControlPacket base_packet() {
  ControlPacket p;
  p.version = 1;
  p.state = State::Up;
  p.detect_mult = 3;
  p.my_discriminator = 0x11223344;
  p.your_discriminator = 0x55667788;
  p.desired_min_tx_us = 300000;
  p.required_min_rx_us = 250000;
  p.required_min_echo_rx_us = 0;
  p.length = kMandatoryLength;
  return p;
}

Bytes encode_bytes(const ControlPacket& p) {
  Bytes buf(kMaxPacketLength, 0xEE);
  const std::size_t n = encode(p, buf);
  buf.resize(n);
  return buf;
}

ControlPacket with_auth(ControlPacket p, AuthType type) {
  p.auth_present = true;
  p.auth.type = type;
  p.auth.key_id = 7;
  if (type == AuthType::SimplePassword) {
    p.auth.password_len = 8;
    for (std::uint8_t i = 0; i < 8; ++i) p.auth.password[i] = static_cast<std::uint8_t>('a' + i);
  } else {
    p.auth.sequence = 0xDEADBEEF;
    const std::size_t n =
        (type == AuthType::KeyedMd5 || type == AuthType::MeticulousKeyedMd5) ? 16 : 20;
    for (std::size_t i = 0; i < n; ++i) p.auth.digest[i] = static_cast<std::uint8_t>(0xA0 + i);
  }
  p.auth.len = auth_len_for(p.auth);
  p.length = static_cast<std::uint8_t>(kMandatoryLength + p.auth.len);
  return p;
}

// Fixed bytes written by hand from RFC 5880 §4.1, so that a bug shared by
// encode() and decode() cannot hide behind a round trip.
// clang-format off
const Bytes kHandMadeUp = {
    0x20 | 5,                // Vers 1, Diag 5 (path down)
    0xC0 | 0x20 | 0x08,      // Sta Up, P, C
    3,    24,                // Detect Mult, Length
    0x11, 0x22, 0x33, 0x44,  // My Discriminator
    0x55, 0x66, 0x77, 0x88,  // Your Discriminator
    0x00, 0x04, 0x93, 0xE0,  // Desired Min TX 300000
    0x00, 0x03, 0xD0, 0x90,  // Required Min RX 250000
    0x00, 0x00, 0x00, 0x01,  // Required Min Echo RX 1
};
// clang-format on

TEST(WireNames, DropReasonNamesAreStableSnakeCaseAndUnique) {
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    const auto name = drop_reason_name(static_cast<DropReason>(i));
    ASSERT_FALSE(name.empty());
    EXPECT_NE(name, "unknown") << i;
    EXPECT_TRUE(std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    })) << name;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
  }
  // Metric labels: these exact strings are a contract with dashboards.
  EXPECT_EQ(drop_reason_name(DropReason::None), "none");
  EXPECT_EQ(drop_reason_name(DropReason::TooShort), "too_short");
  EXPECT_EQ(drop_reason_name(DropReason::BadVersion), "bad_version");
  EXPECT_EQ(drop_reason_name(DropReason::BadLength), "bad_length");
  EXPECT_EQ(drop_reason_name(DropReason::LengthExceedsPayload), "length_exceeds_payload");
  EXPECT_EQ(drop_reason_name(DropReason::ZeroDetectMult), "zero_detect_mult");
  EXPECT_EQ(drop_reason_name(DropReason::MultipointSet), "multipoint_set");
  EXPECT_EQ(drop_reason_name(DropReason::ZeroMyDiscriminator), "zero_my_discriminator");
  EXPECT_EQ(drop_reason_name(DropReason::BadAuthLayout), "bad_auth_layout");
  EXPECT_EQ(drop_reason_name(DropReason::PassiveLimit), "passive_limit");
  EXPECT_EQ(drop_reason_name(DropReason::Count), "unknown");
}

TEST(WireNames, StateDiagAndAuthTypeNames) {
  EXPECT_EQ(state_name(State::AdminDown), "AdminDown");
  EXPECT_EQ(state_name(State::Down), "Down");
  EXPECT_EQ(state_name(State::Init), "Init");
  EXPECT_EQ(state_name(State::Up), "Up");
  EXPECT_EQ(diag_name(0), "none");
  EXPECT_EQ(diag_name(1), "control-detection-time-expired");
  EXPECT_EQ(diag_name(3), "neighbor-signaled-down");
  EXPECT_EQ(diag_name(5), "path-down");
  EXPECT_EQ(diag_name(7), "administratively-down");
  EXPECT_EQ(diag_name(8), "reverse-concatenated-path-down");
  EXPECT_EQ(diag_name(17), "diag-17");
  EXPECT_EQ(diag_name(31), "diag-31");
  EXPECT_EQ(diag_name(32), "diag-invalid");
  EXPECT_EQ(auth_type_name(AuthType::KeyedSha1), "keyed-sha1");
  EXPECT_EQ(auth_type_name(static_cast<AuthType>(9)), "auth-type-unknown");
}

TEST(WireLayout, DecodeReadsHandMadeBytesAtRfcOffsets) {
  ControlPacket p;
  ASSERT_EQ(decode(kHandMadeUp, p), DropReason::None);
  EXPECT_EQ(p.version, 1);
  EXPECT_EQ(p.diag, 5);
  EXPECT_EQ(p.state, State::Up);
  EXPECT_TRUE(p.poll);
  EXPECT_FALSE(p.final);
  EXPECT_TRUE(p.control_plane_independent);
  EXPECT_FALSE(p.auth_present);
  EXPECT_FALSE(p.demand);
  EXPECT_FALSE(p.multipoint);
  EXPECT_EQ(p.detect_mult, 3);
  EXPECT_EQ(p.length, 24);
  EXPECT_EQ(p.my_discriminator, 0x11223344u);
  EXPECT_EQ(p.your_discriminator, 0x55667788u);
  EXPECT_EQ(p.desired_min_tx_us, 300000u);
  EXPECT_EQ(p.required_min_rx_us, 250000u);
  EXPECT_EQ(p.required_min_echo_rx_us, 1u);
  EXPECT_EQ(encode_bytes(p), kHandMadeUp);
}

// PKT-01: a fresh Down packet starts with byte 0 = 0x20 (Vers 1, Diag 0).
TEST(WireLayout, PKT01_EncodeFirstByteOfDownPacket) {
  ControlPacket p = base_packet();
  p.state = State::Down;
  p.your_discriminator = 0;
  const Bytes b = encode_bytes(p);
  ASSERT_EQ(b.size(), 24u);
  EXPECT_EQ(b[0], 0x20);
  EXPECT_EQ(b[1], 0x40);  // Sta Down, no flags: M = 0 (PKT-02)
  EXPECT_EQ(b[3], 24);
}

// PKT-04: Length = 24 + Auth Len; no auth -> 24, SHA1 -> 52, 8-byte password -> 35.
TEST(WireLayout, PKT04_EncodeComputesLengthAndAuthLen) {
  ControlPacket p = base_packet();
  p.length = 99;  // ignored: encode() computes Length
  EXPECT_EQ(encode_bytes(p)[3], 24);

  const Bytes sha1 = encode_bytes(with_auth(base_packet(), AuthType::KeyedSha1));
  ASSERT_EQ(sha1.size(), 52u);
  EXPECT_EQ(sha1[1] & 0x04, 0x04);  // A bit
  EXPECT_EQ(sha1[3], 52);
  EXPECT_EQ(sha1[24], 4);
  EXPECT_EQ(sha1[25], 28);
  EXPECT_EQ(sha1[26], 7);  // Key ID
  EXPECT_EQ(sha1[27], 0);  // Reserved (PKT-10)
  EXPECT_EQ(sha1[28], 0xDE);
  EXPECT_EQ(sha1[31], 0xEF);  // Sequence big-endian
  EXPECT_EQ(sha1[32], 0xA0);
  EXPECT_EQ(sha1[51], 0xA0 + 19);

  const Bytes md5 = encode_bytes(with_auth(base_packet(), AuthType::MeticulousKeyedMd5));
  ASSERT_EQ(md5.size(), 48u);
  EXPECT_EQ(md5[24], 3);
  EXPECT_EQ(md5[25], 24);

  const Bytes pw = encode_bytes(with_auth(base_packet(), AuthType::SimplePassword));
  ASSERT_EQ(pw.size(), 35u);
  EXPECT_EQ(pw[3], 35);
  EXPECT_EQ(pw[24], 1);
  EXPECT_EQ(pw[25], 11);  // AUTH-03: 8-byte password -> Auth Len 11
  EXPECT_EQ(pw[26], 7);
  EXPECT_EQ(std::string(pw.begin() + 27, pw.end()), "abcdefgh");
}

TEST(WireLayout, EncodeRefusesTooSmallBuffer) {
  Bytes small(23);
  EXPECT_EQ(encode(base_packet(), small), 0u);
  Bytes fits(51);
  EXPECT_EQ(encode(with_auth(base_packet(), AuthType::KeyedSha1), fits), 0u);
}

// encode() writes what it is given, M included; decode() then drops it (PKT-16).
TEST(WireLayout, PKT02_EncodeDoesNotPoliceMultipoint) {
  ControlPacket p = base_packet();
  p.multipoint = true;
  const Bytes b = encode_bytes(p);
  EXPECT_EQ(b[1] & 0x01, 0x01);
  ControlPacket out;
  EXPECT_EQ(decode(b, out), DropReason::MultipointSet);
}

// Every state x every flag combination (M excluded: see above) x every diag
// value x every auth type and password length survives encode -> decode.
TEST(WireRoundTrip, AllFieldCombinations) {
  std::vector<ControlPacket> auths;
  auths.push_back(base_packet());
  for (AuthType t : {AuthType::KeyedMd5, AuthType::MeticulousKeyedMd5, AuthType::KeyedSha1,
                     AuthType::MeticulousKeyedSha1}) {
    auths.push_back(with_auth(base_packet(), t));
  }
  for (std::uint8_t n = 1; n <= 16; ++n) {
    ControlPacket p = with_auth(base_packet(), AuthType::SimplePassword);
    p.auth.password = {};
    p.auth.password_len = n;
    for (std::uint8_t i = 0; i < n; ++i) p.auth.password[i] = static_cast<std::uint8_t>(0x80 + i);
    p.auth.len = static_cast<std::uint8_t>(n + 3);
    p.length = static_cast<std::uint8_t>(24 + n + 3);
    auths.push_back(p);
  }
  std::size_t checked = 0;
  for (const ControlPacket& a : auths) {
    for (int state = 0; state < 4; ++state) {
      for (int flags = 0; flags < 16; ++flags) {  // P F C D
        for (std::uint8_t diag = 0; diag < 32; ++diag) {
          ControlPacket p = a;
          p.state = static_cast<State>(state);
          p.poll = flags & 1;
          p.final = flags & 2;
          p.control_plane_independent = flags & 4;
          p.demand = flags & 8;
          p.diag = diag;
          p.detect_mult = static_cast<std::uint8_t>(1 + (checked % 255));
          p.required_min_echo_rx_us = static_cast<std::uint32_t>(checked * 2654435761u);
          const Bytes b = encode_bytes(p);
          ASSERT_EQ(b.size(), p.length);
          ControlPacket q;
          ASSERT_EQ(decode(b, q), DropReason::None) << checked;
          ASSERT_EQ(q, p) << "state " << state << " flags " << flags << " diag " << int(diag)
                          << " auth " << auth_type_name(a.auth.type);
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, auths.size() * 4 * 16 * 32);
}

TEST(WireRoundTrip, ExtremeFieldValues) {
  ControlPacket p = base_packet();
  p.detect_mult = 255;
  p.my_discriminator = 0xFFFFFFFF;
  p.your_discriminator = 0xFFFFFFFF;
  p.desired_min_tx_us = 0xFFFFFFFF;
  p.required_min_rx_us = 0;
  p.required_min_echo_rx_us = 0xFFFFFFFF;
  ControlPacket q;
  ASSERT_EQ(decode(encode_bytes(p), q), DropReason::None);
  EXPECT_EQ(q, p);
}

// ---------------------------------------------------------------------------
// Discard rules: one packet per rule that breaks only that rule (PKT-11).

struct DropCase {
  const char* name;  // conformance ID first
  Bytes bytes;
  DropReason want;
};

Bytes valid_bytes() {
  return encode_bytes(base_packet());
}
Bytes valid_auth_bytes(AuthType t) {
  return encode_bytes(with_auth(base_packet(), t));
}

Bytes mutate(Bytes b, std::size_t off, std::uint8_t v) {
  b.at(off) = v;
  return b;
}

std::vector<DropCase> drop_cases() {
  std::vector<DropCase> c;
  const Bytes ok = valid_bytes();
  // TooShort: under 24 bytes, checked before step 1 (see wire.hpp).
  c.push_back({"TooShort_Empty", {}, DropReason::TooShort});
  c.push_back({"TooShort_OneByte", {0x20}, DropReason::TooShort});
  c.push_back({"TooShort_23BytesClaiming23", mutate(Bytes(ok.begin(), ok.end() - 1), 3, 23),
               DropReason::TooShort});
  c.push_back({"TooShort_23BytesBadVersion", mutate(Bytes(ok.begin(), ok.end() - 1), 0, 0x40),
               DropReason::TooShort});
  // PKT-12, step 1.
  c.push_back({"PKT12_Version0", mutate(ok, 0, 0x00), DropReason::BadVersion});
  c.push_back({"PKT12_Version2", mutate(ok, 0, 0x40), DropReason::BadVersion});
  c.push_back({"PKT12_Version7", mutate(ok, 0, 0xE0), DropReason::BadVersion});
  // PKT-13, step 2.
  c.push_back({"PKT13_Length23", mutate(ok, 3, 23), DropReason::BadLength});
  c.push_back({"PKT13_Length0", mutate(ok, 3, 0), DropReason::BadLength});
  {
    Bytes a = valid_auth_bytes(AuthType::SimplePassword);
    c.push_back({"PKT13_AuthLength24", mutate(a, 3, 24), DropReason::BadLength});
    c.push_back({"PKT13_AuthLength25", mutate(a, 3, 25), DropReason::BadLength});
    // A=1 in a bare 24-byte datagram.
    c.push_back(
        {"PKT13_AuthBitOn24ByteDatagram", mutate(ok, 1, ok[1] | 0x04), DropReason::BadLength});
  }
  // PKT-14, step 3.
  c.push_back(
      {"PKT14_Length48In24ByteDatagram", mutate(ok, 3, 48), DropReason::LengthExceedsPayload});
  c.push_back(
      {"PKT14_Length25In24ByteDatagram", mutate(ok, 3, 25), DropReason::LengthExceedsPayload});
  {
    Bytes a = valid_auth_bytes(AuthType::KeyedSha1);
    a.pop_back();  // 51-byte datagram claiming 52
    c.push_back({"PKT14_TruncatedSha1", a, DropReason::LengthExceedsPayload});
  }
  // PKT-15..17, steps 4-6.
  c.push_back({"PKT15_DetectMult0", mutate(ok, 2, 0), DropReason::ZeroDetectMult});
  c.push_back({"PKT16_MultipointSet", mutate(ok, 1, ok[1] | 0x01), DropReason::MultipointSet});
  {
    Bytes b = ok;
    std::fill(b.begin() + 4, b.begin() + 8, 0);
    c.push_back({"PKT17_MyDiscriminator0", b, DropReason::ZeroMyDiscriminator});
  }
  // PKT-32: auth section layout.
  {
    const Bytes pw = valid_auth_bytes(AuthType::SimplePassword);  // Length 35, Auth Len 11
    c.push_back({"PKT32_PasswordAuthLen3", mutate(pw, 25, 3), DropReason::BadAuthLayout});
    c.push_back({"PKT32_PasswordAuthLen0", mutate(pw, 25, 0), DropReason::BadAuthLayout});
    c.push_back({"PKT32_AuthLenPastLength", mutate(pw, 25, 12), DropReason::BadAuthLayout});
    Bytes big(24 + 20, 0);
    std::copy(pw.begin(), pw.end(), big.begin());
    big[3] = 44;
    c.push_back({"PKT32_PasswordAuthLen20", mutate(big, 25, 20), DropReason::BadAuthLayout});
    c.push_back({"PKT32_AuthType0", mutate(pw, 24, 0), DropReason::BadAuthLayout});
    c.push_back({"PKT32_AuthType6", mutate(pw, 24, 6), DropReason::BadAuthLayout});
    c.push_back({"PKT32_AuthType255", mutate(pw, 24, 255), DropReason::BadAuthLayout});
    const Bytes md5 = valid_auth_bytes(AuthType::KeyedMd5);
    c.push_back({"PKT32_Md5AuthLen23", mutate(md5, 25, 23), DropReason::BadAuthLayout});
    // MD5 type with a SHA1-sized section in a 52-byte packet.
    Bytes md5_as_sha1 = valid_auth_bytes(AuthType::KeyedSha1);
    md5_as_sha1[24] = 2;
    c.push_back({"PKT32_Md5AuthLen28", md5_as_sha1, DropReason::BadAuthLayout});
    const Bytes sha1 = valid_auth_bytes(AuthType::MeticulousKeyedSha1);
    c.push_back({"PKT32_Sha1AuthLen24", mutate(sha1, 25, 24), DropReason::BadAuthLayout});
    // SHA1 section claiming 28 bytes inside a Length of 48.
    c.push_back({"PKT32_Sha1LengthTooSmall", mutate(sha1, 3, 48), DropReason::BadAuthLayout});
  }
  return c;
}

TEST(WireDecode, PKT11_EachDiscardRuleAlone) {
  const ControlPacket sentinel = with_auth(base_packet(), AuthType::KeyedSha1);
  for (const DropCase& dc : drop_cases()) {
    SCOPED_TRACE(dc.name);
    ControlPacket out = sentinel;
    EXPECT_EQ(drop_reason_name(decode(dc.bytes, out)), drop_reason_name(dc.want));
    // PKT-11: no side effect on a drop.
    EXPECT_EQ(out, sentinel);
  }
}

// PKT-11: steps are applied in RFC order. Start with a datagram that breaks
// steps 1-6 at once, repair one rule at a time, and the reported reason
// walks down the list.
TEST(WireDecode, PKT11_StepsAppliedInRfcOrder) {
  Bytes b(40, 0);
  b[0] = 0x40;         // step 1: Vers 2
  b[1] = 0x40 | 0x01;  // step 5: M set
  b[2] = 0;            // step 4: Detect Mult 0
  b[3] = 23;           // step 2: Length 23
  ControlPacket out;
  EXPECT_EQ(decode(b, out), DropReason::BadVersion);
  b[0] = 0x20;
  EXPECT_EQ(decode(b, out), DropReason::BadLength);
  b[3] = 41;  // step 3: larger than the 40-byte datagram
  EXPECT_EQ(decode(b, out), DropReason::LengthExceedsPayload);
  b[3] = 40;
  EXPECT_EQ(decode(b, out), DropReason::ZeroDetectMult);
  b[2] = 3;
  EXPECT_EQ(decode(b, out), DropReason::MultipointSet);
  b[1] = 0x40 | 0x04;  // M cleared, A set with an all-zero (type 0) section
  EXPECT_EQ(decode(b, out), DropReason::ZeroMyDiscriminator);
  b[7] = 1;
  EXPECT_EQ(decode(b, out), DropReason::BadAuthLayout);  // PKT-32 comes after step 6
  b[1] = 0x40;
  EXPECT_EQ(decode(b, out), DropReason::None);
}

// PKT-31: bytes past Length are ignored (RFC 9764 padding).
TEST(WireDecode, PKT31_PaddedPayloadAccepted) {
  Bytes b = valid_bytes();
  b.resize(1000, 0);
  ControlPacket out;
  ASSERT_EQ(decode(b, out), DropReason::None);
  EXPECT_EQ(out, base_packet());

  Bytes sha1 = valid_auth_bytes(AuthType::KeyedSha1);
  sha1.resize(200, 0xFF);  // non-zero garbage too
  ASSERT_EQ(decode(sha1, out), DropReason::None);
  EXPECT_EQ(out, with_auth(base_packet(), AuthType::KeyedSha1));
}

// A Length larger than 24 + Auth Len is not a discard rule in §6.8.6: it is
// accepted and reported as received (encode() would write the computed one).
TEST(WireDecode, LengthBeyondSectionsAccepted) {
  Bytes b = valid_bytes();
  b.resize(30, 0);
  b[3] = 30;
  ControlPacket out;
  ASSERT_EQ(decode(b, out), DropReason::None);
  EXPECT_EQ(out.length, 30);
  EXPECT_EQ(encode_bytes(out)[3], 24);

  Bytes pw = valid_auth_bytes(AuthType::SimplePassword);  // Auth Len 11
  pw.resize(45, 0);
  pw[3] = 45;
  ASSERT_EQ(decode(pw, out), DropReason::None);
  EXPECT_EQ(out.auth.password_len, 8);
}

// PKT-33: unknown Diag, C, D while not Up, DesiredMinTx 0 are no discard rules.
TEST(WireDecode, PKT33_NoExtraDiscardRules) {
  ControlPacket p = base_packet();
  p.diag = 31;
  p.state = State::Down;
  p.control_plane_independent = true;
  p.demand = true;
  p.desired_min_tx_us = 0;
  p.required_min_rx_us = 0;
  p.your_discriminator = 0;
  ControlPacket out;
  ASSERT_EQ(decode(encode_bytes(p), out), DropReason::None);
  EXPECT_EQ(out.diag, 31);
  EXPECT_TRUE(out.control_plane_independent);
  EXPECT_TRUE(out.demand);
  EXPECT_EQ(out.desired_min_tx_us, 0u);
  EXPECT_EQ(diag_name(out.diag), "diag-31");
}

// PKT-10: the MD5/SHA1 Reserved byte is ignored on receipt and sent as 0.
TEST(WireDecode, PKT10_ReservedByteIgnored) {
  for (AuthType t : {AuthType::KeyedMd5, AuthType::MeticulousKeyedMd5, AuthType::KeyedSha1,
                     AuthType::MeticulousKeyedSha1}) {
    SCOPED_TRACE(auth_type_name(t));
    const Bytes clean = valid_auth_bytes(t);
    const Bytes dirty = mutate(clean, kAuthReservedOffset, 0xFF);
    ControlPacket a, b;
    ASSERT_EQ(decode(clean, a), DropReason::None);
    ASSERT_EQ(decode(dirty, b), DropReason::None);
    EXPECT_EQ(a, b);
    EXPECT_EQ(encode_bytes(b), clean);
  }
}

TEST(WireDecode, PasswordBoundaries) {
  for (std::uint8_t len : {4, 19}) {
    Bytes b(24 + len, 0);
    const Bytes head = valid_bytes();
    std::copy(head.begin(), head.end(), b.begin());
    b[1] |= 0x04;
    b[3] = static_cast<std::uint8_t>(b.size());
    b[24] = 1;
    b[25] = len;
    b[26] = 9;
    for (std::size_t i = 27; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i);
    ControlPacket out;
    ASSERT_EQ(decode(b, out), DropReason::None) << int(len);
    EXPECT_EQ(out.auth.password_len, len - 3);
    EXPECT_EQ(out.auth.key_id, 9);
    EXPECT_EQ(out.auth.password[0], 27);
    EXPECT_EQ(encode_bytes(out), b);
  }
}

// ---------------------------------------------------------------------------
// Fuzz-ish: random and mutated datagrams (seeded, so failures reproduce).
// PKT-32: the decoder never reads out of bounds (run under ASan/UBSan with
// BEACON_SANITIZE=ON); every accepted datagram re-encodes to the same bytes.

void check_reencode(const Bytes& in, const ControlPacket& p) {
  Bytes buf(kMaxPacketLength, 0);
  const std::size_t n = encode(p, buf);
  const std::size_t want = kMandatoryLength + (p.auth_present ? p.auth.len : 0);
  ASSERT_EQ(n, want);
  ASSERT_LE(n, p.length);  // PKT-32: the auth section fits inside Length
  ASSERT_LE(p.length, in.size());
  const bool keyed = p.auth_present && p.auth.type != AuthType::SimplePassword;
  for (std::size_t i = 0; i < n; ++i) {
    if (i == 3) continue;                             // Length: computed, checked below
    if (keyed && i == kAuthReservedOffset) continue;  // PKT-10
    ASSERT_EQ(buf[i], in[i]) << "offset " << i;
  }
  ASSERT_EQ(buf[3], n);
  ASSERT_EQ(in[3], p.length);
  if (keyed) {
    ASSERT_EQ(buf[kAuthReservedOffset], 0);
  }
}

TEST(WireFuzz, PKT32_RandomAndMutatedDatagrams) {
  std::mt19937 rng(0xBFD5880);
  std::vector<Bytes> seeds;
  seeds.push_back(valid_bytes());
  for (AuthType t : {AuthType::SimplePassword, AuthType::KeyedMd5, AuthType::MeticulousKeyedMd5,
                     AuthType::KeyedSha1, AuthType::MeticulousKeyedSha1}) {
    seeds.push_back(valid_auth_bytes(t));
  }
  std::map<DropReason, int> seen;
  constexpr int kIterations = 200000;
  for (int it = 0; it < kIterations; ++it) {
    Bytes b;
    if (it % 2 == 0) {
      // Random bytes of random length, half of them with a plausible first byte.
      b.resize(std::uniform_int_distribution<std::size_t>(0, 80)(rng));
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      if (!b.empty() && (it % 4 == 0)) b[0] = static_cast<std::uint8_t>(0x20 | (b[0] & 0x1f));
      if (b.size() > 3 && (it % 8 == 0)) b[3] = static_cast<std::uint8_t>(b.size());
    } else {
      // A valid seed with 1-4 random byte changes and a random length change.
      b = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        b[rng() % b.size()] = static_cast<std::uint8_t>(rng() % 3 == 0 ? rng() % 64 : rng());
      }
      if (rng() % 8 == 0) {  // zero one 32-bit field (reaches step 6, PKT-33)
        const std::size_t off = 4 + 4 * (rng() % 5);
        std::fill(b.begin() + off, b.begin() + off + 4, 0);
      }
      switch (rng() % 4) {
        case 0:
          b.resize(rng() % (b.size() + 1));
          break;
        case 1:
          b.resize(b.size() + rng() % 40, static_cast<std::uint8_t>(rng()));
          break;
        default:
          break;
      }
    }
    ControlPacket p;
    const DropReason r = decode(b, p);
    ASSERT_LT(static_cast<std::size_t>(r), kDropReasonCount);
    ++seen[r];
    if (r == DropReason::None) {
      ASSERT_NO_FATAL_FAILURE(check_reencode(b, p)) << "iteration " << it;
    }
  }
  // The corpus must reach every decode() outcome, or the test proves little.
  for (DropReason r :
       {DropReason::None, DropReason::TooShort, DropReason::BadVersion, DropReason::BadLength,
        DropReason::LengthExceedsPayload, DropReason::ZeroDetectMult, DropReason::MultipointSet,
        DropReason::ZeroMyDiscriminator, DropReason::BadAuthLayout}) {
    EXPECT_GT(seen[r], 100) << drop_reason_name(r);
  }
  EXPECT_GT(seen[DropReason::None], kIterations / 20);
}

// ---------------------------------------------------------------------------
// Golden vectors captured from BIRD 2 and FRR bfdd (proto/vectors/README.md).
// File format: '#' comment lines, then the hex of the UDP payload. Lines
// "# expect key=value ..." state what the packet must decode to.

struct Vector {
  std::string name;
  Bytes bytes;
  std::map<std::string, std::string> expect;
};

Vector load_vector(const std::filesystem::path& path) {
  Vector v;
  v.name = path.filename().string();
  std::ifstream in(path);
  std::string line, hex;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '#') {
      std::istringstream words(line.substr(1));
      std::string word;
      words >> word;
      if (word != "expect") continue;
      while (words >> word) {
        const auto eq = word.find('=');
        if (eq != std::string::npos) v.expect[word.substr(0, eq)] = word.substr(eq + 1);
      }
      continue;
    }
    for (char c : line) {
      if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(c);
    }
  }
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    v.bytes.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  if (hex.size() % 2 != 0) v.bytes.clear();  // malformed file: fails below
  return v;
}

std::vector<Vector> load_vectors() {
  std::vector<Vector> out;
  const std::filesystem::path dir = std::filesystem::path(BEACON_SOURCE_DIR) / "proto/vectors";
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".hex") out.push_back(load_vector(e.path()));
  }
  std::sort(out.begin(), out.end(),
            [](const Vector& a, const Vector& b) { return a.name < b.name; });
  return out;
}

std::string actual_field(const ControlPacket& p, const std::string& key) {
  auto b = [](bool x) { return std::string(x ? "1" : "0"); };
  if (key == "version") return std::to_string(p.version);
  if (key == "diag") return std::to_string(p.diag);
  if (key == "state") return std::string(state_name(p.state));
  if (key == "poll") return b(p.poll);
  if (key == "final") return b(p.final);
  if (key == "cpi") return b(p.control_plane_independent);
  if (key == "auth") return b(p.auth_present);
  if (key == "demand") return b(p.demand);
  if (key == "mult") return std::to_string(p.detect_mult);
  if (key == "length") return std::to_string(p.length);
  if (key == "my_disc") return std::to_string(p.my_discriminator);
  if (key == "your_disc") return std::to_string(p.your_discriminator);
  if (key == "your_disc_nonzero") return b(p.your_discriminator != 0);
  if (key == "min_tx") return std::to_string(p.desired_min_tx_us);
  if (key == "min_rx") return std::to_string(p.required_min_rx_us);
  if (key == "echo_rx") return std::to_string(p.required_min_echo_rx_us);
  if (key == "auth_type") return std::string(auth_type_name(p.auth.type));
  if (key == "auth_len") return std::to_string(p.auth.len);
  if (key == "key_id") return std::to_string(p.auth.key_id);
  if (key == "seq") return std::to_string(p.auth.sequence);
  return "<unknown key " + key + ">";
}

TEST(WireVectors, RealPacketsDecodeAndReencodeExactly) {
  const std::vector<Vector> vectors = load_vectors();
  // proto/vectors/README.md lists what was captured; keep this in step.
  ASSERT_GE(vectors.size(), 31u) << "proto/vectors/*.hex missing";
  std::set<std::string> sources;
  for (const Vector& v : vectors) {
    SCOPED_TRACE(v.name);
    ASSERT_GE(v.bytes.size(), kMandatoryLength);
    EXPECT_FALSE(v.expect.empty()) << "no '# expect' line";
    ControlPacket p;
    ASSERT_EQ(drop_reason_name(decode(v.bytes, p)), "none");
    for (const auto& [key, want] : v.expect) {
      EXPECT_EQ(actual_field(p, key), want) << "field " << key;
    }
    Bytes buf(kMaxPacketLength, 0);
    const std::size_t n = encode(p, buf);
    buf.resize(n);
    EXPECT_EQ(buf, v.bytes) << "encode(decode(x)) != x";
    sources.insert(v.name.substr(0, v.name.find('-')));
  }
  EXPECT_TRUE(sources.count("bird")) << "no BIRD vector";
  EXPECT_TRUE(sources.count("frr")) << "no FRR vector";
}

}  // namespace
}  // namespace beacon::core::wire
