// ember-uffd's work once the handshake is done: serves a restored VM's guest memory from a memory
// source (the snapshot's memory file, a page per fault, or a store's chunks, a chunk per fault),
// after installing a working set whole if it has one. It keeps which pages it installed, so that
// it installs each once.
// Pages the VMM discards (UFFD_EVENT_REMOVE: a balloon's MADV_DONTNEED) come back as zero pages,
// never as the file's stale bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/memory/userfault.h"
#include "snapshot/uffd/handshake.h"
#include "snapshot/uffd/memory_source.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

struct PageServerCounts {
    uint64_t faults = 0;       // faults served from the source (each installs its whole extent)
    uint64_t installed = 0;    // pages installed from the source, on faults and ahead of them
    uint64_t zero_faults = 0;  // removed pages faulted in again, as zeros
    uint64_t removes = 0;      // UFFD_EVENT_REMOVE events
    uint64_t prefetched = 0;   // working-set pages installed before serving
    uint64_t install_us = 0;   // the time they took
};

class PageServer {
  public:
    // Every region must lie inside `source`.
    static Result<PageServer> create(UffdHandshake handshake, std::unique_ptr<MemorySource> source);

    // Installs the extents of the source that hold `runs` (a working set, written runs first),
    // checked against the regions first; the source fetches, checks and installs them from
    // several threads at once.
    Result<void> install_runs(std::span<const PageRun> runs);

    // Serves faults until the VMM is gone (its connection hangs up or `vmm_pidfd`, when valid,
    // says it exited). An error is a fault that could not be served.
    Result<void> serve(int vmm_pidfd);

    const PageServerCounts& counts() const { return counts_; }

  private:
    PageServer(UffdHandshake handshake, std::unique_ptr<MemorySource> source);
    // The region that holds the whole of a working set's run, of 4 KiB pages.
    Result<size_t> region_of_run(const PageRun& run) const;
    // The region holding host address `addr`, or null.
    const UffdRegion* region_of(uint64_t addr, size_t* index) const;
    Result<void> fault(uint64_t addr);
    // Installs the source's extent that holds page `page` of region `index`.
    Result<void> bring_in(size_t index, uint64_t page);
    struct PageSpan {
        size_t region;
        uint64_t first;
        uint64_t pages;
    };
    // Copies the pages of `extent` that are neither installed nor removed into every region it
    // overlaps, and says which in `copied`. It only reads the bitmaps, so several threads may run
    // it at once on extents that do not overlap; mark_installed records their work after.
    // A VMM that has exited sets `gone` and ends the copying, without an error.
    Result<void> copy_extent(const MemoryExtent& extent, std::vector<PageSpan>& copied,
                             std::atomic<bool>& gone) const;
    // Whether a copy's failure is the VMM's end: its process gone, or its memory unmapped and its
    // connection closed within two seconds.
    bool vmm_ended(const Error& e) const;
    void mark_installed(std::span<const PageSpan> spans);
    void remove(uint64_t start, uint64_t end);

    UffdHandshake handshake_;
    Userfault uffd_;
    std::unique_ptr<MemorySource> source_;
    std::vector<std::vector<bool>> removed_;    // per region, per page
    std::vector<std::vector<bool>> installed_;  // per region, per page
    std::vector<uint8_t> zeros_;                // a zero huge page, where a region has them
    PageServerCounts counts_;
};

}  // namespace ember::snapshot
