// `bfdctl watch` internals shared by watch.cpp and watch_tty.cpp. Private to
// src/ctl.
#pragma once

#include <chrono>
#include <iosfwd>
#include <string>

#include "beacon/ctl/cli.hpp"
#include "beacon/ctl/watch.hpp"

namespace beacon::ctl {

// One refresh: groups, sessions, checks (three requests under a.timeout
// each). The first unreachable answer ends it with reachable = false.
WatchData fetch_watch_data(const Transport& transport, const CtlArgs& a);
// "every 1s", "every 500ms".
std::string refresh_text(std::chrono::milliseconds interval);

// The live view on env.tty_in_fd / env.tty_out_fd (watch_tty.cpp).
int run_watch_tty(const CtlArgs& a, const Transport& transport, std::ostream& out,
                  std::ostream& err, const CtlEnv& env);

}  // namespace beacon::ctl
