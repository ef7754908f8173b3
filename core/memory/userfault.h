// A userfaultfd: guest memory whose missing pages another process supplies (Firecracker's Uffd
// memory backend). ember creates it and registers guest RAM; a page-fault handler gets a
// duplicate of the fd and resolves each fault with a copy or a zero page. Both sides are here.
#pragma once

#include <linux/userfaultfd.h>

#include <cstdint>
#include <span>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember {

class Userfault {
  public:
    // A non-blocking userfaultfd that reports faults from the kernel too (KVM's own accesses to
    // guest memory are kernel faults), with UFFD_EVENT_REMOVE, which Firecracker's handlers
    // expect: the userfaultfd system call, or /dev/userfaultfd where the call is refused.
    static Result<Userfault> create();
    // The handler's side: adopts the fd the VMM sent.
    static Userfault adopt(UniqueFd fd) { return Userfault(std::move(fd)); }

    // Missing pages of [addr, addr + len) now fault to the handler.
    Result<void> register_missing(void* addr, uint64_t len) const;

    // The handler's calls. Each resolves the range and wakes the threads that faulted on it;
    // a range another thread resolved first (EEXIST) counts as resolved.
    Result<void> copy(uint64_t dst, const void* src, uint64_t len) const;
    Result<void> zero(uint64_t dst, uint64_t len) const;

    int fd() const { return fd_.get(); }

  private:
    explicit Userfault(UniqueFd fd) : fd_(std::move(fd)) {}
    UniqueFd fd_;
};

}  // namespace ember
