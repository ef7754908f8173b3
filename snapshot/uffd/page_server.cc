#include "snapshot/uffd/page_server.h"

#include <linux/userfaultfd.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>

#include "core/base/file_io.h"

namespace ember::snapshot {

PageServer::PageServer(UffdHandshake handshake, std::unique_ptr<MemorySource> source)
    : handshake_(std::move(handshake)),
      uffd_(Userfault::adopt(std::move(handshake_.uffd))),
      source_(std::move(source)) {
    for (const auto& r : handshake_.regions) {
        removed_.emplace_back(r.size / r.page_size, false);
        installed_.emplace_back(r.size / r.page_size, false);
        if (r.page_size != kGuestPageSize)
            zeros_.resize(std::max<size_t>(zeros_.size(), r.page_size));
    }
}

Result<PageServer> PageServer::create(UffdHandshake handshake,
                                      std::unique_ptr<MemorySource> source) {
    const uint64_t size = source->size();
    for (size_t i = 0; i < handshake.regions.size(); ++i) {
        const auto& r = handshake.regions[i];
        if (r.offset > size || r.size > size - r.offset)
            return fail("region " + std::to_string(i) + " (offset " + std::to_string(r.offset) +
                        ", " + std::to_string(r.size) + " bytes) runs past the memory's " +
                        std::to_string(size) + " bytes");
    }
    return PageServer(std::move(handshake), std::move(source));
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

Result<size_t> PageServer::region_of_run(const PageRun& run) const {
    for (size_t i = 0; i < handshake_.regions.size(); ++i) {
        const auto& r = handshake_.regions[i];
        if (run.offset < r.offset || run.offset - r.offset >= r.size) continue;
        if (run.pages * kGuestPageSize > r.size - (run.offset - r.offset)) break;
        // A huge page is copied whole or not at all.
        if (r.page_size != kGuestPageSize)
            return fail("the VM's memory is on " + std::to_string(r.page_size >> 10) +
                        " KiB pages, and a working set is made of 4 KiB pages");
        return i;
    }
    return fail("a working-set run at offset " + std::to_string(run.offset) +
                " is outside the VM's regions");
}

Result<void> PageServer::install_runs(std::span<const PageRun> runs) {
    const auto start = std::chrono::steady_clock::now();
    // The runs' pages not in yet, each once (runs may overlap), written runs first: the extents
    // handed out must not overlap, since a copy that meets a page already there stops short.
    std::vector<std::vector<bool>> wanted;
    wanted.reserve(installed_.size());
    for (const auto& r : installed_) wanted.emplace_back(r.size(), false);
    std::vector<PageRun> todo;
    for (bool written : {true, false}) {
        for (const auto& run : runs) {
            if (run.written != written) continue;
            auto index = region_of_run(run);
            EMBER_TRY(index);
            const UffdRegion& r = handshake_.regions[*index];
            auto& want = wanted[*index];
            const uint64_t first = (run.offset - r.offset) / kGuestPageSize;
            for (uint64_t p = first, end = first + run.pages; p < end;) {
                while (p < end && (want[p] || installed_[*index][p] || removed_[*index][p])) ++p;
                const uint64_t start = p;
                while (p < end && !want[p] && !installed_[*index][p] && !removed_[*index][p])
                    want[p++] = true;
                if (p > start)
                    todo.push_back({r.offset + start * kGuestPageSize, p - start, written});
            }
            counts_.prefetched += run.pages;
        }
    }
    // The bitmaps are only read while the source's threads install; what they installed is
    // marked once all are done.
    std::mutex done_mutex;
    std::vector<PageSpan> done;
    std::atomic<bool> gone{false};
    EMBER_TRY(source_->deliver(todo, [&](const MemoryExtent& e) -> Result<void> {
        std::vector<PageSpan> copied;
        EMBER_TRY(copy_extent(e, copied, gone));
        const std::lock_guard guard(done_mutex);
        done.insert(done.end(), copied.begin(), copied.end());
        return {};
    }));
    mark_installed(done);
    counts_.install_us +=
        static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now() - start)
                                  .count());
    return {};
}

Result<void> PageServer::copy_extent(const MemoryExtent& extent, std::vector<PageSpan>& copied,
                                     std::atomic<bool>& gone) const {
    // The VMM may exit before its working set is all in (its guest answered with what it had):
    // what is left to install is nobody's, and serve() sees the VMM's end.
    auto unless_gone = [&](Result<void> r) -> Result<void> {
        if (!r && vmm_ended(r.error())) {
            gone = true;
            return {};
        }
        return r;
    };
    for (size_t index = 0; !gone && index < handshake_.regions.size(); ++index) {
        const UffdRegion& r = handshake_.regions[index];
        // The part of the extent in this region, by the region's pages.
        const uint64_t lo = std::max(extent.offset, r.offset);
        const uint64_t hi = std::min(extent.offset + extent.length, r.offset + r.size);
        if (lo >= hi) continue;
        const auto& installed = installed_[index];
        const auto& removed = removed_[index];
        uint64_t p = (lo - r.offset) / r.page_size;
        const uint64_t end = (hi - r.offset) / r.page_size;
        while (p < end && !gone) {
            if (installed[p] || removed[p]) {
                ++p;
                continue;
            }
            const uint64_t start = p;
            while (p < end && !installed[p] && !removed[p]) ++p;
            const uint64_t dst = r.base_host_virt_addr + start * r.page_size;
            const uint64_t bytes = (p - start) * r.page_size;
            const uint64_t from = r.offset + start * r.page_size - extent.offset;
            if (extent.bytes != nullptr) {
                EMBER_TRY(unless_gone(uffd_.copy(dst, extent.bytes + from, bytes)));
            } else if (r.page_size == kGuestPageSize) {
                EMBER_TRY(unless_gone(uffd_.zero(dst, bytes)));
            } else {
                // hugetlb memory has no UFFDIO_ZEROPAGE: copies of a zero page.
                for (uint64_t at = 0; at < bytes; at += r.page_size)
                    EMBER_TRY(unless_gone(uffd_.copy(dst + at, zeros_.data(), r.page_size)));
            }
            if (!gone) copied.push_back({index, start, p - start});
        }
    }
    return {};
}

bool PageServer::vmm_ended(const Error& e) const {
    if (e.kind == ErrorKind::Gone) return true;
    if (e.kind != ErrorKind::Unmapped) return false;
    // A VMM unmaps guest memory only as it exits (in order: its process, and so its end of the
    // connection, goes a moment later; 1 of 10 clones ended so while the handler still installed
    // its working set, under ASan). Memory gone from a VMM that stays is the handler's failure.
    pollfd vmm{handshake_.connection.get(), POLLRDHUP, 0};
    return ::poll(&vmm, 1, 2000) == 1 && (vmm.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

void PageServer::mark_installed(std::span<const PageSpan> spans) {
    for (const auto& s : spans) {
        auto& installed = installed_[s.region];
        for (uint64_t p = s.first; p < s.first + s.pages; ++p) installed[p] = true;
        counts_.installed += s.pages;
    }
}

Result<void> PageServer::bring_in(size_t index, uint64_t page) {
    const UffdRegion& r = handshake_.regions[index];
    auto extent = source_->extent_at(r.offset + page * r.page_size, r.page_size);
    EMBER_TRY(extent);
    if (extent->offset % r.page_size != 0 || extent->length % r.page_size != 0 ||
        extent->offset > r.offset + page * r.page_size ||
        extent->offset + extent->length < r.offset + (page + 1) * r.page_size)
        return fail("the memory source handed back an extent that does not hold the page");
    std::vector<PageSpan> copied;
    std::atomic<bool> gone{false};
    EMBER_TRY(copy_extent(*extent, copied, gone));
    mark_installed(copied);
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
        return uffd_.copy(dst, zeros_.data(), r->page_size);
    }
    // Installed already: a second vCPU's fault on it, which the first one's copy woke.
    if (installed_[index][page]) return {};
    ++counts_.faults;
    return bring_in(index, page);
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
            // A batch's removals first: reading them let their zaps run, which a fault's copy
            // served after would otherwise race with stale bytes.
            const auto count = static_cast<size_t>(std::max<ssize_t>(n, 0)) / sizeof(uffd_msg);
            for (size_t i = 0; i < count; ++i)
                if (msgs[i].event == UFFD_EVENT_REMOVE)
                    remove(msgs[i].arg.remove.start, msgs[i].arg.remove.end);
            for (size_t i = 0; i < count; ++i) {
                if (msgs[i].event != UFFD_EVENT_PAGEFAULT) continue;
                auto served = fault(msgs[i].arg.pagefault.address);
                if (!served && vmm_ended(served.error())) return {};
                EMBER_TRY(served);
            }
            continue;  // faults first: the VMM's exit can wait for them
        }
        if ((fds[0].revents & (POLLERR | POLLHUP)) != 0) return {};
        if ((fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return {};
        if (watched == 3 && (fds[2].revents & POLLIN) != 0) return {};
    }
}

}  // namespace ember::snapshot
