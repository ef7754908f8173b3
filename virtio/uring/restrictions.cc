#include "virtio/uring/restrictions.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

namespace ember::virtio {

Result<void> restrict_and_enable(io_uring& ring, const RingRestrictions& allowed) {
    std::vector<io_uring_restriction> r;
    for (uint8_t op : allowed.ops) {
        io_uring_restriction& one = r.emplace_back();
        one.opcode = IORING_RESTRICTION_SQE_OP;
        one.sqe_op = op;
    }
    io_uring_restriction& required = r.emplace_back();
    required.opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
    required.sqe_flags = allowed.required_flags;
    io_uring_restriction& may = r.emplace_back();
    may.opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
    may.sqe_flags = allowed.allowed_flags | allowed.required_flags;
    if (allowed.files_update) {
        io_uring_restriction& update = r.emplace_back();
        update.opcode = IORING_RESTRICTION_REGISTER_OP;
        update.register_op = IORING_REGISTER_FILES_UPDATE;
    }
    // Debian's liburing 2.3 declares io_uring_register_restrictions() and io_uring_enable_rings()
    // but does not export them: the system call itself.
    if (::syscall(SYS_io_uring_register, ring.ring_fd, IORING_REGISTER_RESTRICTIONS, r.data(),
                  r.size()) < 0)
        return fail_errno("IORING_REGISTER_RESTRICTIONS");
    if (::syscall(SYS_io_uring_register, ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
        0)
        return fail_errno("IORING_REGISTER_ENABLE_RINGS");
    return {};
}

}  // namespace ember::virtio
