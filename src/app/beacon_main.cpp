// bfd-beacon: the BFD daemon. All logic lives in beacon::app::run_daemon.
#include <string>
#include <vector>

#include "beacon/app/daemon.hpp"

int main(int argc, char** argv) {
  return beacon::app::run_daemon(std::vector<std::string>(argv + 1, argv + argc));
}
