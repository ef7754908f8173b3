// ember-uffd's work once the handshake is done: serves a restored VM's guest memory from the
// snapshot's memory file, a page per fault, after installing a working set whole if it has one.
// Pages the VMM discards (UFFD_EVENT_REMOVE: a balloon's MADV_DONTNEED) come back as zero pages,
// never as the file's stale bytes.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/memory/userfault.h"
#include "snapshot/uffd/handshake.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

struct PageServerCounts {
    uint64_t faults = 0;       // pages copied in on a fault
    uint64_t zero_faults = 0;  // removed pages faulted in again, as zeros
    uint64_t removes = 0;      // UFFD_EVENT_REMOVE events
    uint64_t prefetched = 0;   // working-set pages installed before serving
};

class PageServer {
  public:
    // `memory` is the snapshot's memory file, mapped; every region must lie inside it.
    static Result<PageServer> create(UffdHandshake handshake, std::span<const uint8_t> memory);

    // Copies the working set's pages (read and written alike: this memory is anonymous) into the
    // VM, in the file's order.
    Result<void> install(int working_set_fd, const WorkingSet& set);

    // Serves faults until the VMM is gone (its connection hangs up or `vmm_pidfd`, when valid,
    // says it exited). An error is a fault that could not be served.
    Result<void> serve(int vmm_pidfd);

    const PageServerCounts& counts() const { return counts_; }

  private:
    PageServer(UffdHandshake handshake, std::span<const uint8_t> memory);
    // The region holding host address `addr`, or null.
    const UffdRegion* region_of(uint64_t addr, size_t* index) const;
    Result<void> fault(uint64_t addr);
    void remove(uint64_t start, uint64_t end);

    UffdHandshake handshake_;
    Userfault uffd_;
    std::span<const uint8_t> memory_;
    std::vector<std::vector<bool>> removed_;  // per region, per page
    std::vector<uint8_t> zeros_;              // a zero huge page, once one is needed
    PageServerCounts counts_;
};

}  // namespace ember::snapshot
