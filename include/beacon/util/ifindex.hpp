// Interface name <-> index lookups (if_nametoindex / if_indextoname) in the
// caller's network namespace. Any thread; never throw.
#pragma once

#include <string>

namespace beacon::util {

// Index of interface `name`; 0 when empty, too long for IF_NAMESIZE, or absent.
unsigned interface_index(const std::string& name);

// Name of interface `ifindex`; "" when 0 or unknown.
std::string interface_name(unsigned ifindex);

}  // namespace beacon::util
