// See file_read.hpp.
#include "beacon/util/file_read.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace beacon::util {

SmallFile read_small_file(const std::string& path, std::size_t max_bytes) {
  SmallFile f;
  auto failed = [&f](int err, bool at_open) {
    f.error = err;
    f.at_open = at_open;
    f.content.clear();
    return f;
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return failed(errno, true);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return failed(err, true);
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return failed(EISDIR, true);
  }
  if (st.st_size > 0 && static_cast<std::size_t>(st.st_size) > max_bytes) {
    ::close(fd);
    f.too_large = true;
    return failed(EFBIG, false);
  }
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      return failed(err, false);
    }
    f.content.append(buf, static_cast<std::size_t>(n));
    if (f.content.size() > max_bytes) {
      ::close(fd);
      f.too_large = true;
      return failed(EFBIG, false);
    }
  }
  ::close(fd);
  return f;
}

}  // namespace beacon::util
