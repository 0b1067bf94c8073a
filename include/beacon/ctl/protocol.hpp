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
// Thread: a Dispatcher is used by one thread (the ops loop).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

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

class Dispatcher {
 public:
  // Receives the request object (cmd already checked); returns the response
  // fields ("ok" is added). Throws RequestError to refuse.
  using Handler = std::function<nlohmann::json(const nlohmann::json& request)>;

  struct Command {
    Handler handler;
    // Fields the command accepts besides "cmd" and "id"; anything else is refused.
    std::vector<std::string> fields;
  };

  Dispatcher() = default;
  // Registers sessions, stats, session-set-state and version over `backend`,
  // which must outlive the dispatcher.
  explicit Dispatcher(Backend& backend);

  // Replaces a command of the same name.
  void add(std::string name, Command command);
  std::vector<std::string> command_names() const;

  // One request line (without the newline) -> one response line (without the
  // newline). Never throws. A request "id" (string or integer) is echoed.
  std::string handle(std::string_view line);
  nlohmann::json handle_json(std::string_view line);

 private:
  nlohmann::json handle_request(std::string_view line);

  std::map<std::string, Command, std::less<>> commands_;
};

// Builds {"ok":false,"error":message}.
nlohmann::json error_response(std::string_view message);

}  // namespace beacon::ctl
