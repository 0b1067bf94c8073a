// Operator maintenance on the ops side: who put which scope ("all" or a group)
// into maintenance, when, why, and whether a drain is in progress; kept in a
// state file so that a box taken out of rotation never comes back by itself
// after a restart of the daemon or the machine.
//
// State file: <[daemon] state_dir>/maintenance.json, versioned JSON:
//
//   {"version":1,"maintenance":[{"scope":"all","uid":0,"user":"root",
//     "since":"2026-12-02T14:03:11Z","reason":"kernel upgrade",
//     "drain":true,"drain_started":"2026-12-02T14:03:11Z"}]}
//
// written atomically (temporary file in the same directory, fsync, rename,
// fsync of the directory), so a crash leaves the old or the new file, never a
// mix.
//
// Reading at start-up: no directory or no file -> no maintenance (info). A
// file that cannot be read or parsed -> logged as an error and treated as
// maintenance ON for all (fail closed), with a reason saying so; the damaged
// file stays as it is until an operator changes maintenance.
//
// Memory versus disk when a write fails (the rule): the disk must never hold
// less maintenance than memory without the operator being told, and "off"
// only takes effect once it is on disk.
//  - "on" that cannot be written is applied in memory all the same (taking
//    the box out of rotation now is what matters) and reported: the change
//    is on but will not survive a restart.
//  - "off" that cannot be written is refused: memory and disk keep agreeing,
//    so the box neither stays in rotation nor silently drops out again at
//    the next restart; the operator fixes the directory and retries.
//
// Pure logic: file access and the wall clock are injected (MaintenanceIo),
// so every rule above is unit-tested. Thread: the ops loop only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/engine/types.hpp"

namespace beacon::app {

inline constexpr int kMaintenanceFileVersion = 1;
inline constexpr const char* kMaintenanceFileName = "maintenance.json";

enum class MaintenanceOrigin : std::uint8_t { Command, StateFile };
std::string_view origin_name(MaintenanceOrigin o);  // "command" | "state-file"

struct MaintenanceEntry {
  std::string scope;         // "all" or a group name
  std::optional<uid_t> uid;  // nullopt: unknown (fail-closed entry, no caller)
  std::string user;          // "?" when unknown
  std::string since;         // RFC 3339 UTC, "2026-12-02T14:03:11Z"
  std::string reason;        // operator's text ("" if none given)
  MaintenanceOrigin origin = MaintenanceOrigin::Command;
  bool drain = false;         // a drain is in progress for this scope
  std::string drain_started;  // RFC 3339 UTC; "" when no drain
  friend bool operator==(const MaintenanceEntry&, const MaintenanceEntry&) = default;
};

// Who asks for a change (the control socket's caller).
struct MaintenanceCaller {
  std::optional<uid_t> uid;
  std::string user = "?";
};

// File access and clock; the defaults (system_maintenance_io) use the real
// file system and std::chrono::system_clock.
struct MaintenanceIo {
  struct ReadResult {
    bool exists = false;  // false: the file (or its directory) is not there
    std::string content;
    std::string error;  // non-empty: it exists but could not be read
  };
  std::function<ReadResult(const std::string& path)> read;
  // Atomically replaces `path` with `content`; "" on success, else the error
  // ("write /var/lib/bfd-beacon/maintenance.json.tmp: No space left on device").
  std::function<std::string(const std::string& path, const std::string& content)> write;
  std::function<std::chrono::system_clock::time_point()> now;
};
MaintenanceIo system_maintenance_io();

// temp + fsync + rename + fsync(dir); creates the directory (0755) if missing.
// Returns "" or the step that failed with its error text.
std::string write_file_atomically(const std::string& path, const std::string& content);

// "2026-12-02T14:03:11Z"
std::string rfc3339_utc(std::chrono::system_clock::time_point t);

// The state file's text for `entries` (origin is not stored: whatever is read
// back came from the state file).
std::string encode_state_file(const std::vector<MaintenanceEntry>& entries);
// Parses a state file; nullopt + `error` when it is not a valid version-1 file.
std::optional<std::vector<MaintenanceEntry>> decode_state_file(std::string_view text,
                                                               std::string& error);

class MaintenanceStore {
 public:
  struct LoadReport {
    bool error = false;   // true: log as an error (fail closed)
    std::string message;  // what to log
  };
  struct ChangeResult {
    bool refused = false;            // nothing changed (error says why)
    bool persisted = true;           // false: applied in memory but not on disk
    std::string error;               // refusal or write failure text
    std::vector<std::string> still;  // scopes still in maintenance after an "off"
  };

  MaintenanceStore(std::string state_dir, MaintenanceIo io);

  // Reads the state file (once, at start-up). See the header comment.
  LoadReport load();

  // on: adds or replaces the entry of `scope` ("all" or a group). Every "on"
  // is a new decision and records its caller, time and reason; `drain` marks
  // a drain in progress (a drain already in progress keeps its start time).
  // A write failure leaves the change applied and says so (persisted false).
  // `applied`, if given, runs after the change is in memory and before the
  // write (the daemon hands the new scopes to the engine there).
  ChangeResult set_on(const std::string& scope, const MaintenanceCaller& who,
                      const std::string& reason, bool drain,
                      const std::function<void()>& applied = {});
  // off: "all" leaves maintenance entirely (every scope); a group removes
  // only that group's entry (an "all" entry still covers it: reported in
  // ChangeResult::still). Refused when it cannot be written.
  ChangeResult set_off(const std::string& scope);

  const std::vector<MaintenanceEntry>& entries() const { return entries_; }
  // The engine's view: one MaintenanceScope per entry, the reason text
  // shown per session ("maintenance by alice: kernel upgrade").
  std::vector<engine::MaintenanceScope> scopes() const;
  // Entry covering `group`: its own, else "all"; nullptr when none.
  const MaintenanceEntry* covering(const std::string& group) const;
  const std::string& path() const { return path_; }
  // The file was damaged at load and has not been rewritten since.
  bool damaged() const { return damaged_; }

 private:
  std::string write_entries(const std::vector<MaintenanceEntry>& next);

  std::string path_;
  MaintenanceIo io_;
  std::vector<MaintenanceEntry> entries_;
  bool damaged_ = false;
};

// Text of a session's hold reason for one entry.
std::string maintenance_reason_text(const MaintenanceEntry& e);

}  // namespace beacon::app
