// Process-wide resource limits the server sizes itself by.
#pragma once

#include <cstddef>

namespace deputy {

// Raises the soft limit on open files to the hard one (no privilege needed) and returns the
// limit now in force. Thousands of calls in flight need as many sockets; the usual soft
// default of 1,024 would run out first.
size_t raise_open_file_limit();

// The open-file limit in force.
size_t open_file_limit();

}  // namespace deputy
