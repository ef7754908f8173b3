// What a block device's io_uring may do (virtio/uring/restrictions.h): only the image registered
// as file 0, only the operations the engine submits, and of the register calls only the one a
// drive update makes.
#pragma once

#include "virtio/uring/restrictions.h"

namespace ember::virtio {

// For a ring set up with IORING_SETUP_R_DISABLED and its files and eventfd registered: registers
// the block device's restrictions, then enables the ring.
Result<void> restrict_and_enable(io_uring& ring);

}  // namespace ember::virtio
