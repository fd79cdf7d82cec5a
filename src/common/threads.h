// Per-thread settings the operating system shows and schedules by.
#pragma once

#include <string_view>

#include "common/result.h"

namespace deputy {

// Names the calling thread (at most 15 characters are kept), so `top -H` and profilers
// show which part of Deputy a thread is.
void name_this_thread(std::string_view name);

// Raises the calling thread's nice value by `by` (at most to 19, the lowest priority), from
// whatever the process was started with. Needs no privilege; it only lowers this thread's
// share of the CPU while other threads want it.
Status lower_this_thread_priority(int by);

}  // namespace deputy
