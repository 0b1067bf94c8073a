// Control protocol v1: request validation and the command registry.
#include "beacon/ctl/protocol.hpp"

#include <algorithm>
#include <exception>
#include <utility>

#include "beacon/core/session.hpp"

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

}  // namespace

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
                   {}});
  add("stats", {[&backend](const json&) {
                  return json{{"stats", stats_to_json(backend.stats())}};
                },
                {}});
  add("version", {[](const json&) {
                    return json{{"daemon", "bfd-beacon"},
                                {"version", BEACON_VERSION},
                                {"protocol", kProtocolVersion}};
                  },
                  {}});
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
       {"state", "diag", "peer", "group", "all"}});
}

void Dispatcher::add(std::string name, Command command) {
  commands_[std::move(name)] = std::move(command);
}

std::vector<std::string> Dispatcher::command_names() const {
  std::vector<std::string> names;
  for (const auto& [name, cmd] : commands_) names.push_back(name);
  return names;
}

std::string Dispatcher::handle(std::string_view line) {
  try {
    return dump_json(handle_json(line));
  } catch (...) {
    // Last line of defence (e.g. out of memory while serialising): the caller
    // still gets one well-formed response line and the loop goes on.
    return R"({"ok":false,"error":"internal error: response could not be built"})";
  }
}

json Dispatcher::handle_json(std::string_view line) {
  try {
    return handle_request(line);
  } catch (const std::exception& e) {
    return error_response(std::string("internal error: ") + e.what());
  } catch (...) {
    return error_response("internal error");
  }
}

json Dispatcher::handle_request(std::string_view line) {
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
  for (const auto& [key, value] : req.items()) {
    if (key == "cmd" || key == "id") continue;
    if (std::find(command.fields.begin(), command.fields.end(), key) == command.fields.end()) {
      return respond(
          error_response("unknown field " + quote_name(key) + " for command " + quote_name(name)));
    }
  }

  try {
    json body = command.handler(req);
    if (!body.is_object()) body = json::object();
    json out{{"ok", true}};
    out.update(body);
    return respond(std::move(out));
  } catch (const RequestError& e) {
    return respond(error_response(e.what()));
  } catch (const std::exception& e) {
    return respond(error_response(std::string("internal error: ") + e.what()));
  } catch (...) {
    return respond(error_response("internal error"));
  }
}

}  // namespace beacon::ctl
