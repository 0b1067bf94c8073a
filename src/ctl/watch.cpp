// `bfdctl watch`: the frame (pure), fetching one refresh from the daemon, and
// the plain loop used when there is no terminal. The terminal loop is in
// watch_tty.cpp.
#include "beacon/ctl/watch.hpp"

#include <algorithm>
#include <array>
#include <ctime>
#include <map>
#include <ostream>
#include <thread>

#include "beacon/ctl/format.hpp"
#include "cli_impl.hpp"
#include "watch_impl.hpp"

namespace beacon::ctl {
namespace {

using nlohmann::json;

// One table of the frame: its lines are the header, the first `shown` rows,
// and "... N more" when rows were left out.
struct Section {
  std::string title;  // "sessions", for "... 3 more sessions"
  Table table;
  std::string error;  // the request was refused: one line instead of the table
  std::string empty;  // line when there are no rows
  std::size_t shown = 0;

  std::size_t cost() const {
    if (!error.empty() || table.rows() == 0) return 1;
    return 1 + shown + (shown < table.rows() ? 1 : 0);
  }
  std::vector<std::string> lines() const {
    if (!error.empty()) return {title + ": " + error};
    if (table.rows() == 0) return {empty};
    std::vector<std::string> out = table.lines(shown);
    if (shown < table.rows()) {
      out.push_back("... " + std::to_string(table.rows() - shown) + " more " + title);
    }
    return out;
  }
};

// Shrinks the largest section, one row at a time, until the sections fit in
// `budget` lines (or nothing more can go).
void fit(std::vector<Section>& sections, std::size_t budget) {
  auto total = [&] {
    std::size_t n = 0;
    for (const auto& s : sections) n += s.cost();
    return n;
  };
  while (total() > budget) {
    Section* largest = nullptr;
    for (auto& s : sections) {
      if (s.shown > 0 && (largest == nullptr || s.shown > largest->shown)) largest = &s;
    }
    if (largest == nullptr) return;
    --largest->shown;
  }
}

// "3 sessions: 2 Up, 1 Down" from the values of `key` in `list`, in the
// order first seen, each painted by `colour`.
std::string tally(const json& list, const char* key, const char* noun, const Style& style,
                  Colour (*colour)(std::string_view)) {
  std::vector<std::pair<std::string, std::size_t>> counts;
  std::size_t n = 0;
  if (list.is_array()) {
    for (const auto& e : list) {
      if (!e.is_object()) continue;
      ++n;
      auto it = e.find(key);
      std::string v = it != e.end() && it->is_string() ? it->get<std::string>() : "?";
      auto c = std::find_if(counts.begin(), counts.end(), [&](auto& p) { return p.first == v; });
      if (c == counts.end()) {
        counts.emplace_back(v, 1);
      } else {
        ++c->second;
      }
    }
  }
  std::string out = std::to_string(n) + " " + noun;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    out += (i == 0 ? ": " : ", ") + std::to_string(counts[i].second) + " " +
           style.paint(counts[i].first, colour(counts[i].first));
  }
  return out;
}

std::vector<std::string> head(const WatchData& d, const FrameOptions& o) {
  // The source last: a long socket path is what a narrow terminal cuts.
  std::string first = utc_timestamp(o.now);
  if (!o.refresh.empty()) first += "  " + o.refresh;
  if (o.interactive) first += "  (q: quit)";
  if (!o.source.empty()) first += "  " + o.source;
  if (!d.reachable) {
    return {o.style.paint(first, Colour::Bold),
            o.style.paint("daemon unreachable, retrying: " + d.error, Colour::Red)};
  }
  return {o.style.paint(first, Colour::Bold),
          tally(d.groups, "verdict", "groups", o.style, verdict_colour) + " | " +
              tally(d.sessions, "state", "sessions", o.style, state_colour) + " | " +
              tally(d.checks, "state", "checks", o.style, verdict_colour)};
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf.data();
}

std::vector<std::string> render_watch_frame(const WatchData& d, const FrameOptions& o) {
  std::vector<std::string> out = head(d, o);
  if (d.reachable) {
    std::vector<Section> sections;
    sections.push_back(
        {"groups", groups_table(d.groups, o.style), d.groups_error, "no health groups"});
    sections.push_back(
        {"sessions", sessions_table(d.sessions, o.style, true), d.sessions_error, "no sessions"});
    sections.push_back(
        {"checks", checks_table(d.checks, o.style), d.checks_error, "no health checks"});
    for (auto& s : sections) s.shown = s.table.rows();
    // A blank line before each section.
    const std::size_t fixed = out.size() + sections.size();
    if (o.rows > 0) fit(sections, o.rows > fixed ? o.rows - fixed : 0);
    for (const auto& s : sections) {
      out.emplace_back();
      for (auto& l : s.lines()) out.push_back(std::move(l));
    }
  }
  if (o.rows > 0 && out.size() > o.rows) out.resize(o.rows);
  if (o.cols > 0) {
    for (auto& l : out) l = truncate_visible(l, o.cols);
  }
  return out;
}

// ---------------------------------------------------------------- fetching

WatchData fetch_watch_data(const Transport& transport, const CtlArgs& a) {
  WatchData d;
  struct Part {
    const char* cmd;
    json* list;
    std::string* error;
  };
  const std::array<Part, 3> parts{{{"groups", &d.groups, &d.groups_error},
                                   {"sessions", &d.sessions, &d.sessions_error},
                                   {"checks", &d.checks, &d.checks_error}}};
  for (const Part& p : parts) {
    ClientResult r = transport(a.socket, json{{"cmd", p.cmd}}, a.timeout);
    if (r.status != ClientResult::Status::Ok) {
      d = WatchData{};
      d.reachable = false;
      d.error = r.error;
      return d;
    }
    if (!r.response.value("ok", false)) {
      auto it = r.response.find("error");
      *p.error = it != r.response.end() && it->is_string() ? it->get<std::string>() : "refused";
      continue;
    }
    auto it = r.response.find(p.cmd);
    *p.list = it != r.response.end() && it->is_array() ? *it : json::array();
  }
  return d;
}

std::string refresh_text(std::chrono::milliseconds interval) {
  return "every " + format_interval_us(std::chrono::microseconds(interval).count());
}

// ---------------------------------------------------------------- plain loop

namespace {

// --json: one object per refresh on one line (JSON lines), the daemon's arrays
// as they came; a refused part is null with its error.
std::string watch_json_line(const WatchData& d, std::chrono::system_clock::time_point now) {
  json j{{"time", utc_timestamp(now)}, {"reachable", d.reachable}};
  if (!d.reachable) {
    j["error"] = d.error;
  } else {
    j["groups"] = d.groups;
    j["sessions"] = d.sessions;
    j["checks"] = d.checks;
    json errors = json::object();
    if (!d.groups_error.empty()) errors["groups"] = d.groups_error;
    if (!d.sessions_error.empty()) errors["sessions"] = d.sessions_error;
    if (!d.checks_error.empty()) errors["checks"] = d.checks_error;
    if (!errors.empty()) j["errors"] = std::move(errors);
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// One block per refresh (a timestamp line first, a blank line after), until
// --count blocks were printed, the output fails, or the process is killed.
int run_watch_plain(const CtlArgs& a, const Transport& transport, std::ostream& out,
                    const CtlEnv& env) {
  const Style style = Style::detect(env.out_tty, env.no_color);
  bool reached = false;
  for (std::uint64_t i = 0; !a.count || i < *a.count; ++i) {
    if (i > 0) {
      if (env.sleep) {
        env.sleep(a.interval);
      } else {
        std::this_thread::sleep_for(a.interval);
      }
    }
    WatchData d = fetch_watch_data(transport, a);
    reached = d.reachable;
    const auto now = env.now ? env.now() : std::chrono::system_clock::now();
    if (a.json) {
      out << watch_json_line(d, now) << "\n" << std::flush;
      if (!out) return kExitRefused;
      continue;
    }
    FrameOptions fo;
    fo.style = style;
    fo.now = now;
    fo.source = a.socket;
    fo.refresh = refresh_text(a.interval);
    for (const auto& line : render_watch_frame(d, fo)) out << line << "\n";
    out << "\n";
    out.flush();
    if (!out) return kExitRefused;  // e.g. the reader of a pipe went away
  }
  return reached ? kExitOk : kExitUnreachable;
}

}  // namespace

int run_watch(const CtlArgs& a, const Transport& transport, std::ostream& out, std::ostream& err,
              const CtlEnv& env) {
  // --json is for programs: JSON lines even on a terminal.
  if (env.tty_in_fd >= 0 && env.tty_out_fd >= 0 && !a.json) {
    return run_watch_tty(a, transport, out, err, env);
  }
  return run_watch_plain(a, transport, out, env);
}

}  // namespace beacon::ctl
