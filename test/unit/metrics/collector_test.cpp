// Text exposition of bfd-beacon's families from fixed snapshots: names,
// types, labels and values; series of a session that is gone disappear;
// providers left empty export their defaults; /proc parsing.
#include "beacon/metrics/collector.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "beacon/metrics/process.hpp"
#include "beacon/metrics/server.hpp"

namespace beacon::metrics {
namespace {

using core::Duration;
using core::TimePoint;
using core::wire::State;

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

engine::SessionSnapshot session(const std::string& peer, State st) {
  engine::SessionSnapshot s;
  s.peer = peer;
  s.local = "198.18.0.2";
  s.interface = "veth0";
  s.group = "web";
  s.state = st;
  s.remote_state = st;
  s.local_diag = 0;
  s.remote_diag = 3;
  s.detection_time = Duration{150'000};
  s.remote_detect_mult = 3;
  s.tx_interval = Duration{50'000};
  s.counters.tx_packets = 12;
  s.counters.rx_packets = 10;
  s.counters.flaps[static_cast<std::size_t>(core::FlapCause::Timeout)] = 2;
  s.counters.drops[static_cast<std::size_t>(core::wire::DropReason::BadTtl)] = 4;
  s.counters.rx_gap.observe(Duration{40'000});
  s.counters.rx_gap.observe(Duration{45'000});
  s.counters.rx_gap.observe(Duration{120'000});
  s.last_change = TimePoint{} + Duration{5'000'000};
  return s;
}

std::shared_ptr<engine::EngineSnapshot> engine_snapshot() {
  auto e = std::make_shared<engine::EngineSnapshot>();
  e->sessions.push_back(session("198.18.0.1", State::Up));
  e->sessions.push_back(session("198.18.0.9", State::Down));
  e->stats.drops[static_cast<std::size_t>(core::wire::DropReason::BadTtl)] = 4;
  e->stats.passive_created = 3;
  e->stats.passive_refused = 1;
  e->stats.timer_lateness.observe(Duration{30});
  e->taken = TimePoint{} + Duration{10'000'000};
  e->anchor_steady = TimePoint{} + Duration{1'000'000};
  e->anchor_wall = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
  return e;
}

std::string text_of(const Inputs& in) {
  return to_text(build_families(in));
}

const std::string kL =
    R"(peer="198.18.0.1",local="198.18.0.2",interface="veth0",group="web",multihop="false")";

TEST(CollectorTest, SessionSeriesHaveTheirLabelsTypesAndValues) {
  Inputs in;
  in.engine = engine_snapshot();
  in.now = in.engine->taken + Duration{250'000};
  in.version = "9.9.9";
  const std::string t = text_of(in);
  EXPECT_TRUE(has_line(t, "# TYPE bfd_beacon_session_state gauge"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_state{" + kL + R"(,state="up"} 1)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_state{" + kL + R"(,state="down"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_state{" + kL + R"(,state="admin-down"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_state{" + kL + R"(,state="init"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_up{" + kL + "} 1"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_remote_diag{" + kL + "} 3"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_detect_time_seconds{" + kL + "} 0.15"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_tx_interval_seconds{" + kL + "} 0.05"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_interval_seconds{" + kL + "} 0.05"));
  // anchor_wall + (last_change - anchor_steady) = 1800000000 + 4 s.
  EXPECT_TRUE(
      has_line(t, "bfd_beacon_session_last_change_timestamp_seconds{" + kL + "} 1800000004"));
  EXPECT_TRUE(has_line(t, "# TYPE bfd_beacon_session_flaps_total counter"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_flaps_total{" + kL + R"(,cause="timeout"} 2)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_flaps_total{" + kL + R"(,cause="local-hold"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_packets_sent_total{" + kL + "} 12"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_packets_received_total{" + kL + "} 10"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_drops_total{" + kL + R"(,reason="bad_ttl"} 4)"));
  // Histogram: cumulative buckets, +Inf = count, sum in seconds.
  EXPECT_TRUE(has_line(t, "# TYPE bfd_beacon_session_rx_gap_seconds histogram"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_bucket{" + kL + R"(,le="0.02"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_bucket{" + kL + R"(,le="0.05"} 2)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_bucket{" + kL + R"(,le="0.2"} 3)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_bucket{" + kL + R"(,le="+Inf"} 3)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_count{" + kL + "} 3"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_rx_gap_seconds_sum{" + kL + "} 0.205"));
  EXPECT_TRUE(has_line(t, "# TYPE bfd_beacon_session_tx_lateness_seconds histogram"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_build_info{version="9.9.9"} 1)"));
}

// AUTH-14: authentication failures are counted per reason, per session and
// engine-wide; an authenticated session's metrics carry no key material.
TEST(CollectorTest, AuthenticationDropsPerReason) {
  using R = core::wire::DropReason;
  auto e = engine_snapshot();
  auto& s = e->sessions[0];
  s.auth_type = core::wire::AuthType::MeticulousKeyedSha1;
  s.auth_key_id = 7;
  s.counters.drops[static_cast<std::size_t>(R::AuthBadSequence)] = 5;
  s.counters.drops[static_cast<std::size_t>(R::AuthFailed)] = 2;
  e->stats.drops[static_cast<std::size_t>(R::AuthUnknownKeyId)] = 3;
  Inputs in;
  in.engine = e;
  in.now = in.engine->taken + Duration{250'000};
  const std::string t = text_of(in);
  EXPECT_TRUE(
      has_line(t, "bfd_beacon_session_drops_total{" + kL + R"(,reason="auth_bad_sequence"} 5)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_session_drops_total{" + kL + R"(,reason="auth_failed"} 2)"));
  for (const char* r :
       {"auth_present_not_configured", "auth_missing", "auth_wrong_type", "auth_unknown_key_id"}) {
    EXPECT_TRUE(has_line(t, "bfd_beacon_session_drops_total{" + kL + ",reason=\"" + r + "\"} 0"))
        << r;
  }
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_drops_total{reason="auth_unknown_key_id"} 3)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_drops_total{reason="auth_wrong_type"} 0)"));
}

TEST(CollectorTest, EngineSeries) {
  Inputs in;
  in.engine = engine_snapshot();
  in.now = in.engine->taken + Duration{250'000};
  const std::string t = text_of(in);
  EXPECT_TRUE(has_line(t, "# TYPE bfd_beacon_drops_total counter"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_drops_total{reason="bad_ttl"} 4)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_drops_total{reason="too_short"} 0)"));
  EXPECT_EQ(t.find(R"(reason="none")"), std::string::npos);
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_timer_lateness_seconds_bucket{le="5e-05"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_sessions{state="up"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_sessions{state="down"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_sessions{state="init"} 0)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_passive_sessions_created_total 3"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_passive_sessions_refused_total 1"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_engine_snapshot_age_seconds 0.25"));
}

// A session missing from the next snapshot leaves no series behind.
TEST(CollectorTest, GoneSessionSeriesDisappear) {
  Inputs in;
  in.engine = engine_snapshot();
  EXPECT_NE(text_of(in).find(R"(peer="198.18.0.9")"), std::string::npos);
  auto next = std::make_shared<engine::EngineSnapshot>(*in.engine);
  next->sessions.pop_back();
  in.engine = next;
  const std::string t = text_of(in);
  EXPECT_EQ(t.find(R"(peer="198.18.0.9")"), std::string::npos);
  EXPECT_NE(t.find(R"(peer="198.18.0.1")"), std::string::npos);
  // With no session at all, the per-session families are absent, not empty.
  next->sessions.clear();
  in.engine = next;
  EXPECT_EQ(text_of(in).find("bfd_beacon_session_state"), std::string::npos);
}

health::CheckStatus check(const std::string& name, const std::string& type, health::Status st) {
  health::CheckStatus c;
  c.name = name;
  c.type = type;
  c.state = st;
  c.known = true;
  c.failures = 5;
  c.durations.observe(Duration{3'000});
  return c;
}

TEST(CollectorTest, HealthSeriesAndDefaultsOfEmptyProviders) {
  Sources src;
  src.checks = [] {
    auto sock = check("hap", "haproxy-socket", health::Status::Pass);
    sock.current_connections = 17;
    auto proc = check("proc", "haproxy-process", health::Status::Fail);
    proc.event_driven = true;
    auto fresh = check("new", "exec", health::Status::Fail);
    fresh.known = false;
    return std::vector<health::CheckStatus>{sock, proc, fresh};
  };
  src.groups = [] {
    health::GroupStatus g;
    g.name = "web";
    g.decision.verdict = health::Verdict::Unhealthy;
    g.decision.hold = core::Hold::Down;
    return std::vector<health::GroupStatus>{g};
  };
  Inputs in;
  in.ops = std::make_shared<OpsSnapshot>(gather(src));
  const std::string t = text_of(in);
  EXPECT_TRUE(
      has_line(t, R"(bfd_beacon_check_status{check="hap",type="haproxy-socket",status="pass"} 1)"));
  EXPECT_TRUE(
      has_line(t, R"(bfd_beacon_check_status{check="hap",type="haproxy-socket",status="fail"} 0)"));
  EXPECT_TRUE(
      has_line(t, R"(bfd_beacon_check_status{check="new",type="exec",status="unknown"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_check_status{check="new",type="exec",status="fail"} 0)"));
  EXPECT_TRUE(
      has_line(t, R"(bfd_beacon_check_failures_total{check="proc",type="haproxy-process"} 5)"));
  EXPECT_TRUE(has_line(
      t,
      R"(bfd_beacon_check_duration_seconds_bucket{check="hap",type="haproxy-socket",le="0.005"} 1)"));
  // Event-driven checks have no run time.
  EXPECT_EQ(t.find(R"(bfd_beacon_check_duration_seconds_count{check="proc")"), std::string::npos);
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_haproxy_current_connections{check="hap"} 17)"));
  EXPECT_EQ(count_of(t, "bfd_beacon_haproxy_current_connections{"), 1u);
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_verdict{group="web",verdict="unhealthy"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_verdict{group="web",verdict="healthy"} 0)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_signal{group="web",state="down"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_signal{group="web",state="up"} 0)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_maintenance{group="web"} 0)"));
  // Providers not set: drain 0, reloads 0/0 and no timestamp, no info series.
  EXPECT_TRUE(has_line(t, "bfd_beacon_drain_in_progress 0"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_config_reloads_total{result="success"} 0)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_config_reloads_total{result="failure"} 0)"));
  EXPECT_EQ(t.find("config_last_reload"), std::string::npos);
  EXPECT_EQ(t.find("bfd_beacon_maintenance_info"), std::string::npos);
}

TEST(CollectorTest, ProviderHooksExportReloadDrainAndMaintenance) {
  Sources src;
  src.groups = [] {
    health::GroupStatus g;
    g.name = "web";
    g.decision.verdict = health::Verdict::Healthy;
    g.decision.hold = core::Hold::None;
    return std::vector<health::GroupStatus>{g};
  };
  src.reloads = [] {
    ReloadStatus r;
    r.succeeded = 4;
    r.failed = 1;
    r.last = WallTime(std::chrono::seconds(1'700'000'000));
    r.last_ok = false;
    return r;
  };
  src.drain_in_progress = [] { return true; };
  src.maintenance = [] {
    return std::vector<MaintenanceEntry>{{"web", "kernel update", "alice", "command", {}}};
  };
  Inputs in;
  in.ops = std::make_shared<OpsSnapshot>(gather(src));
  const std::string t = text_of(in);
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_config_reloads_total{result="success"} 4)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_config_reloads_total{result="failure"} 1)"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_config_last_reload_timestamp_seconds 1700000000"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_config_last_reload_successful 0"));
  EXPECT_TRUE(has_line(t, "bfd_beacon_drain_in_progress 1"));
  EXPECT_TRUE(has_line(
      t,
      R"(bfd_beacon_maintenance_info{group="web",reason="kernel update",set_by="alice",source="command"} 1)"));
  EXPECT_TRUE(has_line(t, R"(bfd_beacon_group_maintenance{group="web"} 1)"));
}

TEST(CollectorTest, ProcessSeriesUseTheStandardNames) {
  Inputs in;
  ProcessStats p;
  p.cpu_seconds = 1.5;
  p.resident_bytes = 4096;
  p.virtual_bytes = 8192;
  p.start_time_seconds = 1'800'000'000;
  p.open_fds = 12;
  p.max_fds = 1024;
  p.threads = 5;
  in.process = p;
  const std::string t = text_of(in);
  EXPECT_TRUE(has_line(t, "# TYPE process_cpu_seconds_total counter"));
  EXPECT_TRUE(has_line(t, "process_cpu_seconds_total 1.5"));
  EXPECT_TRUE(has_line(t, "process_resident_memory_bytes 4096"));
  EXPECT_TRUE(has_line(t, "process_virtual_memory_bytes 8192"));
  EXPECT_TRUE(has_line(t, "process_start_time_seconds 1800000000"));
  EXPECT_TRUE(has_line(t, "process_open_fds 12"));
  EXPECT_TRUE(has_line(t, "process_max_fds 1024"));
  EXPECT_TRUE(has_line(t, "process_threads 5"));
}

TEST(ProcessTest, ParsesProcStatWithSpacesInTheName) {
  // Fields 14/15 utime/stime 250/150 ticks, 20 threads 7, 22 starttime 1000
  // ticks, 23 vsize, 24 rss pages.
  const std::string stat =
      "4242 (bfd beacon) (x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 150 0 0 20 0 7 0 1000 "
      "123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
  ProcessStats s;
  ASSERT_TRUE(parse_proc_stat(stat, 100, 4096, 1'700'000'000, s));
  EXPECT_DOUBLE_EQ(s.cpu_seconds, 4.0);
  EXPECT_DOUBLE_EQ(s.threads, 7);
  EXPECT_DOUBLE_EQ(s.start_time_seconds, 1'700'000'010);
  EXPECT_DOUBLE_EQ(s.virtual_bytes, 123456789);
  EXPECT_DOUBLE_EQ(s.resident_bytes, 300.0 * 4096);
  EXPECT_FALSE(parse_proc_stat("garbage", 100, 4096, 0, s));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2", 100, 4096, 0, s));
}

TEST(ProcessTest, ParsesBootTimeAndMaxOpenFiles) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1764633600\nprocesses 9\n"), 1764633600.0);
  EXPECT_FALSE(parse_boot_time("cpu 1\n"));
  const std::string limits =
      "Limit                     Soft Limit           Hard Limit           Units\n"
      "Max processes             63484                63484                processes\n"
      "Max open files            1024                 524288               files\n";
  EXPECT_EQ(parse_max_open_files(limits), 1024.0);
  EXPECT_FALSE(parse_max_open_files("Max open files            unlimited            unlimited\n"));
}

TEST(ProcessTest, ReadsItsOwnProcess) {
  auto s = read_process();
  ASSERT_TRUE(s);
  EXPECT_GT(s->resident_bytes, 0);
  EXPECT_GE(s->virtual_bytes, s->resident_bytes);
  EXPECT_GE(s->threads, 1);
  EXPECT_GT(s->open_fds, 0);
  EXPECT_GE(s->max_fds, s->open_fds);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(s->start_time_seconds, now + 1);
  EXPECT_GT(s->start_time_seconds, now - 3600);
}

}  // namespace
}  // namespace beacon::metrics
