// bfdctl commands that need more than "send, print": the peer filter of
// `sessions`, `version` (which answers even without a daemon) and
// `check-config` (which never needs one).
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <charconv>
#include <cstdlib>
#include <ostream>

#include "beacon/config/config.hpp"
#include "beacon/util/address_text.hpp"
#include "cli_impl.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

CtlParse usage(std::string message) {
  return CtlParse{std::nullopt, std::move(message)};
}

std::string pretty(const json& j) {
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

std::string count_of(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

CtlEnv CtlEnv::from_process() {
  CtlEnv env;
  env.out_tty = ::isatty(STDOUT_FILENO) == 1;
  if (const char* v = std::getenv("NO_COLOR")) env.no_color = v;
  if (env.out_tty && ::isatty(STDIN_FILENO) == 1) {
    env.tty_in_fd = STDIN_FILENO;
    env.tty_out_fd = STDOUT_FILENO;
  }
  return env;
}

std::string check_peer_filter(const std::string& text) {
  std::string addr = text;
  bool scoped = false;
  if (auto pct = text.find('%'); pct != std::string::npos) {
    addr = text.substr(0, pct);
    scoped = pct + 1 < text.size();
    if (!scoped) addr.clear();  // "fe80::1%" names no interface
  }
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(addr, ec);
  if (!ec && (!scoped || util::is_link_local(a))) return {};
  return "unexpected argument " + text +
         " (sessions takes one optional peer address, e.g. 198.18.0.1 or fe80::1%veth0)";
}

json filter_sessions(const json& sessions, const std::string& peer) {
  json out = json::array();
  if (!sessions.is_array()) return out;
  for (const auto& s : sessions) {
    if (!s.is_object()) continue;
    auto it = s.find("peer");
    if (it != s.end() && it->is_string() && it->get_ref<const std::string&>() == peer) {
      out.push_back(s);
    }
  }
  return out;
}

CtlParse build_check_config(CtlArgs& out, const std::vector<std::string>& positionals) {
  if (positionals.size() < 2) return usage("check-config needs a FILE to check");
  if (positionals.size() > 2) return usage("unexpected argument " + positionals[2]);
  if (positionals[1].empty()) return usage("check-config needs a FILE to check");
  out.command = CtlArgs::Command::CheckConfig;
  out.config_file = positionals[1];
  return CtlParse{out, {}};
}

CtlParse build_watch(CtlArgs& out, const std::vector<std::string>& positionals,
                     const std::optional<std::string>& interval,
                     const std::optional<std::string>& count) {
  if (positionals.size() > 1) return usage("unexpected argument " + positionals[1]);
  if (interval) {
    auto d = config::parse_duration(*interval);
    // Below 100 ms a refresh costs the daemon more than anyone can read.
    if (!d || *d < std::chrono::milliseconds(100) || *d > std::chrono::hours(1)) {
      return usage("invalid --interval '" + *interval + "' (expected 100ms to 1h, e.g. 2s)");
    }
    out.interval = std::chrono::ceil<std::chrono::milliseconds>(*d);
  }
  if (count) {
    std::uint64_t n = 0;
    const char* end = count->data() + count->size();
    auto [p, ec] = std::from_chars(count->data(), end, n);
    if (count->empty() || ec != std::errc() || p != end || n == 0 || n > 1'000'000'000) {
      return usage("invalid --count '" + *count + "' (expected a positive number of refreshes)");
    }
    out.count = n;
  }
  out.command = CtlArgs::Command::Watch;
  out.request = json{{"cmd", "sessions"}};
  return CtlParse{out, {}};
}

int run_check_config(const CtlArgs& a, std::ostream& out, std::ostream& err) {
  config::LoadResult r = config::load_file(a.config_file);
  const bool ok = r.errors.empty() && r.config.has_value();
  if (a.json) {
    json errors = json::array();
    for (const auto& e : r.errors) {
      errors.push_back(
          {{"file", e.file}, {"line", e.line}, {"column", e.column}, {"message", e.message}});
    }
    json doc{{"ok", ok}, {"file", a.config_file}, {"errors", std::move(errors)}};
    if (ok) {
      const config::Config& c = *r.config;
      doc["summary"] = {{"sessions", c.sessions.size()},
                        {"accept_rules", c.accepts.size()},
                        {"checks", c.checks.size()},
                        {"groups", c.groups.size()}};
    }
    out << pretty(doc) << "\n";
    return ok ? kExitOk : kExitRefused;
  }
  if (!ok) {
    for (const auto& e : r.errors) err << e.format() << "\n";
    if (r.errors.empty()) err << a.config_file << ": configuration could not be loaded\n";
    return kExitRefused;
  }
  const config::Config& c = *r.config;
  out << a.config_file << ": OK\n"
      << count_of(c.sessions.size(), "session", "sessions") << ", "
      << count_of(c.accepts.size(), "accept rule", "accept rules") << ", "
      << count_of(c.checks.size(), "check", "checks") << ", "
      << count_of(c.groups.size(), "group", "groups") << "\n";
  return kExitOk;
}

int print_version(const CtlArgs& a, const ClientResult& r, std::ostream& out, std::ostream& err) {
  const bool reached = r.status == ClientResult::Status::Ok;
  const bool ok = reached && r.response.value("ok", false);
  if (a.json) {
    // The daemon's answer as it came, plus bfdctl's own version.
    json doc = ok ? r.response : json::object();
    doc["bfdctl_version"] = BEACON_VERSION;
    out << pretty(doc) << "\n";
  } else {
    out << "bfdctl " << BEACON_VERSION << "\n";
  }
  if (!reached) {
    err << "bfdctl: " << r.error << "\n";
    return kExitUnreachable;
  }
  if (!ok) {
    auto it = r.response.find("error");
    err << "bfdctl: "
        << (it != r.response.end() && it->is_string() ? it->get<std::string>()
                                                      : std::string("request refused"))
        << "\n";
    return kExitRefused;
  }
  if (!a.json) {
    auto v = r.response.find("version");
    auto p = r.response.find("protocol");
    out << "bfd-beacon "
        << (v != r.response.end() && v->is_string() ? v->get<std::string>() : "unknown")
        << " (control protocol " << (p != r.response.end() ? p->dump() : "?") << ")\n";
  }
  return kExitOk;
}

}  // namespace beacon::ctl
