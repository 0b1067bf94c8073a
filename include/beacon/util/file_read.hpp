// Reading a small whole file (configuration, state file) with a size limit.
// Blocking I/O: the ops loop or start-up only, never the engine loop.
#pragma once

#include <cstddef>
#include <string>

namespace beacon::util {

struct SmallFile {
  int error = 0;           // errno of the step that failed; 0: `content` is the whole file
  bool at_open = false;    // the failure came from open/fstat (else from reading)
  bool too_large = false;  // larger than the limit (error is EFBIG)
  std::string content;
};

// Opens `path` read-only (O_CLOEXEC), refuses a directory (EISDIR, at open)
// and anything over `max_bytes` (by fstat and while reading, since the size
// may change), reads to the end retrying EINTR, and closes it. Never throws
// beyond std::bad_alloc; any thread.
SmallFile read_small_file(const std::string& path, std::size_t max_bytes);

}  // namespace beacon::util
