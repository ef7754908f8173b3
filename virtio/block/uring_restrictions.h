// What a block device's io_uring may do. Work a ring does on ember's behalf runs in the kernel,
// where seccomp does not look, so each ring is bounded by io_uring's own restrictions: only the
// image registered as file 0, only the operations the engine submits, and of the register calls
// only the one a drive update makes.
#pragma once

#include <liburing.h>

#include "core/base/error.h"

namespace ember::virtio {

// For a ring set up with IORING_SETUP_R_DISABLED and its files and eventfd registered: registers
// the restrictions, then enables the ring.
Result<void> restrict_and_enable(io_uring& ring);

}  // namespace ember::virtio
