// bfdctl internals shared by cli.cpp and the files of its larger commands
// (cli_commands.cpp: sessions PEER, version, check-config; watch*.cpp).
// Private to src/ctl.
#pragma once

#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "beacon/ctl/cli.hpp"

namespace beacon::ctl {

// "" when `text` is a peer address bfdctl can filter on ("198.18.0.1",
// "fd00::1", "fe80::1%veth0"), else the usage error.
std::string check_peer_filter(const std::string& text);
// The sessions whose "peer" text is exactly `peer` (scope included).
nlohmann::json filter_sessions(const nlohmann::json& sessions, const std::string& peer);

// check-config FILE; watch [--interval DUR] [--count N]. `positionals`
// includes the command name.
CtlParse build_check_config(CtlArgs& out, const std::vector<std::string>& positionals);
CtlParse build_watch(CtlArgs& out, const std::vector<std::string>& positionals,
                     const std::optional<std::string>& interval,
                     const std::optional<std::string>& count);

// Runs config::load_file on a.config_file; never contacts the daemon.
int run_check_config(const CtlArgs& a, std::ostream& out, std::ostream& err);
// bfdctl's own version first, then the daemon's answer `r` (exit 3 when it
// could not be reached, 1 when it refused).
int print_version(const CtlArgs& a, const ClientResult& r, std::ostream& out, std::ostream& err);
// watch.cpp
int run_watch(const CtlArgs& a, const Transport& transport, std::ostream& out, std::ostream& err,
              const CtlEnv& env);

}  // namespace beacon::ctl
