// BFD authentication (RFC 5880 §4.2-4.4, §6.7; errata 2530, 7082, 7083).
//
// Pure: no I/O, no clock, no crypto library. The digest, the constant-time
// compare and the wipe of key material are injected (CryptoOps), so core
// links nothing but the standard library; src/crypto provides the libcrypto
// implementation the daemon and the tests use.
//
// What is here: the key ring (which keys a session accepts, which one signs),
// the transmit side (filling the auth section, the sequence number rules,
// signing the encoded bytes) and the receive side (the §6.7.2-6.7.4 checks in
// the RFC's order, the replay window). The per-session state (bfd.AuthSeqKnown,
// bfd.RcvAuthSeq, bfd.XmitAuthSeq) lives in core::Session, which calls these.
//
// Keyed MD5/SHA1 as the RFC specifies them: the key, zero-padded to the
// digest length, is written into the digest field and the digest is taken
// over the whole packet (Length bytes); not HMAC.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "beacon/core/wire.hpp"

namespace beacon::core::auth {

enum class DigestAlgo : std::uint8_t { Md5, Sha1 };

inline constexpr std::size_t kMd5Len = 16;
inline constexpr std::size_t kSha1Len = 20;
inline constexpr std::size_t kMaxSecretLen = 20;

// Cryptography the core cannot provide by itself. Every member must be set.
struct CryptoOps {
  // Digest of `data` into `out` (kMd5Len or kSha1Len bytes, out.size() is
  // exactly that). False on failure (the packet is then not sent / dropped).
  bool (*digest)(DigestAlgo algo, std::span<const std::uint8_t> data,
                 std::span<std::uint8_t> out) = nullptr;
  // a == b in time independent of the contents (sizes are equal).
  bool (*equal)(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) = nullptr;
  // Overwrites `buf` with zeros in a way the compiler cannot elide.
  void (*cleanse)(std::span<std::uint8_t> buf) = nullptr;
};

// One configured key. For Simple Password the secret is the password.
struct Key {
  std::uint8_t id = 0;
  std::uint8_t len = 0;  // 1..max_secret_len(type)
  std::array<std::uint8_t, kMaxSecretLen> secret{};
};

bool is_keyed(wire::AuthType t);       // types 2..5 (sequence numbers and digests)
bool is_meticulous(wire::AuthType t);  // types 3 and 5
// Secret length limits (AUTH-02): password 1..16, MD5 key 1..16, SHA1 key
// 1..20; 0 for None or a type outside 1..5.
std::size_t max_secret_len(wire::AuthType t);
// Digest bytes of the type: 16 (MD5), 20 (SHA1), 0 otherwise.
std::size_t digest_len(wire::AuthType t);
// The configuration's spelling: "none", "simple", "keyed-md5",
// "meticulous-keyed-md5", "keyed-sha1", "meticulous-keyed-sha1".
std::string_view config_name(wire::AuthType t);
std::optional<wire::AuthType> from_config_name(std::string_view name);

// The keys of one session: every key verifies (chosen by the received Key
// ID, AUTH-12), the first one signs. Immutable once built; shared by the
// sessions configured with the same key file. Wipes its secrets when
// destroyed (AUTH-14).
class KeyRing {
 public:
  // Throws std::invalid_argument if `type` is None or outside 1..5, `keys`
  // is empty, an id repeats or a secret length is outside 1..max_secret_len.
  // `ops` must outlive the ring.
  KeyRing(wire::AuthType type, std::vector<Key> keys, const CryptoOps& ops);
  ~KeyRing();
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;

  wire::AuthType type() const { return type_; }
  const Key& signing() const { return keys_.front(); }
  const Key* find(std::uint8_t id) const;
  std::size_t size() const { return keys_.size(); }
  const CryptoOps& ops() const { return ops_; }
  // Same type and the same keys in the same order (a reload that changes
  // nothing about authentication).
  bool same_as(const KeyRing& other) const;

 private:
  wire::AuthType type_;
  std::vector<Key> keys_;
  std::array<std::int16_t, 256> index_{};  // key id -> position in keys_, -1: none
  const CryptoOps& ops_;
};

// ----------------------------------------------------------------- transmit

// bfd.XmitAuthSeq and what the keyed rule needs to know about the last packet.
struct TxSeq {
  std::uint32_t seq = 0;  // bfd.XmitAuthSeq: the value the next packet carries
  bool sent_any = false;
  wire::ControlPacket last{};  // last packet stamped, auth section cleared
};

// Writes the auth section of `p` with the ring's signing key (A = 1, type,
// Key ID, password or sequence number; the digest is computed by sign()
// after encoding). The sequence number follows AUTH-07:
//  - meticulous: +1 (mod 2^32) on every packet, Finals included;
//  - keyed: +1 when the packet differs from the previous one in anything but
//    the auth section (a state, diag, flag or timer change), else unchanged.
// The first packet carries the random start value (AUTH-06).
void stamp(const KeyRing& ring, TxSeq& tx, wire::ControlPacket& p);
// The auth section stamp() would write next, without advancing `tx`.
void peek(const KeyRing& ring, const TxSeq& tx, wire::ControlPacket& p);

// For the MD5/SHA1 types: `packet` holds the encoded packet (exactly Length
// bytes, Key ID as stamped); writes the key zero-padded into the digest
// field, hashes the whole packet and writes the digest over it (AUTH-05).
// A no-op for Simple Password. False if the digest failed or `packet` is not
// a packet of the ring's type.
bool sign(const KeyRing& ring, std::span<std::uint8_t> packet);

// wire::encode() then sign() when `ring` is set and the packet carries auth.
// 0 if encoding or signing failed.
std::size_t encode(const wire::ControlPacket& p, const KeyRing* ring, std::span<std::uint8_t> out);

// ------------------------------------------------------------------ receive

// True when `seq` lies in the replay window above `rcv` (AUTH-09), modulo
// 2^32: keyed [rcv, rcv + 3 x detect_mult], meticulous [rcv + 1, rcv + 3 x
// detect_mult]. `detect_mult` is the received packet's Detect Mult.
bool in_window(bool meticulous, std::uint32_t rcv, std::uint32_t seq, std::uint8_t detect_mult);

// The §6.7.2-6.7.4 receive checks of one packet that carries an auth section
// (steps 10 and 11 of §6.8.6 are the session's), in the RFC's order:
//  - Auth Type is not the session's                       -> AuthWrongType
//  - Key ID is not configured                             -> AuthUnknownKeyId
//  - Simple Password: Auth Len != that key's length + 3, or the password
//    differs                                              -> AuthFailed
//  - MD5/SHA1: bfd.AuthSeqKnown and Seq outside the window -> AuthBadSequence
//  - MD5/SHA1: the digest does not verify                  -> AuthFailed
// `raw` is the received packet (at least Length bytes; only the first
// pkt.length are used); empty: re-encoded from `pkt` (for callers that built
// the packet as a struct). Changes nothing: the caller updates
// bfd.RcvAuthSeq / bfd.AuthSeqKnown only when this returns None (errata
// 7082/7083).
wire::DropReason verify(const KeyRing& ring, bool seq_known, std::uint32_t rcv_seq,
                        const wire::ControlPacket& pkt, std::span<const std::uint8_t> raw);

}  // namespace beacon::core::auth
