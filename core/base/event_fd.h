// An eventfd: the doorbell between threads and between KVM and us (ioeventfd, irqfd).
#pragma once

#include <sys/eventfd.h>

#include <cstdint>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

class EventFd {
  public:
    static Result<EventFd> create(int flags = EFD_CLOEXEC | EFD_NONBLOCK) {
        int fd = ::eventfd(0, flags);
        if (fd < 0) return fail_errno("eventfd");
        return EventFd(UniqueFd(fd));
    }

    // Safe from any thread and from a signal handler.
    void signal() const {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof one);
    }
    // Returns the accumulated count, 0 when nothing was pending.
    uint64_t consume() const {
        uint64_t value = 0;
        if (::read(fd_.get(), &value, sizeof value) != sizeof value) return 0;
        return value;
    }
    int fd() const { return fd_.get(); }

  private:
    explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace ember
