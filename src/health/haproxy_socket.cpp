// haproxy-socket probe: HAProxy Runtime API on a UNIX stream socket.
//
// Each run opens a connection, sends "show info\n" and reads until HAProxy
// closes (non-interactive mode: one command per connection). When a backend
// is configured, a second connection sends "show stat <backend> -1 -1\n" and
// counts that backend's servers whose status starts with "UP" (including
// "UP 1/3", still in service while going down) or is "no check" (HAProxy
// routes to unchecked servers). One deadline (CheckSpec::timeout) covers the
// whole run. Pid / Start_time_sec are remembered from the last answer to
// "show info"; a change sets Result::reloaded but is not a failure.
//
// One run at a time: run() while one is outstanding finishes the old one as
// Fail "superseded". Thread: everything runs on the io_context's thread.
#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "polled_probe_impl.hpp"
#include "probes_impl.hpp"

namespace beacon::health {
namespace {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

constexpr std::size_t kMaxAnswer = 4 * 1024 * 1024;  // bytes; "show stat" of one backend
constexpr std::size_t kMaxReasonText = 120;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\n'))
    s.remove_suffix(1);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return out;
    s.remove_prefix(pos + 1);
  }
}

std::string first_line(std::string_view text) {
  auto line = trim(text.substr(0, text.find('\n')));
  if (line.size() > kMaxReasonText) line = line.substr(0, kMaxReasonText);
  return line.empty() ? std::string("(empty)") : std::string(line);
}

// "Key: value" lines of "show info".
std::map<std::string, std::string, std::less<>> parse_info(std::string_view text) {
  std::map<std::string, std::string, std::less<>> kv;
  for (auto line : split(text, '\n')) {
    auto colon = line.find(": ");
    if (colon == std::string_view::npos) continue;
    kv.emplace(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 2))));
  }
  return kv;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// HAProxy proxy names: letters, digits, '-', '_', '.', ':'. Anything else
// could smuggle a second command (';', newline) into the request.
bool valid_proxy_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

struct BackendCount {
  bool found = false;
  std::uint32_t up = 0, total = 0;
};

// CSV of "show stat": "# pxname,svname,...,status,..." then one row per
// frontend / server / backend. Calls row(cols) for each data row that has
// every column of `wanted` (their indexes in `idx`, same order); false when
// the header lacks one of them.
template <std::size_t N, class Row>
bool for_each_stat_row(std::string_view text, const std::array<std::string_view, N>& wanted,
                       Row&& row) {
  auto lines = split(text, '\n');
  if (lines.empty() || !lines[0].starts_with("# ")) return false;
  auto header = split(lines[0].substr(2), ',');
  std::array<std::size_t, N> idx{};
  for (std::size_t w = 0; w < N; ++w) {
    auto it = std::find(header.begin(), header.end(), wanted[w]);
    if (it == header.end()) return false;
    idx[w] = static_cast<std::size_t>(it - header.begin());
  }
  const std::size_t need = *std::max_element(idx.begin(), idx.end());
  for (std::size_t l = 1; l < lines.size(); ++l) {
    auto cols = split(trim(lines[l]), ',');
    if (cols.size() <= need) continue;
    std::array<std::string_view, N> v;
    for (std::size_t w = 0; w < N; ++w) v[w] = cols[idx[w]];
    row(v);
  }
  return true;
}

std::optional<BackendCount> count_servers(std::string_view text, std::string_view backend) {
  BackendCount c;
  static constexpr std::array<std::string_view, 3> kCols = {"pxname", "svname", "status"};
  const bool ok = for_each_stat_row(text, kCols, [&](const auto& v) {
    if (v[0] != backend) return;
    if (v[1] == "BACKEND") c.found = true;
    if (v[1] == "BACKEND" || v[1] == "FRONTEND") return;
    ++c.total;
    if (v[2].starts_with("UP") || v[2] == "no check") ++c.up;
  });
  if (!ok) return std::nullopt;
  return c;
}

}  // namespace

std::optional<FrontendConnections> sum_frontend_connections(std::string_view show_stat,
                                                            const std::vector<std::string>& only) {
  FrontendConnections f;
  bool bad = false;
  std::vector<bool> seen(only.size(), false);
  static constexpr std::array<std::string_view, 3> kCols = {"pxname", "svname", "scur"};
  const bool ok = for_each_stat_row(show_stat, kCols, [&](const auto& v) {
    if (v[1] != "FRONTEND") return;
    if (!only.empty()) {
      const auto it = std::find(only.begin(), only.end(), v[0]);
      if (it == only.end()) return;
      seen[static_cast<std::size_t>(it - only.begin())] = true;
    }
    auto n = to_u64(v[2]);
    if (!n) {
      bad = true;
      return;
    }
    f.current += *n;
    ++f.frontends;
  });
  if (!ok || bad) return std::nullopt;
  for (std::size_t i = 0; i < only.size(); ++i) {
    if (!seen[i]) f.missing.push_back(only[i]);
  }
  return f;
}

namespace {

class SocketImpl : public std::enable_shared_from_this<SocketImpl>,
                   public detail::PolledRun<SocketImpl> {
 public:
  // `frontends`: count connections (drain) over these frontends (empty:
  // all) instead of checking a backend.
  SocketImpl(const boost::asio::any_io_executor& io, const config::CheckSpec& spec,
             std::optional<std::vector<std::string>> frontends = std::nullopt)
      : PolledRun(io, spec), frontends_(std::move(frontends)), spec_(spec), retry_timer_(io) {}

  void run(ResultFn done) {
    begin_run(std::move(done));
    result_ = Result{};
    retries_ = 0;
    if (spec_.socket.empty()) return post_fail("no socket configured");
    if (!spec_.backend.empty() && !valid_proxy_name(spec_.backend)) {
      return post_fail("invalid backend name \"" + first_line(spec_.backend) + "\"");
    }
    arm_deadline();
    begin();
  }

 private:
  friend class detail::PolledRun<SocketImpl>;
  using AnswerFn = std::function<void(std::string_view)>;

  void begin() {
    query("show info\n", [this](std::string_view answer) { on_info(answer); });
  }

  // During a reload HAProxy's runtime socket changes hands: the new process
  // binds it (rename over the path) while the old one closes, so a connection
  // can be refused or reset, or land on the old process as it stops. Such a
  // failure is retried on a fresh connection while the run's timeout leaves
  // room, and counts only if it persists.
  void retry_or_fail(std::string reason) {
    const auto elapsed = detail::since(started_);
    const core::Duration delay = detail::retry_delay(retries_);
    if (elapsed + delay + detail::kRetryMin >= timeout_) {
      return fail(reason + detail::retries_text(retries_));
    }
    ++retries_;
    last_retry_reason_ = reason;
    boost::system::error_code ec;
    if (socket_) socket_->close(ec);
    socket_.reset();
    retry_timer_.expires_after(delay);
    retry_timer_.async_wait(
        [self = shared_from_this(), gen = generation_](boost::system::error_code tec) {
          if (tec || gen != self->generation_) return;
          self->begin();
        });
  }

  static bool transient(const boost::system::error_code& ec) {
    return ec == asio::error::connection_refused || ec == asio::error::connection_reset ||
           ec == asio::error::broken_pipe || ec == asio::error::try_again || ec == asio::error::eof;
  }

  // PolledRun hooks.
  void stop_io() {
    boost::system::error_code ec;
    retry_timer_.cancel();
    if (socket_) socket_->close(ec);
    socket_.reset();
  }
  Result take_result() { return std::exchange(result_, Result{}); }
  void on_timeout() {
    if (retries_ > 0) {
      return fail(last_retry_reason_ +
                  detail::retries_text(retries_, ", timeout after " + detail::ms_text(timeout_)));
    }
    fail("timeout after " + detail::ms_text(timeout_));
  }

  // One request / answer on a fresh connection; on_answer gets the full text.
  void query(std::string request, AnswerFn on_answer) {
    stream::endpoint ep;
    try {
      ep = stream::endpoint(spec_.socket);
    } catch (const boost::system::system_error& e) {
      return post_fail("connect " + spec_.socket + ": " + e.code().message());
    }
    request_ = std::move(request);
    answer_.clear();
    socket_ = std::make_unique<stream::socket>(io_);
    auto self = shared_from_this();
    const auto gen = generation_;
    socket_->async_connect(ep, [self, gen, on_answer](boost::system::error_code ec) mutable {
      if (gen != self->generation_) return;
      if (ec) {
        std::string reason = "connect " + self->spec_.socket + ": " + ec.message();
        if (transient(ec)) return self->retry_or_fail(std::move(reason));
        return self->fail(std::move(reason));
      }
      self->send(gen, std::move(on_answer));
    });
  }

  void send(std::uint64_t gen, AnswerFn on_answer) {
    asio::async_write(*socket_, asio::buffer(request_),
                      [self = shared_from_this(), gen, on_answer](boost::system::error_code ec,
                                                                  std::size_t) mutable {
                        if (gen != self->generation_) return;
                        if (ec) {
                          std::string reason = "write " + self->spec_.socket + ": " + ec.message();
                          if (transient(ec)) return self->retry_or_fail(std::move(reason));
                          return self->fail(std::move(reason));
                        }
                        self->receive(gen, std::move(on_answer));
                      });
  }

  void receive(std::uint64_t gen, AnswerFn on_answer) {
    asio::async_read(
        *socket_, asio::dynamic_buffer(answer_, kMaxAnswer),
        [self = shared_from_this(), gen, on_answer](boost::system::error_code ec, std::size_t) {
          if (gen != self->generation_) return;
          // HAProxy closes after answering: eof is the normal end.
          if (ec && ec != asio::error::eof) {
            std::string reason = "read " + self->spec_.socket + ": " + ec.message();
            if (transient(ec)) return self->retry_or_fail(std::move(reason));
            return self->fail(std::move(reason));
          }
          if (self->answer_.empty()) {
            // Closed without a word: the old process going away mid-request.
            return self->retry_or_fail("no answer from " + self->spec_.socket);
          }
          if (!ec && self->answer_.size() >= kMaxAnswer) {
            return self->fail("answer from " + self->spec_.socket + " too large");
          }
          boost::system::error_code ignored;
          self->socket_->close(ignored);
          on_answer(self->answer_);
        });
  }

  void on_info(std::string_view answer) {
    auto kv = parse_info(answer);
    auto pid = kv.find("Pid");
    if (pid == kv.end()) return fail("unexpected answer to show info: " + first_line(answer));
    auto start = kv.find("Start_time_sec");
    std::string identity = pid->second + "/" + (start != kv.end() ? start->second : "");
    if (!identity_.empty() && identity != identity_) {
      result_.reloaded = true;
      reload_note_ = ", reloaded (pid " + last_pid_ + " -> " + pid->second + ")";
    } else {
      reload_note_.clear();
    }
    identity_ = identity;
    last_pid_ = pid->second;
    if (auto cc = kv.find("CurrConns"); cc != kv.end())
      result_.current_connections = to_u64(cc->second);
    if (auto st = kv.find("Stopping"); st != kv.end() && st->second != "0") {
      // The old process of a reload may still answer for a moment; the new
      // one is behind a fresh connection.
      return retry_or_fail("haproxy is stopping (pid " + pid->second + ")" + reload_note_);
    }
    std::string conns =
        result_.current_connections ? std::to_string(*result_.current_connections) : "?";
    summary_ = "pid " + pid->second + ", " + conns + " connections";
    if (frontends_) {
      return query("show stat -1 1 -1\n", [this](std::string_view a) { on_frontends(a); });
    }
    if (spec_.backend.empty()) return pass(summary_ + reload_note_);
    query("show stat " + spec_.backend + " -1 -1\n", [this](std::string_view a) { on_stat(a); });
  }

  void on_stat(std::string_view answer) {
    const std::string& be = spec_.backend;
    if (answer.starts_with("No such proxy")) return fail("backend " + be + " not found");
    auto count = count_servers(answer, be);
    if (!count) return fail("unexpected answer to show stat: " + first_line(answer));
    if (!count->found) return fail("backend " + be + " not found");
    std::string text = "backend " + be + ": " + std::to_string(count->up) + " of " +
                       std::to_string(count->total) + " servers UP";
    if (count->up < spec_.min_servers_up) {
      return fail(text + " (need " + std::to_string(spec_.min_servers_up) + ")" + reload_note_);
    }
    pass(text + ", " + summary_ + reload_note_);
  }

  // Connection counter (drain): current sessions of the chosen frontends. A
  // named frontend that HAProxy does not have fails the count: counting 0
  // for a typo would report a drain as done while connections remain.
  void on_frontends(std::string_view answer) {
    auto sum = sum_frontend_connections(answer, *frontends_);
    if (!sum) return fail("unexpected answer to show stat: " + first_line(answer));
    if (!sum->missing.empty()) {
      std::string list;
      for (const auto& m : sum->missing) list += (list.empty() ? "" : ", ") + m;
      return fail("frontend not found in show stat: " + list + " ([drain] frontends)");
    }
    result_.current_connections = sum->current;
    pass(std::to_string(sum->current) + " current connections over " +
         std::to_string(sum->frontends) + " frontends (show stat on " + spec_.socket + ")");
  }

  void pass(std::string reason) { finish(Status::Pass, std::move(reason)); }
  void fail(std::string reason) { finish(Status::Fail, std::move(reason)); }

  std::optional<std::vector<std::string>> frontends_;
  config::CheckSpec spec_;
  asio::steady_timer retry_timer_;
  unsigned retries_ = 0;
  std::string last_retry_reason_;
  std::unique_ptr<stream::socket> socket_;
  std::string request_, answer_;
  Result result_;
  std::string identity_, last_pid_, reload_note_, summary_;
};

using HaproxySocketProbe = detail::PolledProbe<SocketImpl>;

}  // namespace

std::unique_ptr<Probe> make_haproxy_socket_probe(const boost::asio::any_io_executor& io,
                                                 const config::CheckSpec& spec) {
  return std::make_unique<HaproxySocketProbe>(io, spec);
}

std::unique_ptr<Probe> make_haproxy_connection_counter(const boost::asio::any_io_executor& io,
                                                       const std::string& socket,
                                                       core::Duration timeout,
                                                       std::vector<std::string> frontends) {
  config::CheckSpec spec;
  spec.name = "drain";
  spec.type = config::CheckType::HaproxySocket;
  spec.socket = socket;
  spec.timeout = timeout;
  spec.interval = std::max(timeout, core::kOneSecond);
  return std::make_unique<HaproxySocketProbe>(
      io, spec, std::optional<std::vector<std::string>>(std::move(frontends)));
}

}  // namespace beacon::health
