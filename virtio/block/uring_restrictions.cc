#include "virtio/block/uring_restrictions.h"

namespace ember::virtio {

Result<void> restrict_and_enable(io_uring& ring) {
    static constexpr uint8_t kOps[] = {IORING_OP_READ, IORING_OP_READV, IORING_OP_WRITE,
                                       IORING_OP_WRITEV, IORING_OP_FSYNC};
    // Every request names a registered file: a path or an fd of ember's cannot be reached. A
    // PATCH of the drive points file 0 at the new image.
    return restrict_and_enable(ring,
                               RingRestrictions{.ops = kOps,
                                                .required_flags = IOSQE_FIXED_FILE,
                                                .allowed_flags = IOSQE_FIXED_FILE | IOSQE_ASYNC,
                                                .files_update = true});
}

}  // namespace ember::virtio
