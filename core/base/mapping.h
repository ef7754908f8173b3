// Owning memory mapping: munmap'd exactly once.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/base/error.h"

namespace ember {

class Mapping {
  public:
    Mapping() = default;
    Mapping(Mapping&& other) noexcept
        : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept {
        if (this != &other) {
            unmap();
            addr_ = std::exchange(other.addr_, nullptr);
            size_ = std::exchange(other.size_, 0);
        }
        return *this;
    }
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { unmap(); }

    static Result<Mapping> map(size_t size, int prot, int flags, int fd = -1, off_t offset = 0) {
        void* addr = ::mmap(nullptr, size, prot, flags, fd, offset);
        if (addr == MAP_FAILED) return fail_errno("mmap of " + std::to_string(size) + " bytes");
        return Mapping(static_cast<uint8_t*>(addr), size);
    }

    // Like map, at an address that is a multiple of `align` (a power of two). Reserves `align`
    // more address space than asked, places the mapping inside it, and gives the slack back.
    static Result<Mapping> map_aligned(size_t size, size_t align, int prot, int flags, int fd = -1,
                                       off_t offset = 0) {
        const size_t reserved = size + align;
        void* reserve = ::mmap(nullptr, reserved, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (reserve == MAP_FAILED)
            return fail_errno("mmap of " + std::to_string(reserved) + " bytes of address space");
        auto* base = static_cast<uint8_t*>(reserve);
        const size_t head = (align - reinterpret_cast<uintptr_t>(base) % align) % align;
        uint8_t* start = base + head;
        void* addr = ::mmap(start, size, prot, flags | MAP_FIXED, fd, offset);
        if (addr == MAP_FAILED) {
            auto error = fail_errno("mmap of " + std::to_string(size) + " bytes");
            ::munmap(reserve, reserved);
            return error;
        }
        if (head > 0) ::munmap(base, head);
        if (reserved > head + size) ::munmap(start + size, reserved - head - size);
        return Mapping(start, size);
    }

    // Forgets the mapping without unmapping it: for addresses that a MAP_FIXED which failed may
    // already have unmapped, where another thread's mapping may be by now.
    void abandon() {
        addr_ = nullptr;
        size_ = 0;
    }

    uint8_t* data() const { return addr_; }
    size_t size() const { return size_; }

    // Gives the pages back to the host and keeps the addresses reserved (PROT_NONE) for the rest
    // of the process, never unmapped: for memory the kernel may still write into after its owner
    // is done with it (I/O left in flight at exit), where a later mapping must not land.
    void retire() {
        if (addr_ != nullptr)
            (void)::mmap(addr_, size_, PROT_NONE,
                         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        addr_ = nullptr;
        size_ = 0;
    }

  private:
    Mapping(uint8_t* addr, size_t size) : addr_(addr), size_(size) {}
    void unmap() {
        if (addr_ != nullptr) ::munmap(addr_, size_);
        addr_ = nullptr;
        size_ = 0;
    }

    uint8_t* addr_ = nullptr;
    size_t size_ = 0;
};

}  // namespace ember
