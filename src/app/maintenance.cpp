// Maintenance store and its state file. See maintenance.hpp for the rules.
#include "beacon/app/maintenance.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "beacon/util/errno_text.hpp"
#include "beacon/util/file_read.hpp"

namespace beacon::app {
namespace {

using nlohmann::json;

using util::errno_text;

// A file write that retries short writes and EINTR.
bool write_all(int fd, const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    const ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

constexpr std::size_t kMaxStateFile = 1024 * 1024;  // a few entries; refuse anything absurd

MaintenanceIo::ReadResult read_file(const std::string& path) {
  MaintenanceIo::ReadResult r;
  util::SmallFile f = util::read_small_file(path, kMaxStateFile);
  if (f.error != 0 && f.at_open && (f.error == ENOENT || f.error == ENOTDIR)) {
    return r;  // no file, no directory
  }
  r.exists = true;
  if (f.too_large) {
    r.error = "read " + path + ": larger than 1 MiB";
  } else if (f.error != 0) {
    r.error = (f.at_open ? "open " : "read ") + path + ": " + errno_text(f.error);
  }
  r.content = std::move(f.content);
  return r;
}

json entry_to_json(const MaintenanceEntry& e) {
  json j{{"scope", e.scope},
         {"uid", e.uid ? json(*e.uid) : json(nullptr)},
         {"user", e.user},
         {"since", e.since},
         {"reason", e.reason},
         {"drain", e.drain},
         {"drain_started", e.drain ? json(e.drain_started) : json(nullptr)}};
  return j;
}

bool valid_scope(const std::string& s) {
  return !s.empty() && s.size() <= 255 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string string_field(const json& j, const char* key, bool required, std::string& error) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) error = std::string("missing \"") + key + "\"";
    return {};
  }
  if (!it->is_string()) {
    error = std::string("\"") + key + "\" must be a string";
    return {};
  }
  return it->get<std::string>();
}

}  // namespace

std::string_view origin_name(MaintenanceOrigin o) {
  return o == MaintenanceOrigin::StateFile ? "state-file" : "command";
}

std::string rfc3339_utc(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string write_file_atomically(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) return "create directory " + dir.string() + ": " + ec.message();
    ::chmod(dir.c_str(), 0755);
  }
  // Same directory as the target: rename() is atomic only within one file system.
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "create " + tmp + ": " + errno_text(errno);
  auto fail = [&](const std::string& step, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return step + " " + tmp + ": " + errno_text(err);
  };
  if (!write_all(fd, content)) return fail("write", errno);
  // The data must be on disk before the name points at it, or a crash could
  // leave an empty file under the final name.
  if (::fsync(fd) != 0) return fail("fsync", errno);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return "close " + tmp + ": " + errno_text(err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return "rename " + tmp + " to " + path + ": " + errno_text(err);
  }
  // And the rename itself must reach the disk: fsync the directory.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return "open directory " + dir.string() + ": " + errno_text(errno);
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (rc != 0) return "fsync directory " + dir.string() + ": " + errno_text(err);
  return {};
}

MaintenanceIo system_maintenance_io() {
  MaintenanceIo io;
  io.read = read_file;
  io.write = write_file_atomically;
  io.now = [] { return std::chrono::system_clock::now(); };
  return io;
}

std::string encode_state_file(const std::vector<MaintenanceEntry>& entries) {
  json list = json::array();
  for (const auto& e : entries) list.push_back(entry_to_json(e));
  json doc{{"version", kMaintenanceFileVersion}, {"maintenance", std::move(list)}};
  return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::optional<std::vector<MaintenanceEntry>> decode_state_file(std::string_view text,
                                                               std::string& error) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    // e.what() starts "[json.exception.parse_error.101] ": keep the useful part.
    std::string what = e.what();
    if (auto pos = what.find("] "); pos != std::string::npos) what.erase(0, pos + 2);
    error = "not valid JSON: " + what;
    return std::nullopt;
  }
  if (!doc.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  auto v = doc.find("version");
  if (v == doc.end() || !v->is_number_integer() || v->get<std::int64_t>() != 1) {
    error = "unsupported or missing \"version\" (expected 1)";
    return std::nullopt;
  }
  auto list = doc.find("maintenance");
  if (list == doc.end() || !list->is_array()) {
    error = "missing \"maintenance\" array";
    return std::nullopt;
  }
  std::vector<MaintenanceEntry> out;
  for (const auto& j : *list) {
    if (!j.is_object()) {
      error = "a maintenance entry is not an object";
      return std::nullopt;
    }
    MaintenanceEntry e;
    e.origin = MaintenanceOrigin::StateFile;
    e.scope = string_field(j, "scope", true, error);
    if (error.empty() && !valid_scope(e.scope)) error = "invalid \"scope\"";
    if (error.empty()) e.user = string_field(j, "user", false, error);
    if (error.empty()) e.since = string_field(j, "since", false, error);
    if (error.empty()) e.reason = string_field(j, "reason", false, error);
    if (error.empty()) e.drain_started = string_field(j, "drain_started", false, error);
    if (!error.empty()) return std::nullopt;
    if (e.user.empty()) e.user = "?";
    if (auto u = j.find("uid"); u != j.end() && u->is_number_unsigned()) {
      e.uid = static_cast<uid_t>(u->get<std::uint64_t>());
    }
    if (auto d = j.find("drain"); d != j.end() && d->is_boolean()) e.drain = d->get<bool>();
    if (!e.drain) e.drain_started.clear();
    if (std::any_of(out.begin(), out.end(), [&](const auto& x) { return x.scope == e.scope; })) {
      error = "scope \"" + e.scope + "\" listed twice";
      return std::nullopt;
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::string maintenance_reason_text(const MaintenanceEntry& e) {
  // A drain restored from the state file is still a drain, and says where
  // it came from like plain maintenance does.
  std::string text = e.drain ? "drain" : "maintenance";
  if (e.origin == MaintenanceOrigin::StateFile) text += " (state file)";
  text += " by " + e.user;
  if (!e.reason.empty()) text += ": " + e.reason;
  return text;
}

MaintenanceStore::MaintenanceStore(std::string state_dir, MaintenanceIo io)
    : path_((std::filesystem::path(state_dir) / kMaintenanceFileName).string()),
      io_(std::move(io)) {}

MaintenanceStore::LoadReport MaintenanceStore::load() {
  LoadReport rep;
  const MaintenanceIo::ReadResult r = io_.read(path_);
  if (!r.exists) {
    rep.message = "maintenance: no state file " + path_ + ": not in maintenance";
    return rep;
  }
  std::string why = r.error;
  std::optional<std::vector<MaintenanceEntry>> entries;
  if (why.empty()) {
    entries = decode_state_file(r.content, why);
    if (!entries && why.empty()) why = "invalid";
  }
  if (!entries) {
    // Fail closed: a file we cannot trust may have said "in maintenance", and
    // putting a box back into rotation by accident is the worse mistake.
    damaged_ = true;
    MaintenanceEntry e;
    e.scope = "all";
    e.user = "?";
    e.since = rfc3339_utc(io_.now());
    e.origin = MaintenanceOrigin::StateFile;
    e.reason = "state file " + path_ + " unreadable (" + why +
               "); failing closed until an operator runs 'bfdctl maintenance off'";
    entries_ = {e};
    rep.error = true;
    rep.message = "maintenance: " + e.reason;
    return rep;
  }
  entries_ = std::move(*entries);
  if (entries_.empty()) {
    rep.message = "maintenance: state file " + path_ + ": not in maintenance";
  } else {
    std::string scopes;
    for (const auto& e : entries_) scopes += (scopes.empty() ? "" : ", ") + e.scope;
    rep.message = "maintenance: state file " + path_ + ": in maintenance (" + scopes + ")";
  }
  return rep;
}

std::string MaintenanceStore::write_entries(const std::vector<MaintenanceEntry>& next) {
  return io_.write(path_, encode_state_file(next));
}

MaintenanceStore::ChangeResult MaintenanceStore::set_on(const std::string& scope,
                                                        const MaintenanceCaller& who,
                                                        const std::string& reason, bool drain,
                                                        const std::function<void()>& applied) {
  ChangeResult res;
  std::vector<MaintenanceEntry> next = entries_;
  const std::string now = rfc3339_utc(io_.now());
  auto it = std::find_if(next.begin(), next.end(), [&](const auto& e) { return e.scope == scope; });
  MaintenanceEntry e;
  e.scope = scope;
  e.uid = who.uid;
  e.user = who.user.empty() ? "?" : who.user;
  e.since = now;
  e.reason = reason;
  e.origin = MaintenanceOrigin::Command;
  if (it != next.end() && it->drain) {
    e.drain = true;
    e.drain_started = it->drain_started;
  }
  if (drain && !e.drain) {
    e.drain = true;
    e.drain_started = now;
  }
  if (it != next.end()) {
    *it = e;
  } else {
    next.push_back(e);
  }
  // Applied whatever the disk says: out of rotation now matters most.
  entries_ = std::move(next);
  if (applied) applied();
  if (std::string err = write_entries(entries_); !err.empty()) {
    res.persisted = false;
    res.error = err;
  } else {
    damaged_ = false;
  }
  return res;
}

MaintenanceStore::ChangeResult MaintenanceStore::set_off(const std::string& scope) {
  ChangeResult res;
  std::vector<MaintenanceEntry> next;
  if (scope != "all") {
    next = entries_;
    std::erase_if(next, [&](const auto& e) { return e.scope == scope; });
  }
  // Refused unless it reaches the disk (see the header: "off" only counts once
  // it is on disk).
  if (std::string err = write_entries(next); !err.empty()) {
    res.refused = true;
    res.persisted = false;
    res.error = err;
    return res;
  }
  damaged_ = false;
  entries_ = std::move(next);
  for (const auto& e : entries_) {
    if (e.scope == "all") res.still.push_back("all");
  }
  return res;
}

std::vector<engine::MaintenanceScope> MaintenanceStore::scopes() const {
  std::vector<engine::MaintenanceScope> out;
  for (const auto& e : entries_) {
    out.push_back({e.scope == "all" ? std::string() : e.scope, maintenance_reason_text(e)});
  }
  return out;
}

const MaintenanceEntry* MaintenanceStore::covering(const std::string& group) const {
  const MaintenanceEntry* all = nullptr;
  for (const auto& e : entries_) {
    if (e.scope == group) return &e;
    if (e.scope == "all") all = &e;
  }
  return all;
}

}  // namespace beacon::app
