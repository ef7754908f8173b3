#include "virtio/block/uring_restrictions.h"

#include <sys/syscall.h>
#include <unistd.h>

namespace ember::virtio {

Result<void> restrict_and_enable(io_uring& ring) {
    io_uring_restriction r[8] = {};
    int n = 0;
    for (auto op :
         {IORING_OP_READ, IORING_OP_READV, IORING_OP_WRITE, IORING_OP_WRITEV, IORING_OP_FSYNC}) {
        r[n].opcode = IORING_RESTRICTION_SQE_OP;
        r[n++].sqe_op = static_cast<__u8>(op);
    }
    // Every request names a registered file: a path or an fd of ember's cannot be reached.
    r[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
    r[n++].sqe_flags = IOSQE_FIXED_FILE;
    r[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    r[n++].sqe_flags = IOSQE_FIXED_FILE;
    // A PATCH of the drive points file 0 at the new image.
    r[n].opcode = IORING_RESTRICTION_REGISTER_OP;
    r[n++].register_op = IORING_REGISTER_FILES_UPDATE;
    // Debian's liburing 2.3 declares io_uring_register_restrictions() and io_uring_enable_rings()
    // but does not export them: the system call itself.
    if (::syscall(SYS_io_uring_register, ring.ring_fd, IORING_REGISTER_RESTRICTIONS, r, n) < 0)
        return fail_errno("IORING_REGISTER_RESTRICTIONS");
    if (::syscall(SYS_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
        0)
        return fail_errno("IORING_REGISTER_ENABLE_RINGS");
    return {};
}

}  // namespace ember::virtio
