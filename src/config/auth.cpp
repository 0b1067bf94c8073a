// auth_type / auth_keys and the key file (RFC 5880 §6.7, AUTH-02).
//
// The file is read into one buffer that is wiped when done, and parsed with
// views into it, so no secret is copied into a string that outlives the
// load; the key ring wipes its own copy when the last session drops it.
// Errors name the file, the line and what is wrong, never the secret.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "beacon/crypto/libcrypto.hpp"
#include "config_sections.hpp"

namespace beacon::config {
namespace {

using core::wire::AuthType;

constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

// Wipes a buffer that held secrets when it goes out of scope.
template <class Buffer>
struct Wipe {
  Buffer& b;
  ~Wipe() {
    crypto::libcrypto_ops().cleanse(
        std::span(reinterpret_cast<std::uint8_t*>(b.data()), b.size() * sizeof(b[0])));
  }
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes SECRET into `k`; "" on success, else what is wrong (no secret in it).
std::string parse_secret(std::string_view text, AuthType type, core::auth::Key& k) {
  const std::size_t max = core::auth::max_secret_len(type);
  std::size_t n = 0;
  if (text.size() >= 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    // AUTH-02 (SHOULD): keys as hex bytes.
    const std::string_view hex = text.substr(2);
    if (hex.empty()) return "empty secret (\"0x\" and no hex digits)";
    if (hex.size() % 2 != 0) return "hex secret has an odd number of digits";
    n = hex.size() / 2;
    if (n > max) {
      return "secret of " + std::to_string(n) + " bytes is too long for " +
             std::string(core::auth::config_name(type)) + " (at most " + std::to_string(max) + ")";
    }
    for (std::size_t i = 0; i < n; ++i) {
      const int hi = hex_value(hex[2 * i]);
      const int lo = hex_value(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return "hex secret has a character that is not a hex digit";
      k.secret[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
  } else {
    // AUTH-02 (MUST): keys as ASCII.
    n = text.size();
    for (char c : text) {
      if (c < 0x21 || c > 0x7e) {
        return "secret has a byte that is not printable ASCII (write it in hex: 0x...)";
      }
    }
    if (n > max) {
      return "secret of " + std::to_string(n) + " bytes is too long for " +
             std::string(core::auth::config_name(type)) + " (at most " + std::to_string(max) + ")";
    }
    std::copy(text.begin(), text.end(), k.secret.begin());
  }
  k.len = static_cast<std::uint8_t>(n);
  return {};
}

// "" if the opened file may hold secrets; else why not.
std::string check_file(int fd) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return std::string("cannot stat: ") + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return "not a regular file";
  if ((st.st_mode & 077) != 0) {
    std::array<char, 8> mode{};
    std::snprintf(mode.data(), mode.size(), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string("has group or other permissions (mode ") + mode.data() +
           "); a key file must be private: chmod 600";
  }
  const uid_t euid = geteuid();
  if (st.st_uid != euid && st.st_uid != 0) {
    return "is owned by uid " + std::to_string(st.st_uid) + ", neither the daemon's user (uid " +
           std::to_string(euid) + ") nor root";
  }
  if (static_cast<std::size_t>(st.st_size) > kMaxKeyFileBytes) {
    return "larger than " + std::to_string(kMaxKeyFileBytes) + " bytes";
  }
  return {};
}

}  // namespace

bool AuthSpec::operator==(const AuthSpec& o) const {
  if (type != o.type || keys_path != o.keys_path) return false;
  if (keys == o.keys) return true;
  if (!keys || !o.keys) return false;
  return keys->same_as(*o.keys);
}

std::shared_ptr<const core::auth::KeyRing> load_key_file(const std::string& path, AuthType type,
                                                         std::string& error) {
  error.clear();
  if (core::auth::max_secret_len(type) == 0) {
    error = "no authentication type to load keys for";
    return nullptr;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    error = std::string("cannot open: ") + std::strerror(errno);
    return nullptr;
  }
  std::string why = check_file(fd);
  std::vector<char> text(kMaxKeyFileBytes + 1);
  Wipe<std::vector<char>> wipe_text{text};
  std::size_t size = 0;
  while (why.empty() && size < text.size()) {
    const ssize_t n = ::read(fd, text.data() + size, text.size() - size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) why = std::string("cannot read: ") + std::strerror(errno);
    if (n <= 0) break;
    size += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (why.empty() && size > kMaxKeyFileBytes) {
    why = "larger than " + std::to_string(kMaxKeyFileBytes) + " bytes";
  }
  if (!why.empty()) {
    error = why;
    return nullptr;
  }

  std::vector<core::auth::Key> keys;
  keys.reserve(256);  // never reallocated: no stray copy of a secret
  Wipe<std::vector<core::auth::Key>> wipe_keys{keys};
  std::array<int, 256> defined_at{};  // line of each key id, 0: none
  const std::string_view all(text.data(), size);
  std::size_t pos = 0;
  int line_no = 0;
  while (pos < all.size()) {
    std::size_t end = all.find('\n', pos);
    if (end == std::string_view::npos) end = all.size();
    std::string_view line = all.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    const std::string at = "line " + std::to_string(line_no) + ": ";
    std::vector<std::string_view> words;
    std::size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && is_space(line[i])) ++i;
      std::size_t j = i;
      while (j < line.size() && !is_space(line[j])) ++j;
      if (j > i) words.push_back(line.substr(i, j - i));
      i = j;
    }
    if (words.empty() || words.front().front() == '#') continue;
    if (words.size() != 2) {
      error = at + "expected \"KEY_ID SECRET\" (" + std::to_string(words.size()) +
              " words; a secret cannot contain spaces, write it in hex: 0x...)";
      return nullptr;
    }
    int id = 0;
    bool id_ok = !words[0].empty() && words[0].size() <= 3;
    for (char c : words[0]) {
      if (c < '0' || c > '9') id_ok = false;
      id = id * 10 + (c - '0');
    }
    if (!id_ok || id > 255) {
      error = at + "key id must be a number 0..255";
      return nullptr;
    }
    if (defined_at[static_cast<std::size_t>(id)] != 0) {
      error = at + "key id " + std::to_string(id) + " already defined at line " +
              std::to_string(defined_at[static_cast<std::size_t>(id)]);
      return nullptr;
    }
    defined_at[static_cast<std::size_t>(id)] = line_no;
    core::auth::Key k;
    k.id = static_cast<std::uint8_t>(id);
    if (std::string bad = parse_secret(words[1], type, k); !bad.empty()) {
      crypto::libcrypto_ops().cleanse(k.secret);
      error = at + "key id " + std::to_string(id) + ": " + bad;
      return nullptr;
    }
    keys.push_back(k);
    crypto::libcrypto_ops().cleanse(k.secret);
  }
  if (keys.empty()) {
    error = "no keys (expected lines \"KEY_ID SECRET\")";
    return nullptr;
  }
  try {
    // Moving the vector moves its buffer: the ring owns the one copy.
    return std::make_shared<const core::auth::KeyRing>(type, std::move(keys),
                                                       crypto::libcrypto_ops());
  } catch (const std::invalid_argument& e) {
    error = e.what();
    return nullptr;
  }
}

namespace detail {

void read_auth(TableReader& r, AuthSpec& auth, bool defaults) {
  static constexpr std::array<std::string_view, 6> kTypes = {
      "none", "simple", "keyed-md5", "meticulous-keyed-md5", "keyed-sha1", "meticulous-keyed-sha1"};
  const bool type_key = r.find("auth_type") != nullptr;
  const bool keys_key = r.find("auth_keys") != nullptr;
  auto type_name = r.get_enum("auth_type", kTypes);
  auto path = r.get_string("auth_keys");
  if (!type_key && !keys_key) return;  // the default stands
  if (type_key && !type_name) return;  // bad value, already reported
  if (keys_key && !path) return;
  const Position keys_at = keys_key ? position_of(*r.find("auth_keys")) : r.position();
  const Position type_at = type_key ? position_of(*r.find("auth_type")) : r.position();
  AuthSpec next = auth;
  if (type_name) next.type = *core::auth::from_config_name(*type_name);
  if (path) {
    if (path->empty() || path->front() != '/' || path->find('\0') != std::string::npos) {
      r.diag().error(keys_at, r.qualified("auth_keys") + ": must be an absolute file path");
      return;
    }
    next.keys_path = *path;
  }
  if (next.type == AuthType::None) {
    if (defaults) {
      // [bfd] may name the key file alone: sessions then choose the type.
      auth = AuthSpec{AuthType::None, next.keys_path, nullptr};
      return;
    }
    if (keys_key) {
      r.diag().error(keys_at, r.qualified("auth_keys") +
                                  ": set, but auth_type is \"none\"; set auth_type too");
      return;
    }
    auth = AuthSpec{};
    return;
  }
  if (next.keys_path.empty()) {
    r.diag().error(type_at, r.qualified("auth_type") + ": \"" +
                                std::string(core::auth::config_name(next.type)) +
                                "\" needs auth_keys = \"/path/to/keyfile\"");
    return;
  }
  auto& cache = r.diag().key_files;
  const auto cache_key = std::make_pair(next.keys_path, next.type);
  if (auto it = cache.find(cache_key); it != cache.end()) {
    next.keys = it->second;
  } else {
    std::string why;
    next.keys = load_key_file(next.keys_path, next.type, why);
    if (!next.keys) {
      // Reported once per file and type; later tables naming it stay quiet.
      cache.emplace(cache_key, nullptr);
      r.diag().error(keys_key ? keys_at : type_at,
                     r.qualified("auth_keys") + ": key file " + next.keys_path + ": " + why);
      return;
    }
    cache.emplace(cache_key, next.keys);
  }
  if (!next.keys) return;  // the file failed for an earlier table
  auth = std::move(next);
}

}  // namespace detail
}  // namespace beacon::config
