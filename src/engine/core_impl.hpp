// EngineCore internals shared by its translation units (core.cpp: sessions,
// timers, receive, shutdown; core_holds.cpp: holds, fail-safe, snapshots).
// Private to src/engine. Pure: time from the injected clock, I/O through the
// injected Transport.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "beacon/config/diff.hpp"
#include "beacon/engine/accept_policy.hpp"
#include "beacon/engine/core.hpp"
#include "beacon/engine/demux.hpp"
#include "beacon/engine/scheduler.hpp"
#include "beacon/util/address_text.hpp"
#include "holds_impl.hpp"

namespace beacon::engine {

namespace detail {

inline bool is_down(core::wire::State s) {
  return s == core::wire::State::Down || s == core::wire::State::AdminDown;
}

inline std::uint8_t default_diag(core::Hold h, std::uint8_t diag) {
  if (diag != 0) return diag;
  if (h == core::Hold::Down) return static_cast<std::uint8_t>(core::wire::Diag::PathDown);
  if (h == core::Hold::AdminDown) {
    return static_cast<std::uint8_t>(core::wire::Diag::AdministrativelyDown);
  }
  return 0;
}

using util::without_scope;
// "198.18.0.1", "fe80::1%veth0" (scope by interface name when known).
using util::address_text;

// One session and what the core knows of its path.
struct SessionSlot {
  std::uint32_t id = 0;
  std::optional<core::Session> session;
  PathKey key;
  std::uint16_t source_port = 0;
  std::optional<Transport::Path> path;
  boost::asio::ip::address peer;  // without scope
  std::string peer_text;          // "198.18.0.1", "fe80::1%veth0"
  std::string group;
  std::string interface;
  unsigned ifindex = 0;
  std::optional<boost::asio::ip::address> local_cfg;
  std::optional<boost::asio::ip::address> local_seen;  // destination of received packets
  bool multihop = false;
  bool passive = false;
  bool dynamic = false;
  int accept_index = -1;
  std::uint8_t min_ttl = 255;
  // What this session sends when unhealthy / in maintenance, resolved at
  // creation (override, else group, else Down); read by every rule given by
  // cause (HoldCause) through HoldTarget.
  SessionSignals signals;
  HoldSource hold_source = HoldSource::Admin;
  std::uint8_t hold_diag = 0;
  std::string hold_reason;  // reason of the winning rule
  core::TimePoint created{};
  // Graceful shutdown bookkeeping: a session that was Up is waited for until
  // its peer acknowledges (Down/AdminDown) or shutdown_until passes.
  bool shutdown_tracked = false;
  core::TimePoint shutdown_until{};
  // Reload: removed from the configuration, deleted at removing_until or
  // when the peer acknowledges the signal, whichever comes first.
  bool removing = false;
  core::TimePoint removing_until{};
  bool reload_poll = false;    // its timers changed in the last reload
  config::SessionKey cfg_key;  // configured sessions: their identity
};

}  // namespace detail

using detail::SessionSlot;

struct EngineCore::Impl {
  Impl(EngineOptions o, Transport& t, const core::Clock& c, std::shared_ptr<spdlog::logger> l,
       std::uint64_t seed);

  EngineOptions opts;
  Transport& transport;
  const core::Clock& clock;
  std::shared_ptr<spdlog::logger> log;

  Scheduler sched;
  SessionTable table;
  std::mt19937_64 rng;
  std::vector<std::unique_ptr<SessionSlot>> slots;  // index = scheduler id
  std::vector<std::uint32_t> free_ids;
  std::size_t live = 0;
  detail::HoldRules holds;
  EngineStats stats;
  std::optional<AcceptPolicy> accept;
  std::uint8_t mh_min_ttl = 255;  // lowest min TTL of any multihop session/rule
  std::array<core::TimePoint, core::wire::kDropReasonCount> drop_logged{};

  // Indexes for holds: a group's or a peer's sessions without scanning all.
  std::map<std::string, std::vector<std::uint32_t>, std::less<>> by_group;
  std::map<boost::asio::ip::address, std::vector<std::uint32_t>> by_peer;
  std::vector<std::string> known_groups;  // sorted: configured, accepted or declared
  // Configured sessions by their configuration identity (reload).
  std::map<config::SessionKey, std::uint32_t> configured;

  // Health-managed groups ([[group]] tables with at least one check), by name.
  std::map<std::string, const ManagedGroup*, std::less<>> managed;
  // Every [[group]] table's signals, by name (EngineOptions::group_signals).
  std::map<std::string, const ManagedGroup*, std::less<>> group_signals;

  // Fail-safe.
  core::TimePoint run_at{};  // the first heartbeat window starts here
  bool failsafe_tripped = false;
  bool failsafe_disarmed = false;

  // Shutdown.
  bool shutting_down = false;
  core::TimePoint shutdown_started{};

  // ------------------------------------------------------------ start-up
  void open();
  void create_configured(const config::SessionSpec& spec, core::TimePoint now);
  // The interface index a configured session uses; throws StartupError for
  // a missing interface or an unusable address.
  unsigned configured_ifindex(const config::SessionSpec& spec) const;
  void rebuild_groups();  // known_groups and managed from opts
  std::uint32_t new_slot_id();
  void index_slot(const SessionSlot& s);
  void unindex_slot(const SessionSlot& s);
  bool open_path(SessionSlot& s, PathSpec spec, std::string& error);
  core::SessionParams session_params(const core::SessionParams& base, bool passive) const;

  // ------------------------------------------------------------ loop
  bool on_timer(std::size_t limit);
  void on_due(std::uint32_t id, core::TimePoint now);
  void rearm_slot(SessionSlot& s);
  core::TimePoint gc_time(const SessionSlot& s) const;
  void remove_slot(std::uint32_t id, std::string_view why);
  void delete_slot(std::uint32_t id);  // frees everything the slot holds
  // Bumped whenever something a reader of sessions() sees changes beyond the
  // counters: a state change, a session added or removed, a hold's source or
  // reason. The loop republishes its snapshot when it moves.
  std::uint64_t view_gen = 0;

  // ------------------------------------------------------------ reload
  ReloadResult reload(EngineOptions next);
  void start_removal(std::uint32_t id, std::string_view why, core::TimePoint now);
  bool removal_done(const SessionSlot& s, core::TimePoint now) const;
  void finish_removal(std::uint32_t id);
  void move_group(SessionSlot& s, const std::string& group);
  void replace_accepts(ReloadResult& r, const std::vector<config::AcceptSpec>& before,
                       core::TimePoint now);
  void update_managed(const std::vector<ManagedGroup>& before, core::TimePoint now);
  void make_way(const config::SessionSpec& spec, ReloadResult& r);
  void on_datagram(std::span<const std::uint8_t> bytes, const RxInfo& info);
  void try_accept(const core::wire::ControlPacket& pkt, std::span<const std::uint8_t> bytes,
                  const RxInfo& info, core::TimePoint now);
  // Counts the drop; logs it at most once a second per reason: at debug,
  // or at warning for authentication failures (`pkt` then names the Auth
  // Type, Key ID and sequence number it carried; never a secret).
  void drop(core::wire::DropReason r, const RxInfo& info,
            const core::wire::ControlPacket* pkt = nullptr);
  void carry_out(SessionSlot& s, const core::Effects& fx);
  void send_packet(SessionSlot& s, const core::wire::ControlPacket& p);
  void log_change(const SessionSlot& s, const core::StateChange& c);
  detail::HoldTarget target(const SessionSlot& s) const;
  void apply_hold(SessionSlot& s, core::TimePoint now);
  template <class Ids>
  void apply_holds(const Ids& ids, core::TimePoint now);
  void apply_all_holds();
  void apply_group_holds(std::string_view group, core::TimePoint now);
  void apply_peer_holds(const detail::PeerMatch& m, core::TimePoint now);
  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag,
                      std::string reason);
  HoldResult set_hold(HoldSource source, const Selector& sel, HoldCause cause, std::string reason);
  HoldResult set_rule(HoldSource source, const Selector& sel, const detail::HoldRules::Rule& rule,
                      const std::string& what);
  // The signals of a new session of `group`; `spec` is its [[session]]
  // (nullptr for one created by an [[accept]] rule).
  SessionSignals signals_for(const std::string& group, const config::SessionSpec* spec) const;
  bool group_known(std::string_view g) const;
  void init_health();       // open(): managed groups and their start-up hold
  void init_maintenance();  // open(): the initial maintenance scopes
  HoldResult set_maintenance(std::vector<MaintenanceScope> scopes);
  void store_maintenance(const std::vector<MaintenanceScope>& scopes);
  void hold_managed_groups(HoldSource source, core::Hold hold, std::uint8_t diag,
                           const std::string& reason);  // no diag default: diag as given
  void failsafe_check(std::optional<core::TimePoint> last_heartbeat);
  SessionSnapshot snapshot(const SessionSlot& s, core::TimePoint now) const;
  void begin_shutdown(core::Hold signal);
  bool shutdown_complete(core::TimePoint now) const;
  core::TimePoint shutdown_wake() const;
};

}  // namespace beacon::engine
