// errno as text, for error messages across modules. Pure: no state, no I/O.
#pragma once

#include <string>

namespace beacon::util {

// The C library's message for errno value `err` ("No such file or directory").
// Never throws beyond std::bad_alloc; any thread.
std::string errno_text(int err);

}  // namespace beacon::util
