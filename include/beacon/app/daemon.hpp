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

// Exit status when the ops loop (control socket + health checks) stopped on an
// exception that nothing contained: the daemon has already sent the
// configured shutdown signal to every peer. EX_SOFTWARE from sysexits.h, so a
// supervisor (systemd Restart=on-failure) restarts it and an operator can tell
// it from a configuration error.
inline constexpr int kExitOpsLoopFailed = 70;

// Returns the process exit code: 0 clean stop / config OK, 1 config or startup
// error, 2 usage error, kExitOpsLoopFailed (70) ops loop failure.
int run_daemon(const std::vector<std::string>& args);

}  // namespace beacon::app
