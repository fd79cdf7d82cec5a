#include "common/limits.h"

#include <sys/resource.h>

namespace deputy {

size_t open_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 1024;
  return files.rlim_cur == RLIM_INFINITY ? size_t{1} << 20 : static_cast<size_t>(files.rlim_cur);
}

size_t raise_open_file_limit() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &files);
  }
  return open_file_limit();
}

}  // namespace deputy
