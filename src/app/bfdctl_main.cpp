// bfdctl: control client for bfd-beacon. All logic lives in beacon::ctl::run_ctl.
#include <csignal>
#include <iostream>
#include <string>
#include <vector>

#include "beacon/ctl/cli.hpp"
#include "beacon/ctl/client.hpp"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  return beacon::ctl::run_ctl(std::vector<std::string>(argv + 1, argv + argc),
                              &beacon::ctl::request, std::cout, std::cerr,
                              beacon::ctl::CtlEnv::from_process());
}
