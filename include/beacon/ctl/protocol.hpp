// Control protocol v1: newline-delimited JSON requests and responses
// (schema and examples: proto/ctl/v1/).
//
//   -> {"cmd":"sessions"}
//   <- {"ok":true,"sessions":[{...}, ...]}
//   -> {"cmd":"session-set-state","state":"down","diag":5,"group":"web"}
//   <- {"ok":true,"matched":3,"state":"down","diag":5}
//   -> {"cmd":"nope"}
//   <- {"ok":false,"error":"unknown command 'nope' (known: ...)"}
//
// Commands live in a registry (name -> handler), the Kea style: a handler gets
// the already type-checked request object and returns the response fields, or
// throws RequestError for a refusal. Dispatcher::handle() never throws: every
// malformed line becomes an {"ok":false,"error":...} response.
//
// Access control (access.hpp): every command is registered as read-only or
// state-changing. Once enable_access_control() is called, each request is
// checked against the caller's credentials before its fields are looked at,
// and every state-changing request, allowed or refused, is one audit log
// line:
//
//   audit: uid=1001 user=alice pid=4242 cmd=session-set-state
//          args={"all":true,"state":"down"} result=refused: permission denied: ...
//
// Thread: a Dispatcher is used by one thread (the ops loop).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "beacon/ctl/access.hpp"
#include "beacon/ctl/backend.hpp"
#include "beacon/engine/engine.hpp"

namespace beacon::ctl {

inline constexpr int kProtocolVersion = 1;
// Longest request line the server accepts (bytes, without the newline).
inline constexpr std::size_t kMaxRequestLine = 64 * 1024;

// A refused request; what() is sent to the client as "error".
struct RequestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Serialises without ever throwing on invalid UTF-8 (bytes are replaced).
std::string dump_json(const nlohmann::json& j);

nlohmann::json session_to_json(const engine::SessionSnapshot& s);
nlohmann::json stats_to_json(const engine::EngineStats& s);

// The other end of one control connection (the Server fills it in when it
// accepts the connection).
struct Caller {
  PeerCredentials credentials;
  std::string user;  // login name for audit lines, looked up once on first use
};

// One audit log line, "audit: uid=U user=NAME pid=P cmd=C args={...}
// [reason="..."] result=R" (R: "ok", "refused: WHY" or "error: WHY").
// `request` is the whole request object; "cmd" and "reason" are shown on
// their own, every other field in args, sanitised: strings cut at 64 bytes
// and made printable, arrays and objects only counted, at most 16 fields,
// and values of fields whose name suggests a secret (password, token,
// secret, credential) replaced by "<redacted>". `user` "?" when unknown.
std::string audit_line(const PeerCredentials& who, std::string_view user, std::string_view cmd,
                       const nlohmann::json& request, std::string_view result);

class Dispatcher {
 public:
  // Receives the request object (cmd already checked); returns the response
  // fields ("ok" is added). Throws RequestError to refuse.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  struct Command {
    Handler handler;
    // Fields the command accepts besides "cmd" and "id"; anything else is refused.
    std::vector<std::string> fields;
    // Read for a command that changes nothing (who may run it: read_group);
    // Admin for anything that changes state or behaviour (admin_group, and
    // audited). Unmarked means Admin, so a command added without thought
    // errs on the side of fewer rights.
    Access access = Access::Admin;
    // Used instead of `handler` when set: the handler also sees who asked
    // (nullptr without a caller), e.g. to record who set maintenance.
    std::function<nlohmann::json(const nlohmann::json& request, const Caller* caller)>
        caller_handler = nullptr;
  };

  Dispatcher() = default;
  // Registers sessions, stats, session-set-state and version over `backend`,
  // which must outlive the dispatcher.
  explicit Dispatcher(Backend& backend);

  // Replaces a command of the same name.
  void add(std::string name, Command command);
  std::vector<std::string> command_names() const;
  // The class a command was registered with; nullopt for an unknown name.
  std::optional<Access> command_access(std::string_view name) const;

  // From now on every request is checked against `policy` (a request without
  // a Caller is refused) and every state-changing one is audited on `audit`
  // at info level. Off by default, for tests of the commands themselves; the
  // daemon always turns it on.
  void enable_access_control(AccessPolicy policy, std::shared_ptr<spdlog::logger> audit);
  bool access_control_enabled() const { return audit_ != nullptr; }

  // Called after every request to a state-changing (Admin) command that was
  // allowed to run, whatever its outcome (a command may apply part of a
  // change and still fail), e.g. so the metrics republish at once.
  void set_after_change(std::function<void()> f) { after_change_ = std::move(f); }

  // One request line (without the newline) -> one response line (without the
  // newline). Never throws. A request "id" (string or integer) is echoed.
  // Without a caller, access control (when enabled) refuses every command.
  std::string handle(std::string_view line);
  std::string handle(std::string_view line, Caller& caller);
  nlohmann::json handle_json(std::string_view line, Caller* caller = nullptr);

 private:
  nlohmann::json handle_request(std::string_view line, Caller* caller);
  nlohmann::json run_command(const Command& command, std::string_view name,
                             const nlohmann::json& req, Caller* caller, std::string& result);

  std::map<std::string, Command, std::less<>> commands_;
  AccessPolicy policy_;
  std::shared_ptr<spdlog::logger> audit_;  // set: access control is on
  std::function<void()> after_change_;
};

// Builds {"ok":false,"error":message}.
nlohmann::json error_response(std::string_view message);

}  // namespace beacon::ctl
