// The bfd-beacon daemon as a library function: beacon_main.cpp only turns
// argv into strings and calls run_daemon().
//
// Threads: the caller's thread (main) blocks SIGTERM/SIGINT/SIGHUP before any
// other thread exists and later waits for them with sigwait; the engine loop
// and the ops loop (control socket) run on their own threads with those
// signals blocked.
#pragma once

#include <string>
#include <vector>

namespace beacon::app {

// Returns the process exit code: 0 clean stop / config OK, 1 config or startup
// error, 2 usage error.
int run_daemon(const std::vector<std::string>& args);

}  // namespace beacon::app
