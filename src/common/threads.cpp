#include "common/threads.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace deputy {

void name_this_thread(std::string_view name) {
  std::string shortened(name.substr(0, 15));
  (void)pthread_setname_np(pthread_self(), shortened.c_str());
}

Status set_this_thread_nice(int nice) {
  // On Linux a nice value belongs to a thread: PRIO_PROCESS with a thread id sets only it.
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) != 0) {
    return Internal(std::string("setpriority: ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace deputy
