// Fuzz target: the control-protocol parser and command dispatch
// (ctl::Dispatcher::handle) over the unit tests' FakeBackend, holding two
// sessions, once without access control and once with it on and a caller
// that may read but not administer.
//
// Input: request lines separated by '\n' (at most 16), exactly as the
// control server hands them over. Oracle: every response is one line of
// JSON, an object with a boolean "ok".
#include <spdlog/logger.h>

#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "beacon/ctl/protocol.hpp"
#include "fake_backend.hpp"
#include "fuzz_common.hpp"

namespace {

namespace ctl = beacon::ctl;

[[noreturn]] void oracle_failed() {
  std::abort();
}

void check_response(const std::string& out) {
  if (out.find('\n') != std::string::npos) oracle_failed();
  const auto j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) oracle_failed();
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) oracle_failed();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // Built once: a dispatcher keeps no state between requests, and the
  // backend's only state (the recorded holds) is cleared per input.
  static ctl::testing::FakeBackend backend = [] {
    ctl::testing::FakeBackend b;
    b.sessions_.push_back(ctl::testing::sample_session());
    auto second = ctl::testing::sample_session();
    second.peer = "fe80::1%veth0";
    second.group = "db";
    second.state = beacon::core::wire::State::Down;
    b.sessions_.push_back(second);
    return b;
  }();
  static ctl::Dispatcher plain(backend);
  static ctl::Dispatcher guarded = [] {
    ctl::Dispatcher d(backend);
    return d;
  }();
  static const bool guarded_on = [] {
    guarded.enable_access_control(
        ctl::AccessPolicy{ctl::GroupRef{"bfd-read", 100}, ctl::GroupRef{"bfd-admin", 101}},
        beacon::fuzz::null_logger());
    return true;
  }();
  (void)guarded_on;
  backend.calls_.clear();
  // Some inputs make the backend refuse holds, to reach that path too.
  backend.hold_error_ = size % 3 == 1 ? "no session matches" : "";

  ctl::Caller caller;
  caller.credentials.known = true;
  caller.credentials.uid = 1000;
  caller.credentials.gid = 100;
  caller.credentials.pid = 4242;
  caller.credentials.groups = {100};
  caller.user = "fuzz";  // no passwd lookup

  std::size_t start = 0;
  for (int n = 0; n < 16 && start <= input.size(); ++n) {
    const std::size_t nl = input.find('\n', start);
    const std::string_view line =
        input.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    check_response(plain.handle(line));
    check_response(guarded.handle(line, caller));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return 0;
}
