// bfdctl's human form of "counters" (see counters.hpp). Every field is read
// defensively: a missing or mistyped one prints "-" or is skipped.
#include <string>
#include <vector>

#include "beacon/ctl/counters.hpp"
#include "beacon/ctl/style.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;
using Rows = std::vector<std::vector<std::string>>;

std::string field_text(const json& obj, const char* key) {
  if (!obj.is_object()) return "-";
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string() || it->get_ref<const std::string&>().empty()) return "-";
  return it->get<std::string>();
}

std::string count_text(const json& obj, const char* key) {
  if (!obj.is_object()) return "-";
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_unsigned() ? std::to_string(it->get<std::uint64_t>())
                                                     : "-";
}

std::uint64_t count_of(const json& v) {
  return v.is_number_unsigned() ? v.get<std::uint64_t>() : 0;
}

// The first row is the header; the layout is every bfdctl table's.
std::string aligned(const Rows& rows) {
  Table t;
  for (const auto& r : rows) t.add(r);
  return t.render();
}

const json& member(const json& obj, const char* key) {
  static const json kEmpty = json::object();
  if (!obj.is_object()) return kEmpty;
  auto it = obj.find(key);
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

}  // namespace

std::string format_counters(const json& response) {
  const json sessions =
      response.is_object() && response.contains("sessions") && response["sessions"].is_array()
          ? response["sessions"]
          : json::array();
  Rows main{{"PEER", "GROUP", "STATE", "RX", "TX", "FLAPS", "TIMEOUT", "PEER-DOWN",
             "PEER-ADMIN-DOWN", "LOCAL-HOLD"}};
  Rows transitions{{"PEER", "FROM", "TO", "COUNT"}};
  Rows drops{{"PEER", "REASON", "COUNT"}};
  for (const auto& s : sessions) {
    const std::string peer = field_text(s, "peer");
    const json& packets = member(s, "packets");
    const json& flaps = member(s, "flaps");
    std::uint64_t total = 0;
    for (const auto& [cause, n] : flaps.items()) total += count_of(n);
    main.push_back({peer, field_text(s, "group"), field_text(s, "state"), count_text(packets, "rx"),
                    count_text(packets, "tx"), std::to_string(total), count_text(flaps, "timeout"),
                    count_text(flaps, "peer-down"), count_text(flaps, "peer-admin-down"),
                    count_text(flaps, "local-hold")});
    for (const auto& [from, to_map] : member(s, "transitions").items()) {
      if (!to_map.is_object()) continue;
      for (const auto& [to, n] : to_map.items()) {
        if (count_of(n) > 0) transitions.push_back({peer, from, to, std::to_string(count_of(n))});
      }
    }
    for (const auto& [reason, n] : member(s, "drops").items()) {
      if (count_of(n) > 0) drops.push_back({peer, reason, std::to_string(count_of(n))});
    }
  }
  for (const auto& [reason, n] : member(member(response, "engine"), "drops").items()) {
    if (count_of(n) > 0)
      drops.push_back({"(all, engine-wide)", reason, std::to_string(count_of(n))});
  }
  std::string out = sessions.empty() ? "no sessions\n" : aligned(main);
  out += "\n";
  out += transitions.size() > 1 ? aligned(transitions) : "no state transitions\n";
  out += "\n";
  out += drops.size() > 1 ? aligned(drops) : "no drops\n";
  return out;
}

}  // namespace beacon::ctl
