// The cryptography of BFD authentication, from OpenSSL's libcrypto (EVP
// digests, CRYPTO_memcmp, OPENSSL_cleanse). The only place the daemon links
// a crypto library; core takes these through core::auth::CryptoOps.
#pragma once

#include "beacon/core/auth.hpp"

namespace beacon::crypto {

// Static, valid for the life of the process.
const core::auth::CryptoOps& libcrypto_ops();

}  // namespace beacon::crypto
