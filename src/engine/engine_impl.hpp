// Engine internals shared by the engine's translation units (engine.cpp:
// start-up, timers, receive, shutdown; engine_holds.cpp: holds, fail-safe,
// snapshots). Private to src/engine. Everything here runs on the engine
// thread unless noted.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "beacon/engine/demux.hpp"
#include "beacon/engine/engine.hpp"
#include "beacon/engine/scheduler.hpp"
#include "holds_impl.hpp"
#include "transport_impl.hpp"

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

inline boost::asio::steady_timer::time_point to_asio(core::TimePoint t) {
  return boost::asio::steady_timer::time_point(
      std::chrono::duration_cast<boost::asio::steady_timer::duration>(t.time_since_epoch()));
}

}  // namespace detail

namespace detail {

// One session and its transport state.
struct SessionSlot {
  std::uint32_t id = 0;
  std::optional<core::Session> session;
  PathKey key;
  std::uint16_t source_port = 0;
  detail::SendSocket sock;
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
  HoldSource hold_source = HoldSource::Admin;
  std::uint8_t hold_diag = 0;
  std::string hold_reason;  // reason of the winning rule
  core::TimePoint created{};
  // Graceful shutdown bookkeeping: a session that was Up is waited for until
  // its peer acknowledges (Down/AdminDown) or shutdown_until passes.
  bool shutdown_tracked = false;
  core::TimePoint shutdown_until{};
};

}  // namespace detail

using detail::SessionSlot;

struct Engine::Impl {
  Impl(const config::Config& c, std::shared_ptr<spdlog::logger> l)
      : cfg(c),
        log(l ? std::move(l) : spdlog::default_logger()),
        table(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)),
        rng(std::random_device{}()) {}

  // Declared first: destroyed last, after every object that refers to it.
  boost::asio::io_context io;
  config::Config cfg;
  std::shared_ptr<spdlog::logger> log;
  core::SteadyClock clock;

  // Loop state.
  boost::asio::steady_timer timer{io};
  core::TimePoint armed = core::TimePoint::max();
  // Set while on_timer() serves the due entries: their re-arms are folded into
  // the one arm at the end of the turn (each arm is a timerfd_settime, on a VM
  // an exit that costs more than sending a packet).
  bool in_timer = false;
  std::uint64_t timer_gen = 0;
  Scheduler sched;
  SessionTable table;
  std::mt19937_64 rng;
  std::vector<std::unique_ptr<SessionSlot>> slots;  // index = scheduler id
  std::vector<std::uint32_t> free_ids;
  std::size_t live = 0;
  detail::RxBatch batch;
  detail::RxHandler handler;
  std::vector<std::unique_ptr<detail::Listener>> listeners;
  detail::HoldRules holds;
  EngineStats stats;
  std::vector<unsigned> accept_ifindex;
  std::vector<std::uint32_t> accept_count;
  double tokens = 0;
  core::TimePoint tokens_at{};
  std::uint8_t mh_min_ttl = 255;  // lowest min TTL of any multihop session/rule
  std::array<core::TimePoint, core::wire::kDropReasonCount> drop_logged{};

  // Health-managed groups ([[group]] tables with at least one check), by name.
  std::map<std::string, const config::GroupSpec*> managed;

  // Fail-safe (issue 3 item 4). last_heartbeat_us is written by any thread
  // (Engine::heartbeat), read by the loop; steady-clock microseconds, 0 = none yet.
  std::atomic<std::int64_t> last_heartbeat_us{0};
  boost::asio::steady_timer failsafe_timer{io};
  core::TimePoint run_at{};  // the first heartbeat window starts here
  bool failsafe_tripped = false;

  // Shutdown.
  boost::asio::steady_timer shutdown_timer{io};
  bool shutting_down = false;
  core::TimePoint shutdown_started{};
  std::promise<void> shutdown_done;

  // Thread hand-off.
  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  bool running = false;   // closures may be posted
  bool loop_done = true;  // the thread is not inside io.run()
  std::thread thread;

  // ------------------------------------------------------------ start-up
  void open();
  void open_listeners();
  void create_configured(const config::SessionSpec& spec, core::TimePoint now);
  std::uint32_t new_slot_id();
  bool open_socket(SessionSlot& s, detail::SendSpec spec, std::string& error);

  // ------------------------------------------------------------ loop
  void rearm_timer();
  void on_timer(std::uint64_t gen);
  void on_due(std::uint32_t id, core::TimePoint now);
  void rearm_slot(SessionSlot& s);
  core::TimePoint gc_time(const SessionSlot& s) const;
  void remove_slot(std::uint32_t id, std::string_view why);
  void on_datagram(std::span<const std::uint8_t> bytes, const detail::RxInfo& info);
  void try_accept(const core::wire::ControlPacket& pkt, const detail::RxInfo& info,
                  core::TimePoint now);
  void drop(core::wire::DropReason r, const detail::RxInfo& info);
  void carry_out(SessionSlot& s, const core::Effects& fx);
  void send_packet(SessionSlot& s, const core::wire::ControlPacket& p);
  void log_change(const SessionSlot& s, const core::StateChange& c);
  detail::HoldTarget target(const SessionSlot& s) const;
  void apply_hold(SessionSlot& s, core::TimePoint now);
  HoldResult set_hold(HoldSource source, const Selector& sel, core::Hold hold, std::uint8_t diag,
                      std::string reason);
  void apply_all_holds();
  void init_health();  // open(): managed groups and their start-up hold
  void hold_managed_groups(HoldSource source, core::Hold hold, std::uint8_t diag,
                           const std::string& reason);  // no diag default: diag as given
  // Fail-safe.
  void start_failsafe(core::TimePoint now);  // before the thread starts
  void failsafe_tick();
  void failsafe_check(core::TimePoint now);
  SessionSnapshot snapshot(const SessionSlot& s, core::TimePoint now) const;
  std::vector<SessionSnapshot> sessions();
  EngineStats get_stats();
  void begin_shutdown(core::Hold signal);
  void shutdown_tick(core::TimePoint now);
  bool shutdown_complete(core::TimePoint now) const;
  void finish();

  template <class F>
  auto call(F f) -> decltype(f());
};

}  // namespace beacon::engine
