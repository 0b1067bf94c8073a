// core::auth::CryptoOps from OpenSSL libcrypto (see libcrypto.hpp).
#include "beacon/crypto/libcrypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <memory>

namespace beacon::crypto {
namespace {

using core::auth::DigestAlgo;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// One context per thread, reused: the engine signs and verifies on its own
// thread, and allocating a context per packet would cost a malloc each.
EVP_MD_CTX* thread_ctx() {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  return ctx.get();
}

bool digest(DigestAlgo algo, std::span<const std::uint8_t> data, std::span<std::uint8_t> out) {
  const EVP_MD* md = algo == DigestAlgo::Md5 ? EVP_md5() : EVP_sha1();
  if (md == nullptr || out.size() != static_cast<std::size_t>(EVP_MD_get_size(md))) return false;
  EVP_MD_CTX* ctx = thread_ctx();
  if (ctx == nullptr) return false;
  unsigned int n = 0;
  const bool ok = EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, out.data(), &n) == 1 && n == out.size();
  EVP_MD_CTX_reset(ctx);  // drops the state that covered the key
  return ok;
}

bool equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void cleanse(std::span<std::uint8_t> buf) {
  if (!buf.empty()) OPENSSL_cleanse(buf.data(), buf.size());
}

constexpr core::auth::CryptoOps kOps{&digest, &equal, &cleanse};

}  // namespace

const core::auth::CryptoOps& libcrypto_ops() {
  return kOps;
}

}  // namespace beacon::crypto
