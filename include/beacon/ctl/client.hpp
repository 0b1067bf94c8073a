// Control socket client used by bfdctl: one request, one response line, with
// an overall deadline. Blocking; any thread.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace beacon::ctl {

struct ClientResult {
  enum class Status { Ok, Unreachable, BadResponse } status = Status::Ok;
  nlohmann::json response;  // set when status == Ok (may have "ok":false)
  std::string error;        // human message naming the socket path otherwise
};

ClientResult request(const std::string& socket_path, const nlohmann::json& req,
                     std::chrono::milliseconds timeout);

}  // namespace beacon::ctl
