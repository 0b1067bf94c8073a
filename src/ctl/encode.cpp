// JSON encoding of engine snapshots for the control protocol (field list in
// proto/ctl/v1/README.md). Durations carry their unit in the key name.
#include <chrono>

#include "beacon/core/session.hpp"
#include "beacon/core/wire.hpp"
#include "beacon/ctl/protocol.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

std::int64_t us(core::Duration d) {
  return d.count();
}

json counters_to_json(const core::SessionCounters& c) {
  return json{{"rx_packets", c.rx_packets},
              {"tx_packets", c.tx_packets},
              {"rx_dropped", c.rx_dropped},
              {"state_changes", c.state_changes},
              {"up_count", c.up_count},
              {"down_count", c.down_count},
              {"polls_started", c.polls_started},
              {"finals_sent", c.finals_sent},
              {"detect_timeouts", c.detect_timeouts}};
}

}  // namespace

json session_to_json(const engine::SessionSnapshot& s) {
  json j{
      {"peer", s.peer},
      {"local", s.local},
      {"interface", s.interface},
      {"group", s.group},
      {"multihop", s.multihop},
      {"passive", s.passive},
      {"dynamic", s.dynamic},
      {"removing", s.removing},
      {"source_port", s.source_port},
      {"state", core::wire::state_name(s.state)},
      {"remote_state", core::wire::state_name(s.remote_state)},
      {"local_diag", s.local_diag},
      {"local_diag_name", core::wire::diag_name(s.local_diag)},
      {"remote_diag", s.remote_diag},
      {"remote_diag_name", core::wire::diag_name(s.remote_diag)},
      {"local_discr", s.local_discr},
      {"remote_discr", s.remote_discr},
      {"hold", core::hold_name(s.hold)},
      {"desired_min_tx_us", us(s.params.desired_min_tx)},
      {"required_min_rx_us", us(s.params.required_min_rx)},
      {"detect_mult", s.params.detect_mult},
      {"tx_interval_us", us(s.tx_interval)},
      {"detection_time_us", us(s.detection_time)},
      {"remote_min_rx_us", us(s.remote_min_rx)},
      {"remote_desired_min_tx_us", us(s.remote_desired_min_tx)},
      {"remote_detect_mult", s.remote_detect_mult},
      {"counters", counters_to_json(s.counters)},
      {"since_change_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(s.since_change).count()},
  };
  j["hold_source"] =
      s.hold == core::Hold::None ? json(nullptr) : json(engine::hold_source_name(s.hold_source));
  j["hold_reason"] = s.hold_reason;
  // The signal the group's health policy sends; null when not health-managed.
  j["unhealthy_signal"] = s.unhealthy_signal.empty() ? json(nullptr) : json(s.unhealthy_signal);
  j["maintenance_signal"] =
      s.maintenance_signal.empty() ? json(nullptr) : json(s.maintenance_signal);
  // True when the [[session]] overrides its group's signals (the two above
  // are then this session's own).
  j["signal_override"] = s.signal_override;
  // Authentication (RFC 5880 §6.7): the type as configured and the signing
  // Key ID (null without authentication). Never a secret.
  j["auth_type"] = core::auth::config_name(s.auth_type);
  j["auth_key_id"] =
      s.auth_type == core::wire::AuthType::None ? json(nullptr) : json(s.auth_key_id);
  return j;
}

json stats_to_json(const engine::EngineStats& s) {
  json drops = json::object();
  for (std::size_t i = 1; i < core::wire::kDropReasonCount; ++i) {  // 0 is DropReason::None
    drops[std::string(core::wire::drop_reason_name(static_cast<core::wire::DropReason>(i)))] =
        s.drops[i];
  }
  std::int64_t mean = s.timer_fires == 0
                          ? 0
                          : us(s.timer_lateness_total) / static_cast<std::int64_t>(s.timer_fires);
  return json{{"sessions", s.sessions},
              {"rx_datagrams", s.rx_datagrams},
              {"tx_packets", s.tx_packets},
              {"tx_errors", s.tx_errors},
              {"tx_syscalls", s.tx_syscalls},
              {"rx_errors", s.rx_errors},
              {"rx_kernel_drops", s.rx_kernel_drops},
              {"rx_buffer_bytes", s.rx_buffer_bytes},
              {"passive_created", s.passive_created},
              {"passive_removed", s.passive_removed},
              {"failsafe_trips", s.failsafe_trips},
              {"timer_fires", s.timer_fires},
              {"timer_wakeups", s.timer_wakeups},
              {"timer_arms", s.timer_arms},
              {"timer_lateness_max_us", us(s.timer_lateness_max)},
              {"timer_lateness_mean_us", mean},
              {"call_max_us", us(s.call_max)},
              {"drops", std::move(drops)}};
}

}  // namespace beacon::ctl
