// Firecracker's "signals" metrics: how many of each signal reached ember. Process-wide, because
// signal handlers have nowhere else to put them; count() is async-signal-safe.
#pragma once

#include <cstdint>

#include "core/base/metrics.h"

namespace ember::signal_counts {

// Adds one for `signo` if it is one of SIGBUS, SIGSEGV, SIGXFSZ, SIGXCPU, SIGPIPE, SIGHUP, SIGILL.
void count(int signo);
uint64_t of(int signo);
// The "signals" group, under Firecracker's field names.
metrics::Group metrics_group();

// Once, at start: SIGPIPE and SIGXFSZ are counted and otherwise ignored, so that a write to a
// closed pipe fails with EPIPE and one past RLIMIT_FSIZE (the jailer's `fsize`) with EFBIG, an
// error for the request that made it rather than the end of the VM.
void count_and_ignore_survivable();

}  // namespace ember::signal_counts
