// RFC 5880 §6.7 authentication: the pure code in core/auth.cpp and its use by
// core::Session (sequence state, steps 10-12), with the libcrypto digests.
// Expected digests never come from the code under test: golden packets
// computed with Python hashlib (proto/vectors/auth/gen_golden.py), real
// BIRD captures (proto/vectors/bird-auth-*.hex) and direct EVP calls.
#include "beacon/core/auth.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "beacon/core/session.hpp"
#include "beacon/crypto/libcrypto.hpp"
#include "session_driver.hpp"

namespace beacon::core {
namespace {

using auth::Key;
using auth::KeyRing;
using test::ms;
using test::PeerPacket;
using test::SessionDriver;
using wire::AuthType;
using wire::ControlPacket;
using wire::DropReason;
using wire::State;

using Bytes = std::vector<std::uint8_t>;

Bytes unhex(std::string_view h) {
  Bytes out;
  for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(h.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

Key key(std::uint8_t id, std::string_view secret) {
  Key k;
  k.id = id;
  k.len = static_cast<std::uint8_t>(secret.size());
  std::copy(secret.begin(), secret.end(), k.secret.begin());
  return k;
}

std::shared_ptr<const KeyRing> ring(AuthType t, std::vector<Key> keys) {
  return std::make_shared<const KeyRing>(t, std::move(keys), crypto::libcrypto_ops());
}

// Digest computed straight with EVP (not through CryptoOps): the key
// zero-padded into the digest field, hash over the whole packet.
Bytes evp_expected(AuthType t, Bytes packet, std::string_view secret) {
  const bool md5 = t == AuthType::KeyedMd5 || t == AuthType::MeticulousKeyedMd5;
  const std::size_t n = md5 ? 16 : 20;
  std::fill(packet.begin() + 32, packet.begin() + 32 + static_cast<std::ptrdiff_t>(n), 0);
  std::copy(secret.begin(), secret.end(), packet.begin() + 32);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(
      EVP_Digest(packet.data(), packet.size(), out, &len, md5 ? EVP_md5() : EVP_sha1(), nullptr),
      1);
  return Bytes(out, out + len);
}

ControlPacket golden_header() {
  ControlPacket p;
  p.state = State::Up;
  p.detect_mult = 3;
  p.my_discriminator = 0x11223344;
  p.your_discriminator = 0x55667788;
  p.desired_min_tx_us = 1'000'000;
  p.required_min_rx_us = 500'000;
  return p;
}

Bytes encode_with(const KeyRing& r, ControlPacket p, std::uint32_t seq) {
  auth::TxSeq tx;
  tx.seq = seq;
  auth::stamp(r, tx, p);
  std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
  const std::size_t n = auth::encode(p, &r, buf);
  return Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
}

ControlPacket decoded(const Bytes& b) {
  ControlPacket p;
  EXPECT_EQ(wire::decode(b, p), DropReason::None);
  return p;
}

// ------------------------------------------------------------ golden packets

struct Golden {
  AuthType type;
  std::string secret;
  const char* hex;
};

// From proto/vectors/auth/gen_golden.py (Python hashlib): header Up, DM 3,
// MD 0x11223344, YD 0x55667788, 1 s / 500 ms, Key ID 7, Seq 0xDEADBEEF.
const Golden kGolden[] = {
    {AuthType::KeyedMd5, "secret-md5",
     "20c403301122334455667788000f42400007a1200000000002180700deadbeef28ae30a8f3d8c73971c991668cdfd"
     "d59"},
    {AuthType::MeticulousKeyedMd5, "secret-md5",
     "20c403301122334455667788000f42400007a1200000000003180700deadbeefbffb924706be321ea70b744dfb63f"
     "153"},
    {AuthType::KeyedSha1, "secret-sha1",
     "20c403341122334455667788000f42400007a12000000000041c0700deadbeef80f7229540fae6d85e13365bc9e75"
     "7e522636107"},
    {AuthType::MeticulousKeyedSha1, "secret-sha1",
     "20c403341122334455667788000f42400007a12000000000051c0700deadbeefe369aa55a2a31e716dde9a7cfe4b9"
     "a523f307b29"},
    // A 20-byte SHA1 key (the maximum, no padding) and a 16-byte MD5 key of
    // non-ASCII bytes (hex secrets, AUTH-02).
    {AuthType::KeyedSha1,
     std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14",
                 20),
     "20c403341122334455667788000f42400007a12000000000041c0700deadbeef7803e36454830f954e2ea7f5c3f40"
     "9003e7999c0"},
    {AuthType::KeyedMd5,
     std::string("\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff", 16),
     "20c403301122334455667788000f42400007a1200000000002180700deadbeefb0b88c7ef528df5fe4c8d63b47091"
     "b88"},
};

TEST(AuthGolden, KeyedTypesEncodeExactlyAsAnIndependentHash) {  // AUTH-05, PKT-04
  for (const Golden& g : kGolden) {
    SCOPED_TRACE(std::string(auth::config_name(g.type)));
    auto r = ring(g.type, {key(7, g.secret)});
    const Bytes got = encode_with(*r, golden_header(), 0xDEADBEEF);
    EXPECT_EQ(got, unhex(g.hex));
    // Length = 24 + Auth Len: 48 for MD5, 52 for SHA1 (PKT-04).
    EXPECT_EQ(got.size(), auth::digest_len(g.type) == 16 ? 48u : 52u);
    EXPECT_EQ(got[3], got.size());
    // The key itself is never sent (AUTH-05).
    const std::string wire(got.begin(), got.end());
    EXPECT_EQ(wire.find(g.secret), std::string::npos);
    // And it verifies.
    EXPECT_EQ(auth::verify(*r, false, 0, decoded(got), got), DropReason::None);
  }
}

TEST(AuthGolden, SimplePasswordCarriesTheKeyAndItsLength) {  // AUTH-03, PKT-04
  auto r = ring(AuthType::SimplePassword, {key(7, "password")});
  const Bytes got = encode_with(*r, golden_header(), 0);
  EXPECT_EQ(got, unhex("20c403231122334455667788000f42400007a12000000000010b0770617373776f7264"));
  EXPECT_EQ(got.size(), 35u);  // 8-byte password -> Length 35
  EXPECT_EQ(got[25], 11u);     // Auth Len = 8 + 3
  EXPECT_EQ(auth::verify(*r, false, 0, decoded(got), got), DropReason::None);
}

TEST(AuthGolden, NoAuthMeansA0AndLength24) {  // PKT-04
  ControlPacket p = golden_header();
  std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
  EXPECT_EQ(auth::encode(p, nullptr, buf), 24u);
  EXPECT_EQ(buf[1] & 0x04, 0);
}

TEST(AuthGolden, RandomPacketsMatchDirectEvp) {  // AUTH-05
  std::uint64_t x = 12345;
  auto next = [&x] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(x >> 32);
  };
  for (AuthType t : {AuthType::KeyedMd5, AuthType::MeticulousKeyedMd5, AuthType::KeyedSha1,
                     AuthType::MeticulousKeyedSha1}) {
    for (int i = 0; i < 200; ++i) {
      std::string secret(1 + next() % auth::max_secret_len(t), '\0');
      for (char& c : secret) c = static_cast<char>(next());
      auto r = ring(t, {key(static_cast<std::uint8_t>(next()), secret)});
      ControlPacket p = golden_header();
      p.state = static_cast<State>(next() % 4);
      p.diag = static_cast<std::uint8_t>(next() % 32);
      p.my_discriminator = next() | 1;
      p.your_discriminator = next();
      p.desired_min_tx_us = next();
      const Bytes got = encode_with(*r, p, next());
      const Bytes want = evp_expected(t, got, secret);
      ASSERT_EQ(Bytes(got.begin() + 32, got.end()), want) << "type " << static_cast<int>(t);
    }
  }
}

// ------------------------------------------------------- real BIRD captures

struct Vector {
  std::string name;
  Bytes bytes;
  int key_id = -1;
};

std::vector<Vector> bird_auth_vectors() {
  std::vector<Vector> out;
  for (const char* name :
       {"bird-auth-md5-down-initial", "bird-auth-md5-up", "bird-auth-meticulous-md5-up",
        "bird-auth-meticulous-sha1-down-timeout", "bird-auth-meticulous-sha1-up-poll",
        "bird-auth-meticulous-sha1-up", "bird-auth-sha1-down-initial", "bird-auth-sha1-init",
        "bird-auth-sha1-up-final", "bird-auth-sha1-up-poll", "bird-auth-sha1-up",
        "bird-auth-simple-down-initial", "bird-auth-simple-up"}) {
    std::ifstream f(std::string(BEACON_SOURCE_DIR) + "/proto/vectors/" + name + ".hex");
    EXPECT_TRUE(f) << name;
    Vector v{name, {}, -1};
    std::string line, hex;
    while (std::getline(f, line)) {
      if (line.rfind("# auth-key: id=", 0) == 0) v.key_id = std::stoi(line.substr(15));
      if (!line.empty() && line[0] != '#') hex += line;
    }
    v.bytes = unhex(hex);
    out.push_back(std::move(v));
  }
  return out;
}

TEST(AuthBirdVectors, EveryCapturedBirdPacketVerifiesAndReSignsExactly) {  // AUTH-05, AUTH-01
  for (const Vector& v : bird_auth_vectors()) {
    SCOPED_TRACE(v.name);
    ASSERT_GE(v.key_id, 0);
    const ControlPacket p = decoded(v.bytes);
    ASSERT_TRUE(p.auth_present);
    auto r = ring(p.auth.type, {key(static_cast<std::uint8_t>(v.key_id), "wirecap-secret")});
    EXPECT_EQ(auth::verify(*r, false, 0, p, v.bytes), DropReason::None);
    // Our signing of the same content gives BIRD's bytes.
    std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
    const std::size_t n = auth::encode(p, r.get(), buf);
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)), v.bytes);
    // A wrong secret of the same length fails.
    auto wrong = ring(p.auth.type, {key(static_cast<std::uint8_t>(v.key_id), "wirecap-secreT")});
    EXPECT_EQ(auth::verify(*wrong, false, 0, p, v.bytes), DropReason::AuthFailed);
  }
}

TEST(AuthBirdVectors, AnyFlippedBitIsRejected) {  // AUTH-08, AUTH-10, AUTH-04, PKT-32
  for (const Vector& v : bird_auth_vectors()) {
    SCOPED_TRACE(v.name);
    const ControlPacket good = decoded(v.bytes);
    auto r = ring(good.auth.type, {key(static_cast<std::uint8_t>(v.key_id), "wirecap-secret")});
    // The digests cover every byte; a simple password protects only itself
    // (§6.7.2: the header is not authenticated).
    const std::size_t from = auth::is_keyed(good.auth.type) ? 0 : wire::kAuthOffset;
    for (std::size_t i = from; i < v.bytes.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        Bytes b = v.bytes;
        b[i] ^= static_cast<std::uint8_t>(1u << bit);
        ControlPacket p;
        if (wire::decode(b, p) != DropReason::None || !p.auth_present) continue;  // PKT-32
        EXPECT_NE(auth::verify(*r, false, 0, p, b), DropReason::None)
            << "byte " << i << " bit " << bit;
      }
    }
  }
}

// -------------------------------------------------------------- rx checks

TEST(AuthVerify, SimplePasswordFailuresByReason) {  // AUTH-04
  auto r = ring(AuthType::SimplePassword, {key(1, "pass"), key(2, "longer-pass")});
  auto pkt = [](std::uint8_t id, std::string_view pw, AuthType t = AuthType::SimplePassword) {
    ControlPacket p = golden_header();
    p.auth_present = true;
    p.auth.type = t;
    p.auth.key_id = id;
    p.auth.password_len = static_cast<std::uint8_t>(pw.size());
    std::copy(pw.begin(), pw.end(), p.auth.password.begin());
    p.auth.len = wire::auth_len_for(p.auth);
    return p;
  };
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(1, "pass"), {}), DropReason::None);
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(2, "longer-pass"), {}), DropReason::None);
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(3, "pass"), {}), DropReason::AuthUnknownKeyId);
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(1, "pasS"), {}), DropReason::AuthFailed);
  // Auth Len != that key's password length + 3 (a prefix of the right one).
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(1, "pas"), {}), DropReason::AuthFailed);
  EXPECT_EQ(auth::verify(*r, false, 0, pkt(2, "pass"), {}), DropReason::AuthFailed);
  // Another type with the same key id.
  ControlPacket md5 = golden_header();
  md5.auth_present = true;
  md5.auth.type = AuthType::KeyedMd5;
  md5.auth.key_id = 1;
  md5.auth.len = 24;
  EXPECT_EQ(auth::verify(*r, false, 0, md5, {}), DropReason::AuthWrongType);
}

TEST(AuthVerify, KeyedTypeMismatchAndUnknownKey) {  // AUTH-08
  const AuthType all[] = {AuthType::KeyedMd5, AuthType::MeticulousKeyedMd5, AuthType::KeyedSha1,
                          AuthType::MeticulousKeyedSha1};
  for (AuthType mine : all) {
    auto r = ring(mine, {key(5, "k")});
    for (AuthType theirs : all) {
      auto other = ring(theirs, {key(5, "k")});
      const Bytes b = encode_with(*other, golden_header(), 100);
      const DropReason want = mine == theirs ? DropReason::None : DropReason::AuthWrongType;
      EXPECT_EQ(auth::verify(*r, false, 0, decoded(b), b), want);
    }
    auto other_id = ring(mine, {key(6, "k")});
    const Bytes b = encode_with(*other_id, golden_header(), 100);
    EXPECT_EQ(auth::verify(*r, false, 0, decoded(b), b), DropReason::AuthUnknownKeyId);
  }
}

TEST(AuthVerify, DigestCoversBytesPastTheAuthSection) {  // AUTH-05: Length bytes are hashed
  // A packet whose Length exceeds 24 + Auth Len (decode() accepts it):
  // the digest covers all Length bytes, and a datagram padded past Length
  // (PKT-31) hashes only the first Length bytes.
  auto r = ring(AuthType::KeyedSha1, {key(1, "s")});
  Bytes b = encode_with(*r, golden_header(), 9);
  Bytes longer = b;
  longer.push_back(0xAB);
  longer[3] = static_cast<std::uint8_t>(longer.size());
  const Bytes digest = evp_expected(AuthType::KeyedSha1, longer, "s");
  std::copy(digest.begin(), digest.end(), longer.begin() + 32);
  EXPECT_EQ(auth::verify(*r, false, 0, decoded(longer), longer), DropReason::None);
  Bytes padded = b;
  padded.resize(200, 0);
  EXPECT_EQ(auth::verify(*r, false, 0, decoded(padded), padded), DropReason::None);
}

// ------------------------------------------------------------ replay window

TEST(AuthWindow, KeyedAndMeticulousBounds) {  // AUTH-09
  for (std::uint32_t r : {0u, 1000u, 0xFFFFFFFEu, 0xFFFFFFFFu}) {
    for (std::uint8_t dm : {1, 3, 255}) {
      const std::uint32_t top = r + 3u * dm;
      // keyed: [R, R + 3 DM]
      EXPECT_TRUE(auth::in_window(false, r, r, dm));
      EXPECT_TRUE(auth::in_window(false, r, top, dm));
      EXPECT_FALSE(auth::in_window(false, r, top + 1, dm));
      EXPECT_FALSE(auth::in_window(false, r, r - 1, dm));
      // meticulous: [R + 1, R + 3 DM]
      EXPECT_FALSE(auth::in_window(true, r, r, dm));
      EXPECT_TRUE(auth::in_window(true, r, r + 1, dm));
      EXPECT_TRUE(auth::in_window(true, r, top, dm));
      EXPECT_FALSE(auth::in_window(true, r, top + 1, dm));
      EXPECT_FALSE(auth::in_window(true, r, r - 1, dm));
      EXPECT_FALSE(auth::in_window(true, r, r + 0x80000000u, dm));
    }
  }
  // Every offset around the window, R = 0xFFFFFFFE (wraps), DM 3.
  const std::uint32_t r = 0xFFFFFFFE;
  for (std::int64_t off = -20; off <= 20; ++off) {
    const auto seq = static_cast<std::uint32_t>(r + static_cast<std::uint32_t>(off));
    EXPECT_EQ(auth::in_window(false, r, seq, 3), off >= 0 && off <= 9) << off;
    EXPECT_EQ(auth::in_window(true, r, seq, 3), off >= 1 && off <= 9) << off;
  }
}

TEST(AuthWindow, VerifyAppliesTheWindowOnlyWhenSeqKnown) {  // AUTH-09
  for (AuthType t : {AuthType::KeyedMd5, AuthType::MeticulousKeyedSha1}) {
    auto r = ring(t, {key(1, "k")});
    const bool met = auth::is_meticulous(t);
    for (std::uint32_t rcv : {50u, 0xFFFFFFFEu}) {
      auto check = [&](std::uint32_t seq, bool known) {
        const Bytes b = encode_with(*r, golden_header(), seq);  // DM 3
        return auth::verify(*r, known, rcv, decoded(b), b);
      };
      EXPECT_EQ(check(rcv, true), met ? DropReason::AuthBadSequence : DropReason::None);
      EXPECT_EQ(check(rcv + 9, true), DropReason::None);
      EXPECT_EQ(check(rcv + 10, true), DropReason::AuthBadSequence);
      EXPECT_EQ(check(rcv - 1, true), DropReason::AuthBadSequence);
      EXPECT_EQ(check(rcv + 12345, false), DropReason::None);  // not known: any
    }
  }
}

// ----------------------------------------------------------------- transmit

TEST(AuthTransmit, MeticulousStepsByOneOnEveryPacketAndWraps) {  // AUTH-07
  for (AuthType t : {AuthType::MeticulousKeyedMd5, AuthType::MeticulousKeyedSha1}) {
    auto r = ring(t, {key(1, "k")});
    auth::TxSeq tx;
    tx.seq = 0xFFFFFFFFu - 500;
    std::uint32_t prev = 0;
    for (int i = 0; i < 1000; ++i) {
      ControlPacket p = golden_header();  // identical packets
      auth::stamp(*r, tx, p);
      if (i > 0) {
        ASSERT_EQ(p.auth.sequence, static_cast<std::uint32_t>(prev + 1)) << i;
      } else {
        EXPECT_EQ(p.auth.sequence, 0xFFFFFFFFu - 500);  // the start value first
      }
      prev = p.auth.sequence;
    }
    EXPECT_EQ(prev, 498u);  // wrapped through 0xFFFFFFFF -> 0
  }
}

TEST(AuthTransmit, KeyedStepsOnContentChangeOnly) {  // AUTH-07
  auto r = ring(AuthType::KeyedSha1, {key(1, "k")});
  auth::TxSeq tx;
  tx.seq = 0xFFFFFFFF;
  ControlPacket p = golden_header();
  auth::stamp(*r, tx, p);
  EXPECT_EQ(p.auth.sequence, 0xFFFFFFFFu);
  for (int i = 0; i < 10; ++i) {
    ControlPacket same = golden_header();
    auth::stamp(*r, tx, same);
    EXPECT_EQ(same.auth.sequence, 0xFFFFFFFFu);
  }
  ControlPacket down = golden_header();
  down.state = State::Down;  // a state change
  auth::stamp(*r, tx, down);
  EXPECT_EQ(down.auth.sequence, 0u);  // +1, wrapped
  ControlPacket poll = down;
  poll.poll = true;  // a flag change
  auth::stamp(*r, tx, poll);
  EXPECT_EQ(poll.auth.sequence, 1u);
  // peek() shows the next value without consuming it.
  ControlPacket q = golden_header();
  auth::peek(*r, tx, q);
  EXPECT_EQ(q.auth.sequence, 2u);
  EXPECT_EQ(tx.seq, 1u);
}

// -------------------------------------------------------------- KeyRing

TEST(AuthKeyRing, RejectsBadKeySets) {  // AUTH-02, AUTH-12
  EXPECT_THROW(ring(AuthType::KeyedSha1, {}), std::invalid_argument);
  EXPECT_THROW(ring(AuthType::None, {key(1, "k")}), std::invalid_argument);
  EXPECT_THROW(ring(AuthType::KeyedSha1, {key(1, "a"), key(1, "b")}), std::invalid_argument);
  EXPECT_THROW(ring(AuthType::KeyedMd5, {key(1, std::string(17, 'x'))}), std::invalid_argument);
  EXPECT_THROW(ring(AuthType::SimplePassword, {key(1, std::string(17, 'x'))}),
               std::invalid_argument);
  EXPECT_THROW(ring(AuthType::KeyedSha1, {key(1, std::string(21, 'x'))}), std::invalid_argument);
  EXPECT_THROW(ring(AuthType::KeyedSha1, {key(1, "")}), std::invalid_argument);
  EXPECT_NO_THROW(ring(AuthType::KeyedSha1, {key(1, std::string(20, 'x'))}));
  EXPECT_NO_THROW(ring(AuthType::KeyedMd5, {key(0, std::string(16, 'x')), key(255, "y")}));
  auto r = ring(AuthType::KeyedSha1, {key(9, "first"), key(3, "second")});
  EXPECT_EQ(r->signing().id, 9);  // the first key signs
  ASSERT_NE(r->find(3), nullptr);
  EXPECT_EQ(r->find(4), nullptr);
  EXPECT_TRUE(r->same_as(*ring(AuthType::KeyedSha1, {key(9, "first"), key(3, "second")})));
  EXPECT_FALSE(r->same_as(*ring(AuthType::KeyedSha1, {key(3, "second"), key(9, "first")})));
  EXPECT_FALSE(r->same_as(*ring(AuthType::KeyedSha1, {key(9, "firsT"), key(3, "second")})));
  EXPECT_FALSE(
      r->same_as(*ring(AuthType::MeticulousKeyedSha1, {key(9, "first"), key(3, "second")})));
}

// Counting stand-ins around libcrypto: prove the compare goes through the
// constant-time primitive and key buffers are wiped (AUTH-14).
int g_equal_calls = 0;
int g_cleansed_secret = 0;
bool counting_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  ++g_equal_calls;
  return crypto::libcrypto_ops().equal(a, b);
}
void counting_cleanse(std::span<std::uint8_t> buf) {
  if (buf.size() == auth::kMaxSecretLen && buf[0] == 'S') ++g_cleansed_secret;
  crypto::libcrypto_ops().cleanse(buf);
  for (std::uint8_t c : buf) EXPECT_EQ(c, 0);
}

TEST(AuthKeyRing, ComparesInConstantTimeAndWipesKeys) {  // AUTH-14
  static const auth::CryptoOps ops{crypto::libcrypto_ops().digest, &counting_equal,
                                   &counting_cleanse};
  g_equal_calls = 0;
  g_cleansed_secret = 0;
  {
    auto r = std::make_shared<const KeyRing>(
        AuthType::KeyedSha1, std::vector<Key>{key(1, "Secret1"), key(2, "Secret2")}, ops);
    const Bytes b = encode_with(*r, golden_header(), 1);
    EXPECT_EQ(auth::verify(*r, false, 0, decoded(b), b), DropReason::None);
    EXPECT_EQ(g_equal_calls, 1);
    auto pw = std::make_shared<const KeyRing>(AuthType::SimplePassword,
                                              std::vector<Key>{key(1, "Secret")}, ops);
    const Bytes c = encode_with(*pw, golden_header(), 0);
    EXPECT_EQ(auth::verify(*pw, false, 0, decoded(c), c), DropReason::None);
    EXPECT_EQ(g_equal_calls, 2);
    EXPECT_EQ(g_cleansed_secret, 0);
  }
  EXPECT_EQ(g_cleansed_secret, 3);  // every key of both rings, on destruction
}

TEST(AuthNames, ConfigSpellingRoundTrips) {
  for (int i = 0; i <= 5; ++i) {
    const auto t = static_cast<AuthType>(i);
    EXPECT_EQ(auth::from_config_name(auth::config_name(t)), t);
  }
  EXPECT_EQ(auth::from_config_name("keyed sha1"), std::nullopt);
  EXPECT_EQ(wire::drop_reason_name(DropReason::AuthWrongType), "auth_wrong_type");
  EXPECT_EQ(wire::drop_reason_name(DropReason::AuthUnknownKeyId), "auth_unknown_key_id");
  EXPECT_EQ(wire::drop_reason_name(DropReason::AuthBadSequence), "auth_bad_sequence");
  EXPECT_EQ(wire::drop_reason_name(DropReason::AuthFailed), "auth_failed");
}

// ================================================================ sessions

// A scripted peer that signs what it sends with its own ring and sequence.
struct AuthPeer {
  std::shared_ptr<const KeyRing> keys;
  auth::TxSeq tx;
  Bytes last;

  // Encodes `pp` signed (or with `bad_digest`, with one digest byte flipped).
  std::pair<ControlPacket, Bytes> make(const PeerPacket& pp, bool bad_digest = false) {
    ControlPacket p = pp.build();
    auth::stamp(*keys, tx, p);
    std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
    const std::size_t n = auth::encode(p, keys.get(), buf);
    Bytes b(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    if (bad_digest && auth::is_keyed(keys->type())) b[40] ^= 1;
    if (bad_digest && !auth::is_keyed(keys->type())) b[27] ^= 1;
    ControlPacket d;
    EXPECT_EQ(wire::decode(b, d), DropReason::None);
    last = b;
    return {d, b};
  }
};

struct AuthDriver {
  SessionDriver d;
  AuthPeer peer;

  AuthDriver(AuthType t, std::uint64_t seed = 42, std::vector<Key> mine = {},
             std::vector<Key> theirs = {})
      : d(test::params(ms(50), ms(50)), seed) {
    if (mine.empty()) mine = {key(1, "shared-key")};
    if (theirs.empty()) theirs = mine;
    d.s().set_auth(ring(t, std::move(mine)));
    peer.keys = ring(t, std::move(theirs));
    peer.tx.seq = 1000;
  }
  Effects rx(const PeerPacket& pp, bool bad = false) {
    auto [p, b] = peer.make(pp, bad);
    return d.record(d.s().receive(p, d.now(), b));
  }
  Effects rx_bytes(const Bytes& b) {
    ControlPacket p;
    EXPECT_EQ(wire::decode(b, p), DropReason::None);
    return d.record(d.s().receive(p, d.now(), b));
  }
  void bring_up() {
    PeerPacket base;
    base.state = State::Down;
    rx(base);
    base.state = State::Up;
    rx(base);
    if (d.s().poll_active()) {
      base.final = true;
      rx(base);
      base.final = false;
      rx(base);
    }
    ASSERT_EQ(d.s().state(), State::Up);
  }
  std::uint64_t drops(DropReason r) const {
    return const_cast<AuthDriver*>(this)->d.s().counters().drops[static_cast<std::size_t>(r)];
  }
};

constexpr AuthType kAllTypes[] = {AuthType::SimplePassword, AuthType::KeyedMd5,
                                  AuthType::MeticulousKeyedMd5, AuthType::KeyedSha1,
                                  AuthType::MeticulousKeyedSha1};

TEST(AuthSession, EveryTypeComesUpAndSignsWhatItSends) {  // AUTH-01, AUTH-05, PKT-04, PKT-23
  for (AuthType t : kAllTypes) {
    SCOPED_TRACE(std::string(auth::config_name(t)));
    AuthDriver a(t);
    a.bring_up();
    EXPECT_EQ(a.d.s().counters().rx_dropped, 0u);
    ASSERT_FALSE(a.d.sent().empty());
    for (const auto& sp : a.d.sent()) {
      EXPECT_TRUE(sp.pkt.auth_present);  // PKT-04: A = 1 on every packet
      EXPECT_EQ(sp.pkt.auth.type, t);
      EXPECT_EQ(sp.pkt.auth.key_id, 1);
      // The peer (same keys) accepts the encoded bytes.
      std::array<std::uint8_t, wire::kMaxPacketLength> buf{};
      const std::size_t n = auth::encode(sp.pkt, a.d.s().auth_keys(), buf);
      ASSERT_GT(n, 0u);
      ControlPacket back;
      ASSERT_EQ(wire::decode(std::span(buf).first(n), back), DropReason::None);
      EXPECT_EQ(auth::verify(*a.peer.keys, false, 0, back, std::span(buf).first(n)),
                DropReason::None);
    }
  }
}

TEST(AuthSession, UnexpectedAndMissingAuth) {  // PKT-21, PKT-22, AUTH-04, AUTH-08
  SessionDriver plain;
  AuthPeer signer{ring(AuthType::KeyedSha1, {key(1, "k")}), {}, {}};
  auto [p, b] = signer.make(test::peer(State::Down));
  EXPECT_EQ(plain.s().receive(p, plain.now(), b).drop, DropReason::AuthPresentNotConfigured);
  for (AuthType t : kAllTypes) {
    AuthDriver a(t);
    EXPECT_EQ(a.d.rx(test::peer(State::Down)).drop, DropReason::AuthMissing);
    EXPECT_EQ(a.drops(DropReason::AuthMissing), 1u);
    EXPECT_EQ(a.d.s().state(), State::Down);
  }
}

TEST(AuthSession, FailuresAreCountedByReasonAndChangeNothing) {  // AUTH-14, PKT-11, PKT-23
  AuthDriver a(AuthType::MeticulousKeyedSha1);
  a.bring_up();
  const auto before = a.d.s().counters().rx_packets;
  const std::uint32_t rcv = a.d.s().rcv_auth_seq();
  EXPECT_EQ(a.rx(test::peer(State::Up), true).drop, DropReason::AuthFailed);
  // Wrong type: a peer signing keyed (not meticulous) SHA1 with the same key.
  AuthPeer keyed{ring(AuthType::KeyedSha1, {key(1, "shared-key")}), {}, {}};
  keyed.tx.seq = rcv + 1;
  auto [p1, b1] = keyed.make(test::peer(State::Up));
  EXPECT_EQ(a.d.s().receive(p1, a.d.now(), b1).drop, DropReason::AuthWrongType);
  // Unknown key id.
  AuthPeer other{ring(AuthType::MeticulousKeyedSha1, {key(2, "shared-key")}), {}, {}};
  other.tx.seq = rcv + 1;
  auto [p2, b2] = other.make(test::peer(State::Up));
  EXPECT_EQ(a.d.s().receive(p2, a.d.now(), b2).drop, DropReason::AuthUnknownKeyId);
  // Replay of the last accepted packet (meticulous: Seq = R is out).
  EXPECT_EQ(a.rx_bytes(a.peer.last).drop, DropReason::AuthFailed);  // the flipped one
  a.peer.tx.seq = rcv - 1;                                          // behind the window
  a.peer.tx.sent_any = false;
  EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::AuthBadSequence);
  EXPECT_EQ(a.drops(DropReason::AuthFailed), 2u);
  EXPECT_EQ(a.drops(DropReason::AuthWrongType), 1u);
  EXPECT_EQ(a.drops(DropReason::AuthUnknownKeyId), 1u);
  EXPECT_EQ(a.drops(DropReason::AuthBadSequence), 1u);
  EXPECT_EQ(a.d.s().counters().rx_dropped, 5u);
  EXPECT_EQ(a.d.s().counters().rx_packets, before);
  EXPECT_EQ(a.d.s().rcv_auth_seq(), rcv);  // sequence state untouched
}

TEST(AuthSession, ReplayedPacketIsDroppedByMeticulousAcceptedByKeyed) {  // AUTH-09
  for (AuthType t : {AuthType::MeticulousKeyedMd5, AuthType::KeyedMd5}) {
    AuthDriver a(t);
    a.bring_up();
    const Bytes replay = a.peer.last;
    const DropReason r = a.rx_bytes(replay).drop;
    EXPECT_EQ(r, auth::is_meticulous(t) ? DropReason::AuthBadSequence : DropReason::None);
  }
}

TEST(AuthSession, OutOfWindowSequenceKeepsItDown) {  // AUTH-09
  AuthDriver a(AuthType::KeyedSha1);
  a.rx(test::peer(State::Down));
  ASSERT_EQ(a.d.s().state(), State::Init);
  // A jump of more than 3 x Detect Mult ahead.
  a.peer.tx.seq += 3 * 3 + 1;
  a.peer.tx.sent_any = false;
  EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::AuthBadSequence);
  EXPECT_EQ(a.d.s().state(), State::Init);
  // Exactly 3 x Detect Mult ahead is still inside.
  a.peer.tx.seq -= 1;
  a.peer.tx.sent_any = false;
  EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::None);
  EXPECT_EQ(a.d.s().state(), State::Up);
}

TEST(AuthSession, UnverifiedFirstPacketSetsNoSequenceState) {  // AUTH-10, errata 7082/7083
  for (AuthType t : {AuthType::MeticulousKeyedSha1, AuthType::MeticulousKeyedMd5}) {
    AuthDriver a(t);
    ASSERT_FALSE(a.d.s().auth_seq_known());
    a.peer.tx.seq = 5000;
    EXPECT_EQ(a.rx(test::peer(State::Down), true).drop, DropReason::AuthFailed);  // bad, Seq X
    EXPECT_FALSE(a.d.s().auth_seq_known());
    a.peer.tx.seq = 4999;  // good, Seq X - 1: accepted (X was never recorded)
    a.peer.tx.sent_any = false;
    EXPECT_EQ(a.rx(test::peer(State::Down)).drop, DropReason::None);
    EXPECT_TRUE(a.d.s().auth_seq_known());
    EXPECT_EQ(a.d.s().rcv_auth_seq(), 4999u);
  }
}

TEST(AuthSession, SeqKnownResetsAfterTwiceTheDetectionTime) {  // AUTH-11
  AuthDriver a(AuthType::MeticulousKeyedSha1);
  a.bring_up();
  const Duration dt = a.d.s().detection_time();
  ASSERT_GT(dt, Duration{0});
  // The peer restarts with a new random sequence number far behind.
  a.peer.tx.seq -= 100'000;
  a.peer.tx.sent_any = false;
  a.d.run_for(dt * 2 - ms(1));
  EXPECT_EQ(a.rx(test::peer(State::Down)).drop, DropReason::AuthBadSequence);
  // Its rejected packets do not keep the old window alive.
  a.d.run_for(ms(1));
  EXPECT_EQ(a.rx(test::peer(State::Down)).drop, DropReason::None);
  EXPECT_EQ(a.d.s().rcv_auth_seq(), a.peer.tx.seq);
}

TEST(AuthSession, XmitSeqStartsRandomAndMeticulousStepsPerPacket) {  // AUTH-06, AUTH-07
  AuthDriver a(AuthType::MeticulousKeyedSha1, 1);
  AuthDriver b(AuthType::MeticulousKeyedSha1, 2);
  a.d.run_for(ms(10));
  b.d.run_for(ms(10));
  ASSERT_FALSE(a.d.sent().empty());
  ASSERT_FALSE(b.d.sent().empty());
  EXPECT_NE(a.d.sent().front().pkt.auth.sequence, b.d.sent().front().pkt.auth.sequence);
  a.bring_up();
  for (int i = 0; i < 50; ++i) {
    a.d.run_for(ms(40));
    a.rx(test::peer(State::Up));
  }
  const auto& sent = a.d.sent();
  ASSERT_GT(sent.size(), 20u);
  for (std::size_t i = 1; i < sent.size(); ++i) {
    EXPECT_EQ(sent[i].pkt.auth.sequence,
              static_cast<std::uint32_t>(sent[i - 1].pkt.auth.sequence + 1))
        << i;
  }
}

TEST(AuthSession, FinalRepliesAdvanceMeticulousSequence) {  // AUTH-07
  AuthDriver a(AuthType::MeticulousKeyedMd5);
  a.bring_up();
  const std::size_t n = a.d.sent().size();
  PeerPacket poll = test::peer(State::Up);
  poll.poll = true;
  a.rx(poll);
  ASSERT_EQ(a.d.sent().size(), n + 1);
  EXPECT_TRUE(a.d.sent().back().pkt.final);
  EXPECT_EQ(a.d.sent().back().pkt.auth.sequence,
            static_cast<std::uint32_t>(a.d.sent()[n - 1].pkt.auth.sequence + 1));
}

TEST(AuthSession, PeerChangingKeyIdMidSessionDoesNotFlap) {  // AUTH-12
  AuthDriver a(AuthType::KeyedSha1, 42, {key(1, "old-key"), key(2, "new-key")},
               {key(1, "old-key"), key(2, "new-key")});
  a.bring_up();
  for (int i = 0; i < 10; ++i) {
    a.d.run_for(ms(40));
    if (i == 5) {
      // The peer moves its signing key to id 2.
      auto tx = a.peer.tx;
      a.peer.keys = ring(AuthType::KeyedSha1, {key(2, "new-key"), key(1, "old-key")});
      a.peer.tx = tx;
    }
    EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::None) << i;
  }
  EXPECT_EQ(a.d.s().state(), State::Up);
  EXPECT_EQ(a.d.s().counters().down_count, 0u);
  // We keep signing with our first key.
  EXPECT_EQ(a.d.sent().back().pkt.auth.key_id, 1);
}

TEST(AuthSession, HitlessKeySwapKeepsSequenceStateTypeChangeResetsIt) {  // AUTH-12
  AuthDriver a(AuthType::MeticulousKeyedSha1);
  a.bring_up();
  const std::uint32_t rcv = a.d.s().rcv_auth_seq();
  a.d.run_for(ms(40));
  const std::uint32_t xmit = a.d.sent().back().pkt.auth.sequence;
  // Rotation step: both keys, the new one signs.
  a.d.s().set_auth(ring(AuthType::MeticulousKeyedSha1, {key(2, "next-key"), key(1, "shared-key")}));
  EXPECT_TRUE(a.d.s().auth_seq_known());
  EXPECT_EQ(a.d.s().rcv_auth_seq(), rcv);
  a.d.run_for(ms(40));
  EXPECT_EQ(a.d.sent().back().pkt.auth.key_id, 2);
  EXPECT_GT(a.d.sent().back().pkt.auth.sequence - xmit, 0u);
  EXPECT_LT(a.d.sent().back().pkt.auth.sequence - xmit, 10u);
  EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::None);  // old key id still verifies
  EXPECT_EQ(a.d.s().state(), State::Up);
  // A different type starts the receive side afresh.
  a.d.s().set_auth(ring(AuthType::KeyedMd5, {key(1, "shared-key")}));
  EXPECT_FALSE(a.d.s().auth_seq_known());
  // And none removes it: A = 0 on the next packet.
  a.d.s().set_auth(nullptr);
  a.d.run_for(ms(60));
  EXPECT_FALSE(a.d.sent().back().pkt.auth_present);  // PKT-04
}

TEST(AuthSession, ReceivedPacketsNeverToggleTheMode) {  // AUTH-13
  AuthDriver a(AuthType::KeyedSha1);
  a.bring_up();
  for (int i = 0; i < 20; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(a.d.rx(test::peer(State::Up)).drop, DropReason::AuthMissing);
    } else {
      EXPECT_EQ(a.rx(test::peer(State::Up)).drop, DropReason::None);
    }
    EXPECT_EQ(a.d.s().auth_type(), AuthType::KeyedSha1);
  }
  SessionDriver plain;
  AuthPeer signer{ring(AuthType::KeyedSha1, {key(1, "k")}), {}, {}};
  for (int i = 0; i < 10; ++i) {
    auto [p, b] = signer.make(test::peer(State::Down));
    EXPECT_EQ(plain.s().receive(p, plain.now(), b).drop, DropReason::AuthPresentNotConfigured);
    EXPECT_EQ(plain.rx(test::peer(State::Down)).drop, DropReason::None);
    EXPECT_EQ(plain.s().auth_type(), AuthType::None);
  }
}

TEST(AuthSession, BadDigestsDoNotRefreshDetection) {  // PKT-30
  AuthDriver a(AuthType::KeyedSha1);
  a.bring_up();
  const Duration dt = a.d.s().detection_time();
  for (int i = 0; i < 20; ++i) {
    a.d.run_for(dt / 4);
    a.rx(test::peer(State::Up), true);
  }
  EXPECT_EQ(a.d.s().state(), State::Down);
  EXPECT_EQ(a.d.s().local_diag(), 1);  // detection time expired
  EXPECT_GE(a.drops(DropReason::AuthFailed), 3u);
}

TEST(AuthSession, WrongSecretKeepsItDown) {  // AUTH-10
  for (AuthType t : kAllTypes) {
    AuthDriver a(t, 42, {key(1, "right")}, {key(1, "wrong")});
    a.rx(test::peer(State::Down));
    a.rx(test::peer(State::Init));
    EXPECT_EQ(a.d.s().state(), State::Down);
    EXPECT_EQ(a.drops(DropReason::AuthFailed), 2u);
  }
}

}  // namespace
}  // namespace beacon::core
