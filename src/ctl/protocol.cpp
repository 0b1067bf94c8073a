// Control protocol v1: request validation and the command registry.
#include "beacon/ctl/protocol.hpp"

#include <spdlog/logger.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <utility>

#include "beacon/core/session.hpp"
#include "beacon/ctl/counters.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

constexpr int kMaxDiag = 31;  // 5-bit field (RFC 5880 §4.1)

std::string quote_name(std::string_view s) {
  // Names echoed in messages: keep them short and printable.
  std::string out = "'";
  for (char c : s.substr(0, 64)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 64) out += "...";
  return out + "'";
}

const json* find_field(const json& req, std::string_view name) {
  auto it = req.find(name);
  return it == req.end() ? nullptr : &*it;
}

std::string required_string(const json& req, std::string_view name) {
  const json* v = find_field(req, name);
  if (v == nullptr) throw RequestError("missing field " + quote_name(name));
  if (!v->is_string()) throw RequestError("field " + quote_name(name) + " must be a string");
  return v->get<std::string>();
}

// Selector: exactly one of "peer", "group", "all":true (engine::Selector).
engine::Selector parse_selector(const json& req) {
  const json* peer = find_field(req, "peer");
  const json* group = find_field(req, "group");
  const json* all = find_field(req, "all");
  int given = (peer != nullptr) + (group != nullptr) + (all != nullptr);
  if (given == 0) throw RequestError("a selector is required: one of 'peer', 'group' or 'all'");
  if (given > 1) throw RequestError("only one selector may be given: 'peer', 'group' or 'all'");
  engine::Selector sel;
  if (all != nullptr) {
    if (!all->is_boolean()) throw RequestError("field 'all' must be a boolean");
    if (!all->get<bool>()) throw RequestError("field 'all' must be true when given");
    sel.kind = engine::Selector::Kind::All;
    return sel;
  }
  sel.kind = peer != nullptr ? engine::Selector::Kind::Peer : engine::Selector::Kind::Group;
  sel.value = required_string(req, peer != nullptr ? "peer" : "group");
  if (sel.value.empty()) {
    throw RequestError(std::string("field ") + (peer != nullptr ? "'peer'" : "'group'") +
                       " must not be empty");
  }
  return sel;
}

struct StateRequest {
  core::Hold hold = core::Hold::None;
  std::string name;
  std::uint8_t diag = 0;
};

StateRequest parse_state(const json& req) {
  StateRequest r;
  r.name = required_string(req, "state");
  if (r.name == "up") {
    r.hold = core::Hold::None;
  } else if (r.name == "down") {
    r.hold = core::Hold::Down;
    r.diag = 5;  // Path Down
  } else if (r.name == "admin-down") {
    r.hold = core::Hold::AdminDown;
    r.diag = 7;  // Administratively Down
  } else {
    throw RequestError("invalid state " + quote_name(r.name) + ": expected up, down or admin-down");
  }
  if (const json* d = find_field(req, "diag")) {
    if (!d->is_number_integer()) throw RequestError("field 'diag' must be an integer");
    if (r.hold == core::Hold::None) {
      throw RequestError("field 'diag' is not allowed with state 'up' (up releases the hold)");
    }
    // Compare as signed 64-bit first so huge or negative values stay errors.
    bool in_range = d->is_number_unsigned()
                        ? d->get<std::uint64_t>() <= kMaxDiag
                        : (d->get<std::int64_t>() >= 0 && d->get<std::int64_t>() <= kMaxDiag);
    if (!in_range) throw RequestError("diag " + d->dump() + " out of range 0..31");
    r.diag = static_cast<std::uint8_t>(d->get<std::int64_t>());
  }
  return r;
}

// Audit values: short and printable, so a client cannot forge or flood log
// lines through its request fields.
constexpr std::size_t kAuditMaxString = 64;
constexpr std::size_t kAuditMaxFields = 16;

std::string printable(std::string_view s, std::size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > max) out += "...";
  return out;
}

// A field whose value must never reach a log file. No command takes one
// today; the rule is here so that a future one cannot leak by accident.
bool secret_field(std::string_view key) {
  std::string k;
  for (char c : key) k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (std::string_view word : {"pass", "secret", "token", "credential", "auth"}) {
    if (k.find(word) != std::string::npos) return true;
  }
  return false;
}

json audit_value(std::string_view key, const json& v) {
  if (secret_field(key)) return "<redacted>";
  if (v.is_string()) return printable(v.get_ref<const std::string&>(), kAuditMaxString);
  if (v.is_array()) return "<array of " + std::to_string(v.size()) + ">";
  if (v.is_object()) return "<object of " + std::to_string(v.size()) + " fields>";
  return v;  // number, boolean, null
}

}  // namespace

std::string audit_line(const PeerCredentials& who, std::string_view user, std::string_view cmd,
                       const json& request, std::string_view result) {
  json args = json::object();
  std::size_t skipped = 0;
  if (request.is_object()) {
    for (const auto& [key, value] : request.items()) {
      if (key == "cmd" || key == "reason") continue;
      if (args.size() >= kAuditMaxFields) {
        ++skipped;
        continue;
      }
      args[printable(key, 32)] = audit_value(key, value);
    }
  }
  if (skipped > 0) args["..."] = std::to_string(skipped) + " more fields";
  std::string line = "audit: uid=";
  line += who.known ? std::to_string(who.uid) : "?";
  line += " user=" + printable(user.empty() ? "?" : user, 32);
  line += " pid=";
  line += who.known ? std::to_string(who.pid) : "?";
  line += " cmd=" + printable(cmd, 64);
  // ASCII-only JSON: quotes and control bytes are escaped, never raw.
  line += " args=" + args.dump(-1, ' ', true, json::error_handler_t::replace);
  if (request.is_object()) {
    auto it = request.find("reason");
    if (it != request.end()) {
      json reason = it->is_string() ? json(printable(it->get_ref<const std::string&>(), 200))
                                    : audit_value("reason", *it);
      line += " reason=" + reason.dump(-1, ' ', true, json::error_handler_t::replace);
    }
  }
  line += " result=";
  line += printable(result, 300);
  return line;
}

std::string dump_json(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_response(std::string_view message) {
  return json{{"ok", false}, {"error", std::string(message)}};
}

Dispatcher::Dispatcher(Backend& backend) {
  add("sessions", {[&backend](const json&) {
                     json list = json::array();
                     for (const auto& s : backend.sessions()) list.push_back(session_to_json(s));
                     return json{{"sessions", std::move(list)}};
                   },
                   {},
                   Access::Read});
  add("stats", {[&backend](const json&) {
                  return json{{"stats", stats_to_json(backend.stats())}};
                },
                {},
                Access::Read});
  add("version", {[](const json&) {
                    return json{{"daemon", "bfd-beacon"},
                                {"version", BEACON_VERSION},
                                {"protocol", kProtocolVersion}};
                  },
                  {},
                  Access::Read});
  register_counters_command(*this, backend);
  add("session-set-state",
      {[&backend](const json& req) {
         StateRequest st = parse_state(req);
         engine::Selector sel = parse_selector(req);
         engine::HoldResult res =
             backend.set_hold(engine::HoldSource::Admin, sel, st.hold, st.diag);
         if (!res.error.empty()) throw RequestError(res.error);
         json out{{"matched", res.matched}, {"state", st.name}, {"hold", core::hold_name(st.hold)}};
         if (st.hold != core::Hold::None) out["diag"] = st.diag;
         return out;
       },
       {"state", "diag", "peer", "group", "all"},
       Access::Admin});
}

void Dispatcher::add(std::string name, Command command) {
  commands_[std::move(name)] = std::move(command);
}

std::vector<std::string> Dispatcher::command_names() const {
  std::vector<std::string> names;
  for (const auto& [name, cmd] : commands_) names.push_back(name);
  return names;
}

std::optional<Access> Dispatcher::command_access(std::string_view name) const {
  auto it = commands_.find(name);
  if (it == commands_.end()) return std::nullopt;
  return it->second.access;
}

void Dispatcher::enable_access_control(AccessPolicy policy, std::shared_ptr<spdlog::logger> audit) {
  policy_ = std::move(policy);
  audit_ = std::move(audit);
}

std::string Dispatcher::handle(std::string_view line) {
  try {
    return dump_json(handle_json(line));
  } catch (...) {
    return R"({"ok":false,"error":"internal error: response could not be built"})";
  }
}

std::string Dispatcher::handle(std::string_view line, Caller& caller) {
  try {
    return dump_json(handle_json(line, &caller));
  } catch (...) {
    // Last line of defence (e.g. out of memory while serialising): the caller
    // still gets one well-formed response line and the loop goes on.
    return R"({"ok":false,"error":"internal error: response could not be built"})";
  }
}

json Dispatcher::handle_json(std::string_view line, Caller* caller) {
  try {
    return handle_request(line, caller);
  } catch (const std::exception& e) {
    return error_response(std::string("internal error: ") + e.what());
  } catch (...) {
    return error_response("internal error");
  }
}

json Dispatcher::handle_request(std::string_view line, Caller* caller) {
  json req;
  try {
    req = json::parse(line.begin(), line.end());
  } catch (const json::exception& e) {
    // Every parser failure, not only syntax errors: a number that overflows a
    // double is out_of_range (406), and it is as much the client's fault.
    return error_response(std::string("invalid JSON: ") + e.what());
  }
  if (!req.is_object()) return error_response("request must be a JSON object");

  json id;
  if (const json* v = find_field(req, "id")) {
    // Only scalars are echoed: a deeply nested id would be costly to serialise.
    if (!v->is_string() && !v->is_number_integer()) {
      return error_response("field 'id' must be a string or an integer");
    }
    id = *v;
  }
  auto respond = [&id](json body) {
    if (!id.is_null()) body["id"] = id;
    return body;
  };

  const json* cmd = find_field(req, "cmd");
  if (cmd == nullptr) return respond(error_response("missing field 'cmd'"));
  if (!cmd->is_string()) return respond(error_response("field 'cmd' must be a string"));
  const auto& name = cmd->get_ref<const std::string&>();
  auto it = commands_.find(name);
  if (it == commands_.end()) {
    std::string known;
    for (const auto& [n, c] : commands_) known += (known.empty() ? "" : ", ") + n;
    return respond(
        error_response("unknown command " + quote_name(name) + " (known: " + known + ")"));
  }
  const Command& command = it->second;
  std::string result;
  json out = run_command(command, name, req, caller, result);
  // `result` is set only when access control refused the request.
  if (after_change_ && command.access == Access::Admin && result.empty()) {
    try {
      after_change_();
    } catch (...) {  // a failing hook never costs the caller the answer
    }
  }
  if (audit_ && command.access == Access::Admin) {
    if (result.empty() && out.value("ok", false)) {
      result = "ok";
    } else if (result.empty()) {
      const json* err = find_field(out, "error");
      result = err != nullptr && err->is_string() ? "error: " + err->get<std::string>() : "error";
    }
    PeerCredentials unknown;
    const PeerCredentials& who = caller != nullptr ? caller->credentials : unknown;
    std::string user = "?";
    if (caller != nullptr && who.known) {
      if (caller->user.empty()) caller->user = user_name(who.uid);
      user = caller->user;
    }
    audit_->info("{}", audit_line(who, user, name, req, result));
  }
  return respond(std::move(out));
}

// Permission, then fields, then the handler. Sets `result` only for a
// permission refusal ("refused: ..."); the caller derives the rest.
json Dispatcher::run_command(const Command& command, std::string_view name, const json& req,
                             Caller* caller, std::string& result) {
  if (audit_) {
    // Checked before the fields: a caller without the right learns nothing
    // from a command's validation messages.
    PeerCredentials unknown;
    AccessDecision d =
        decide(policy_, caller != nullptr ? caller->credentials : unknown, command.access);
    if (!d.allowed) {
      result = "refused: " + d.message;
      return error_response(d.message);
    }
  }
  for (const auto& [key, value] : req.items()) {
    if (key == "cmd" || key == "id") continue;
    if (std::find(command.fields.begin(), command.fields.end(), key) == command.fields.end()) {
      return error_response("unknown field " + quote_name(key) + " for command " +
                            quote_name(name));
    }
  }

  try {
    json body = command.caller_handler ? command.caller_handler(req, caller) : command.handler(req);
    if (!body.is_object()) body = json::object();
    json out{{"ok", true}};
    out.update(body);
    return out;
  } catch (const RequestError& e) {
    return error_response(e.what());
  } catch (const std::exception& e) {
    return error_response(std::string("internal error: ") + e.what());
  } catch (...) {
    return error_response("internal error");
  }
}

}  // namespace beacon::ctl
