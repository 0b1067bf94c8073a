// BFD authentication, RFC 5880 §6.7 (see auth.hpp for the contract).
#include "beacon/core/auth.hpp"

#include <algorithm>
#include <stdexcept>

namespace beacon::core::auth {
namespace {

using wire::AuthType;
using wire::DropReason;

constexpr std::size_t kMaxPasswordLen = 16;
// Length is one byte, so no packet a digest covers is longer than this.
constexpr std::size_t kMaxLength = 255;

DigestAlgo algo_of(AuthType t) {
  return (t == AuthType::KeyedMd5 || t == AuthType::MeticulousKeyedMd5) ? DigestAlgo::Md5
                                                                        : DigestAlgo::Sha1;
}

// The packet as it matters for the keyed sequence rule: everything but the
// auth section and the computed Length.
wire::ControlPacket content(wire::ControlPacket p) {
  p.auth = wire::AuthSection{};
  p.length = 0;
  return p;
}

// Key written zero-padded into the digest field, digest over the whole
// packet (§6.7.3, §6.7.4). `work` holds the packet; on return the digest
// field holds the key (the caller overwrites or discards it).
bool keyed_digest(const KeyRing& ring, const Key& key, std::span<std::uint8_t> work,
                  std::span<std::uint8_t> out) {
  const std::size_t n = digest_len(ring.type());
  if (work.size() < wire::kAuthDigestOffset + n || out.size() != n) return false;
  auto field = work.subspan(wire::kAuthDigestOffset, n);
  std::fill(field.begin(), field.end(), std::uint8_t{0});
  std::copy_n(key.secret.begin(), std::min<std::size_t>(key.len, n), field.begin());
  return ring.ops().digest(algo_of(ring.type()), work, out);
}

}  // namespace

bool is_keyed(AuthType t) {
  return t == AuthType::KeyedMd5 || t == AuthType::MeticulousKeyedMd5 || t == AuthType::KeyedSha1 ||
         t == AuthType::MeticulousKeyedSha1;
}

bool is_meticulous(AuthType t) {
  return t == AuthType::MeticulousKeyedMd5 || t == AuthType::MeticulousKeyedSha1;
}

std::size_t max_secret_len(AuthType t) {
  switch (t) {
    case AuthType::SimplePassword:
      return kMaxPasswordLen;  // §4.2: 1..16 bytes
    case AuthType::KeyedMd5:
    case AuthType::MeticulousKeyedMd5:
      return kMd5Len;  // §4.3: the key is padded to 16 bytes
    case AuthType::KeyedSha1:
    case AuthType::MeticulousKeyedSha1:
      return kSha1Len;  // §4.4: the key is padded to 20 bytes
    case AuthType::None:
      break;
  }
  return 0;
}

std::size_t digest_len(AuthType t) {
  if (!is_keyed(t)) return 0;
  return algo_of(t) == DigestAlgo::Md5 ? kMd5Len : kSha1Len;
}

std::string_view config_name(AuthType t) {
  // The config spells Simple Password "simple"; every other name is the wire name.
  if (t == AuthType::SimplePassword) return "simple";
  const std::string_view wire_name = wire::auth_type_name(t);
  return wire_name == "auth-type-unknown" ? "unknown" : wire_name;
}

std::optional<AuthType> from_config_name(std::string_view name) {
  for (int i = 0; i <= 5; ++i) {
    const auto t = static_cast<AuthType>(i);
    if (config_name(t) == name) return t;
  }
  return std::nullopt;
}

// ------------------------------------------------------------------ KeyRing

KeyRing::KeyRing(AuthType type, std::vector<Key> keys, const CryptoOps& ops)
    : type_(type), keys_(std::move(keys)), ops_(ops) {
  index_.fill(-1);
  auto fail = [this](const char* why) {
    for (Key& k : keys_) ops_.cleanse(k.secret);
    throw std::invalid_argument(why);
  };
  if (ops_.digest == nullptr || ops_.equal == nullptr || ops_.cleanse == nullptr) {
    throw std::invalid_argument("crypto operations missing");
  }
  if (max_secret_len(type_) == 0) fail("not an authentication type");
  if (keys_.empty()) fail("no key");
  if (keys_.size() > index_.size()) fail("more than 256 keys");
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const Key& k = keys_[i];
    if (k.len == 0 || k.len > max_secret_len(type_)) fail("secret length out of range");
    if (index_[k.id] >= 0) fail("duplicate key id");
    index_[k.id] = static_cast<std::int16_t>(i);
  }
}

KeyRing::~KeyRing() {
  for (Key& k : keys_) ops_.cleanse(k.secret);  // AUTH-14
}

const Key* KeyRing::find(std::uint8_t id) const {
  const std::int16_t i = index_[id];
  return i < 0 ? nullptr : &keys_[static_cast<std::size_t>(i)];
}

bool KeyRing::same_as(const KeyRing& other) const {
  if (type_ != other.type_ || keys_.size() != other.keys_.size()) return false;
  for (std::size_t i = 0; i < keys_.size(); ++i) {
    const Key& a = keys_[i];
    const Key& b = other.keys_[i];
    if (a.id != b.id || a.len != b.len) return false;
    if (!ops_.equal(std::span(a.secret).first(a.len), std::span(b.secret).first(b.len))) {
      return false;
    }
  }
  return true;
}

// ----------------------------------------------------------------- transmit

void peek(const KeyRing& ring, const TxSeq& tx, wire::ControlPacket& p) {
  const Key& k = ring.signing();
  p.auth_present = true;
  p.auth = wire::AuthSection{};
  p.auth.type = ring.type();
  p.auth.key_id = k.id;
  if (ring.type() == AuthType::SimplePassword) {
    // §6.7.2 (AUTH-03): the password of the current key in every packet.
    p.auth.password_len = k.len;
    std::copy_n(k.secret.begin(), k.len, p.auth.password.begin());
  } else {
    std::uint32_t seq = tx.seq;
    if (tx.sent_any && (is_meticulous(ring.type()) || !(content(p) == tx.last))) {
      seq += 1;  // mod 2^32 by unsigned arithmetic
    }
    p.auth.sequence = seq;
  }
  p.auth.len = wire::auth_len_for(p.auth);
}

void stamp(const KeyRing& ring, TxSeq& tx, wire::ControlPacket& p) {
  peek(ring, tx, p);
  if (!is_keyed(ring.type())) return;
  tx.seq = p.auth.sequence;
  tx.sent_any = true;
  tx.last = content(p);
}

bool sign(const KeyRing& ring, std::span<std::uint8_t> packet) {
  if (!is_keyed(ring.type())) return true;
  const std::size_t n = digest_len(ring.type());
  if (packet.size() < wire::kAuthDigestOffset + n ||
      packet[wire::kAuthOffset] != static_cast<std::uint8_t>(ring.type())) {
    return false;
  }
  const Key* k = ring.find(packet[wire::kAuthKeyIdOffset]);
  if (k == nullptr) return false;
  std::array<std::uint8_t, kSha1Len> out{};
  const bool ok = keyed_digest(ring, *k, packet, std::span(out).first(n));
  if (ok) {
    std::copy_n(out.begin(), n, packet.begin() + wire::kAuthDigestOffset);
  } else {
    // Never let a packet with the key in place leave.
    ring.ops().cleanse(packet.subspan(wire::kAuthDigestOffset, n));
  }
  return ok;
}

std::size_t encode(const wire::ControlPacket& p, const KeyRing* ring, std::span<std::uint8_t> out) {
  const std::size_t n = wire::encode(p, out);
  if (n == 0 || ring == nullptr || !p.auth_present) return n;
  return sign(*ring, out.first(n)) ? n : 0;
}

// ------------------------------------------------------------------ receive

bool in_window(bool meticulous, std::uint32_t rcv, std::uint32_t seq, std::uint8_t detect_mult) {
  // Distance above rcv in the circular 32-bit space (AUTH-09).
  const std::uint32_t ahead = seq - rcv;
  const std::uint32_t span = 3U * detect_mult;
  return (meticulous ? ahead >= 1 : true) && ahead <= span;
}

DropReason verify(const KeyRing& ring, bool seq_known, std::uint32_t rcv_seq,
                  const wire::ControlPacket& pkt, std::span<const std::uint8_t> raw) {
  const wire::AuthSection& a = pkt.auth;
  const CryptoOps& ops = ring.ops();
  // AUTH-04 / AUTH-08: the session's type, a configured Key ID.
  if (a.type != ring.type()) return DropReason::AuthWrongType;
  const Key* k = ring.find(a.key_id);
  if (k == nullptr) return DropReason::AuthUnknownKeyId;

  if (ring.type() == AuthType::SimplePassword) {
    // §6.7.2: Auth Len must be that key's password length + 3, and the
    // password must match (compared in constant time, AUTH-14).
    if (a.len != k->len + 3 || a.password_len != k->len) return DropReason::AuthFailed;
    return ops.equal(std::span(a.password).first(k->len), std::span(k->secret).first(k->len))
               ? DropReason::None
               : DropReason::AuthFailed;
  }

  const std::size_t n = digest_len(ring.type());
  // decode() already enforced the exact Auth Len (PKT-32); kept as a guard
  // for callers that built the packet as a struct.
  if (a.len != wire::auth_len_for(a)) return DropReason::AuthFailed;
  // AUTH-09: replay window, only once a verified packet set RcvAuthSeq.
  if (seq_known && !in_window(is_meticulous(ring.type()), rcv_seq, a.sequence, pkt.detect_mult)) {
    return DropReason::AuthBadSequence;
  }

  // AUTH-10: key in the digest field, digest over the packet, compare.
  std::array<std::uint8_t, kMaxLength> work{};
  std::size_t len = 0;
  if (raw.empty()) {
    len = wire::encode(pkt, work);
  } else if (pkt.length <= raw.size()) {
    len = pkt.length;
    std::copy_n(raw.begin(), len, work.begin());
  }
  if (len < wire::kAuthDigestOffset + n) return DropReason::AuthFailed;
  std::array<std::uint8_t, kSha1Len> received{};
  std::copy_n(work.begin() + wire::kAuthDigestOffset, n, received.begin());
  std::array<std::uint8_t, kSha1Len> computed{};
  const bool ok =
      keyed_digest(ring, *k, std::span(work).first(len), std::span(computed).first(n)) &&
      ops.equal(std::span(computed).first(n), std::span(received).first(n));
  ops.cleanse(work);  // it held the key
  ops.cleanse(computed);
  return ok ? DropReason::None : DropReason::AuthFailed;
}

}  // namespace beacon::core::auth
