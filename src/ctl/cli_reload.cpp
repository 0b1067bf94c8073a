// bfdctl reload [--wait] [--json]: the request, the human output and the
// wait for removed sessions and Poll sequences (the daemon never waits: the
// client follows reload-status).
#include <chrono>
#include <ostream>
#include <sstream>

#include "beacon/ctl/cli.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

constexpr std::chrono::milliseconds kPollEvery{100};

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> lines_of(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string pending_text(const json& p) {
  const auto removing = p.value("removing", 0);
  const auto polls = p.value("polls", 0);
  std::ostringstream o;
  o << removing << (removing == 1 ? " removed session" : " removed sessions")
    << " still signalling, " << polls << (polls == 1 ? " Poll sequence" : " Poll sequences")
    << " running";
  return o.str();
}

}  // namespace

std::string format_reload(const json& resp) {
  std::ostringstream o;
  const std::string config = text_of(resp, "config");
  o << "reloaded" << (config.empty() ? "" : " " + config);
  if (auto d = resp.find("duration_ms"); d != resp.end() && d->is_number()) {
    o.setf(std::ios::fixed);
    o.precision(1);
    o << " in " << d->get<double>() << " ms";
  }
  o << "\n";
  const std::string summary = text_of(resp, "summary");
  if (!summary.empty()) o << summary << "\n";
  for (const auto& c : lines_of(resp, "changes")) o << "  " << c << "\n";
  for (const auto& w : lines_of(resp, "warnings")) o << "warning: " << w << "\n";
  return o.str();
}

int run_reload(const CtlArgs& a, const Transport& transport, std::ostream& out, std::ostream& err,
               const std::function<void(std::chrono::milliseconds)>& sleep) {
  auto pretty = [](const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); };
  ClientResult r = transport(a.socket, a.request, a.timeout);
  if (r.status != ClientResult::Status::Ok) {
    err << "bfdctl: " << r.error << "\n";
    return kExitUnreachable;
  }
  const json& resp = r.response;
  if (!resp.value("ok", false)) {
    if (a.json) out << pretty(resp) << "\n";
    const auto errors = lines_of(resp, "errors");
    if (errors.empty()) {
      const std::string e = text_of(resp, "error");
      err << "bfdctl: " << (e.empty() ? "reload refused (no reason given)" : e) << "\n";
    } else {
      err << "bfdctl: configuration not reloaded (" << errors.size()
          << (errors.size() == 1 ? " error" : " errors")
          << "); the running configuration stays in force:\n";
      for (const auto& e : errors) err << e << "\n";
    }
    return kExitRefused;
  }
  if (a.json) {
    out << pretty(resp) << "\n";
  } else {
    out << format_reload(resp);
  }
  if (!a.request.value("wait", false) || resp.value("settled", true)) return kExitOk;

  // Follow the daemon until the reload settled, bounded in count and time.
  const auto start = std::chrono::steady_clock::now();
  json pending = resp.value("pending", json::object());
  if (!a.json) out << "waiting: " << pending_text(pending) << "\n" << std::flush;
  const int max_polls = static_cast<int>(kReloadWaitLimit / kPollEvery);
  for (int i = 0; i < max_polls; ++i) {
    sleep(kPollEvery);
    ClientResult s = transport(a.socket, json{{"cmd", "reload-status"}}, a.timeout);
    if (s.status != ClientResult::Status::Ok) {
      err << "bfdctl: " << s.error << "\n";
      return kExitUnreachable;
    }
    if (!s.response.value("ok", false)) {
      err << "bfdctl: " << text_of(s.response, "error") << "\n";
      return kExitRefused;
    }
    pending = s.response.value("progress", json::object());
    if (pending.value("settled", false)) {
      const auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start);
      if (a.json) {
        out << pretty(json{{"settled", true}, {"waited_s", took.count()}}) << "\n";
      } else {
        std::ostringstream o;
        o.setf(std::ios::fixed);
        o.precision(2);
        o << took.count();
        out << "settled after " << o.str() << " s\n";
      }
      return kExitOk;
    }
  }
  if (a.json) {
    out << pretty(json{{"settled", false}, {"pending", pending}}) << "\n";
  }
  err << "bfdctl: gave up waiting after " << kReloadWaitLimit.count() / 1000
      << " s: " << pending_text(pending) << " (the new configuration is in force)\n";
  return kExitRefused;
}

}  // namespace beacon::ctl
