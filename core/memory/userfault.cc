#include "core/memory/userfault.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ember {

Result<Userfault> Userfault::create() {
    const int flags = O_CLOEXEC | O_NONBLOCK;
    // With vm.unprivileged_userfaultfd=0 the call is refused to a process without
    // CAP_SYS_PTRACE (a jailed ember), unless it asks for user-mode faults only, which KVM's
    // faults are not; /dev/userfaultfd (Linux 6.1) is how such a host grants it instead.
    int fd = static_cast<int>(::syscall(SYS_userfaultfd, flags));
    if (fd < 0 && (errno == EPERM || errno == ENOSYS)) {
        const int call_errno = errno;
        UniqueFd device(::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
        if (!device.valid())
            return fail_setup_errno(
                "userfaultfd (and /dev/userfaultfd: " + std::string(std::strerror(errno)) + ")",
                call_errno);
        fd = ::ioctl(device.get(), USERFAULTFD_IOC_NEW, flags);
        if (fd < 0) return fail_setup_errno("/dev/userfaultfd: USERFAULTFD_IOC_NEW");
    } else if (fd < 0) {
        return fail_setup_errno("userfaultfd");
    }
    Userfault uffd{UniqueFd(fd)};
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_EVENT_REMOVE;
    if (::ioctl(fd, UFFDIO_API, &api) != 0)
        return fail_setup_errno("userfaultfd: UFFDIO_API with UFFD_FEATURE_EVENT_REMOVE");
    return uffd;
}

Result<void> Userfault::register_missing(void* addr, uint64_t len) const {
    uffdio_register reg{};
    reg.range.start = reinterpret_cast<uint64_t>(addr);
    reg.range.len = len;
    reg.mode = UFFDIO_REGISTER_MODE_MISSING;
    if (::ioctl(fd_.get(), UFFDIO_REGISTER, &reg) != 0)
        return fail_errno("userfaultfd: UFFDIO_REGISTER of " + std::to_string(len) + " bytes");
    if ((reg.ioctls & (uint64_t{1} << _UFFDIO_COPY)) == 0)
        return fail("userfaultfd: the host cannot copy pages into this memory (no UFFDIO_COPY)");
    return {};
}

namespace {

// ESRCH: the memory's process has exited, and with it every fault there was to serve. ENOENT
// (EINVAL once no registered range is left): the range is no longer mapped, as when a VMM that
// exits in order unmaps guest memory while its process is still there.
std::unexpected<Error> fail_uffd(std::string_view what, int err = errno) {
    auto e = fail_errno(what, err);
    if (err == ESRCH) e.error().kind = ErrorKind::Gone;
    if (err == ENOENT || err == EINVAL) e.error().kind = ErrorKind::Unmapped;
    return e;
}

}  // namespace

Result<void> Userfault::copy(uint64_t dst, const void* src, uint64_t len) const {
    uint64_t done = 0;
    while (done < len) {
        uffdio_copy c{};
        c.dst = dst + done;
        c.src = reinterpret_cast<uint64_t>(src) + done;
        c.len = len - done;
        if (::ioctl(fd_.get(), UFFDIO_COPY, &c) == 0 || errno == EEXIST) return {};
        // EAGAIN: the address space changed under the copy, which stopped after c.copy bytes.
        if (errno != EAGAIN) return fail_uffd("UFFDIO_COPY of " + std::to_string(len) + " bytes");
        if (c.copy > 0) done += static_cast<uint64_t>(c.copy);
    }
    return {};
}

Result<void> Userfault::zero(uint64_t dst, uint64_t len) const {
    uffdio_zeropage z{};
    z.range.start = dst;
    z.range.len = len;
    if (::ioctl(fd_.get(), UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST)
        return fail_uffd("UFFDIO_ZEROPAGE of " + std::to_string(len) + " bytes");
    return {};
}

}  // namespace ember
