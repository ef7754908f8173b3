#include "snapshot/uffd/page_server.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "core/base/file_io.h"

namespace ember::snapshot {

PageServer::PageServer(UffdHandshake handshake, std::span<const uint8_t> memory)
    : handshake_(std::move(handshake)),
      uffd_(Userfault::adopt(std::move(handshake_.uffd))),
      memory_(memory) {
    for (const auto& r : handshake_.regions) removed_.emplace_back(r.size / r.page_size, false);
}

Result<PageServer> PageServer::create(UffdHandshake handshake, std::span<const uint8_t> memory) {
    for (size_t i = 0; i < handshake.regions.size(); ++i) {
        const auto& r = handshake.regions[i];
        if (r.offset > memory.size() || r.size > memory.size() - r.offset)
            return fail("region " + std::to_string(i) + " (offset " + std::to_string(r.offset) +
                        ", " + std::to_string(r.size) + " bytes) runs past the memory file's " +
                        std::to_string(memory.size()) + " bytes");
    }
    return PageServer(std::move(handshake), memory);
}

const UffdRegion* PageServer::region_of(uint64_t addr, size_t* index) const {
    for (size_t i = 0; i < handshake_.regions.size(); ++i) {
        const auto& r = handshake_.regions[i];
        if (addr >= r.base_host_virt_addr && addr - r.base_host_virt_addr < r.size) {
            *index = i;
            return &r;
        }
    }
    return nullptr;
}

Result<void> PageServer::install(int working_set_fd, const WorkingSet& set) {
    std::vector<uint8_t> buffer;
    uint64_t at = set.data_offset;
    for (bool written : {true, false}) {
        for (const auto& run : set.runs) {
            if (run.written != written) continue;
            const UffdRegion* region = nullptr;
            for (const auto& r : handshake_.regions)
                if (run.offset >= r.offset && run.offset - r.offset < r.size) region = &r;
            const uint64_t bytes = run.pages * kGuestPageSize;
            if (region == nullptr || bytes > region->size - (run.offset - region->offset))
                return fail("a working-set run at offset " + std::to_string(run.offset) +
                            " is outside the VM's regions");
            // A huge page is copied whole or not at all.
            if (region->page_size != kGuestPageSize)
                return fail("the VM's memory is on " + std::to_string(region->page_size >> 10) +
                            " KiB pages, and a working set is made of 4 KiB pages");
            buffer.resize(bytes);
            EMBER_TRY(pread_exact(working_set_fd, buffer, at), "working set");
            at += bytes;
            EMBER_TRY(uffd_.copy(region->base_host_virt_addr + (run.offset - region->offset),
                                 buffer.data(), bytes));
            counts_.prefetched += run.pages;
        }
    }
    return {};
}

Result<void> PageServer::fault(uint64_t addr) {
    size_t index = 0;
    const UffdRegion* r = region_of(addr, &index);
    if (r == nullptr) return fail("a fault at " + std::to_string(addr) + ", outside every region");
    const uint64_t page = (addr - r->base_host_virt_addr) / r->page_size;
    const uint64_t dst = r->base_host_virt_addr + page * r->page_size;
    if (removed_[index][page]) {
        ++counts_.zero_faults;
        if (r->page_size == kGuestPageSize) return uffd_.zero(dst, r->page_size);
        // hugetlb memory has no UFFDIO_ZEROPAGE: a copy of zeros.
        zeros_.resize(r->page_size, 0);
        return uffd_.copy(dst, zeros_.data(), r->page_size);
    }
    ++counts_.faults;
    return uffd_.copy(dst, memory_.data() + r->offset + page * r->page_size, r->page_size);
}

void PageServer::remove(uint64_t start, uint64_t end) {
    ++counts_.removes;
    for (size_t i = 0; i < handshake_.regions.size(); ++i) {
        const auto& r = handshake_.regions[i];
        const uint64_t lo = std::max(start, r.base_host_virt_addr);
        const uint64_t hi = std::min(end, r.base_host_virt_addr + r.size);
        for (uint64_t a = lo; a < hi; a += r.page_size)
            removed_[i][(a - r.base_host_virt_addr) / r.page_size] = true;
    }
}

Result<void> PageServer::serve(int vmm_pidfd) {
    std::array<pollfd, 3> fds{{{uffd_.fd(), POLLIN, 0},
                               {handshake_.connection.get(), POLLRDHUP, 0},
                               {vmm_pidfd, POLLIN, 0}}};
    const nfds_t watched = vmm_pidfd >= 0 ? 3 : 2;
    for (;;) {
        if (::poll(fds.data(), watched, -1) < 0) {
            if (errno == EINTR) continue;
            return fail_errno("poll");
        }
        if ((fds[0].revents & POLLIN) != 0) {
            std::array<uffd_msg, 16> msgs{};
            const ssize_t n = ::read(uffd_.fd(), msgs.data(), sizeof msgs);
            if (n < 0 && errno != EAGAIN && errno != EINTR) return fail_errno("reading the uffd");
            for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof(uffd_msg)); ++i) {
                const auto& m = msgs[static_cast<size_t>(i)];
                if (m.event == UFFD_EVENT_PAGEFAULT) {
                    EMBER_TRY(fault(m.arg.pagefault.address));
                } else if (m.event == UFFD_EVENT_REMOVE) {
                    remove(m.arg.remove.start, m.arg.remove.end);
                }
            }
            continue;  // faults first: the VMM's exit can wait for them
        }
        if ((fds[0].revents & (POLLERR | POLLHUP)) != 0) return {};
        if ((fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return {};
        if (watched == 3 && (fds[2].revents & POLLIN) != 0) return {};
    }
}

}  // namespace ember::snapshot
