// What a device's io_uring may do. Work a ring does on ember's behalf runs in the kernel, where
// seccomp does not look, so each ring is bounded by io_uring's own restrictions: the operations
// its engine submits, the SQE flags it sets, and the register calls it makes after setup.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <span>

#include "core/base/error.h"

namespace ember::virtio {

struct RingRestrictions {
    std::span<const uint8_t> ops;  // IORING_OP_*
    uint8_t required_flags = 0;    // IOSQE_* every SQE must set
    uint8_t allowed_flags = 0;     // IOSQE_* an SQE may set (the required ones included)
    bool files_update = false;     // IORING_REGISTER_FILES_UPDATE
};

// For a ring set up with IORING_SETUP_R_DISABLED, after what it registers at setup: registers the
// restrictions, then enables the ring.
Result<void> restrict_and_enable(io_uring& ring, const RingRestrictions& allowed);

}  // namespace ember::virtio
