#include "common/threads.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace deputy {

void name_this_thread(std::string_view name) {
  std::string shortened(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), shortened.c_str());
}

Status lower_this_thread_priority(int by) {
  // On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread id sets only it.
  const auto self = static_cast<id_t>(gettid());
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, self);
  if (current == -1 && errno != 0) return Internal(std::string("getpriority: ") + std::strerror(errno));
  if (setpriority(PRIO_PROCESS, self, std::min(19, current + by)) != 0) {
    return Internal(std::string("setpriority: ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace deputy
