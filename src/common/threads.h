// Per-thread settings the operating system shows and schedules by.
#pragma once

#include <string_view>

#include "common/result.h"

namespace deputy {

// Names the calling thread (at most 15 characters are kept), so `top -H` and profilers
// show which part of Deputy a thread is.
void name_this_thread(std::string_view name);

// Sets the calling thread's nice value (0 normal, 19 lowest). Raising it needs no
// privilege; it only lowers this thread's share of the CPU while other threads want it.
Status set_this_thread_nice(int nice);

}  // namespace deputy
