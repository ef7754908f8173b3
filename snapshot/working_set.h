// A working set: the guest pages a VM restored from a snapshot touched after its load (what its
// function needed to answer). A later load of the same snapshot brings them in before any vCPU
// runs, instead of one fault each, from the snapshot's memory file (ember-uffd too).
//
// The file (version 2): a header, then an index of runs of pages (memory-file offsets, in order,
// each marked read or written), then a checksum of both. The header names the snapshot (its state
// file's closing checksum and its memory size). Version 1 files also carried the pages' contents,
// from a page-aligned offset after the index; they are read still, their contents skipped.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"
#include "core/memory/resident_pages.h"

namespace ember::snapshot {

struct SnapshotIdentity {
    uint64_t state_checksum = 0;
    uint64_t memory_bytes = 0;
    bool operator==(const SnapshotIdentity&) const = default;
};

struct PageRun {
    uint64_t offset;  // in the memory file, page-aligned
    uint64_t pages;
    bool written;
    bool operator==(const PageRun&) const = default;
};

struct WorkingSetCounts {
    uint64_t written_pages = 0;
    uint64_t read_pages = 0;
    uint64_t runs = 0;
};

struct WorkingSet {
    SnapshotIdentity snapshot;
    std::vector<PageRun> runs;

    WorkingSetCounts counts() const;
};

// The runs of touched pages of `memory`, mapped from a memory file back to back from offset 0,
// from each page's residency (one vector per region). Runs never cross a region's edge.
std::vector<PageRun> touched_runs(const std::vector<std::vector<Residency>>& residency,
                                  const GuestMemory& memory);

// Writes the working set to `out`.
Result<void> write_working_set(int out, const SnapshotIdentity& snapshot,
                               std::span<const PageRun> runs);

WorkingSetCounts count_runs(std::span<const PageRun> runs);

// Reads and checks the header and index of the working set in `fd` against the snapshot being
// loaded: a working set of another snapshot, or an index that does not fit it, is an error.
Result<WorkingSet> read_working_set(int fd, const SnapshotIdentity& expected);

// How long a prefetch's two populating passes took (its MADV_WILLNEED hints aside). A written page
// costs a page fault's work of its own; read pages are mapped many to a fault.
struct PrefetchTimes {
    std::chrono::microseconds copy_written{};
    std::chrono::microseconds map_read{};
};

// For guest memory mapped privately from the snapshot's memory file: the written pages become the
// clone's own copies of the file's (they would have on the guest's first write anyway), then the
// read ones are mapped from the file, so that clones keep sharing them in the page cache.
Result<PrefetchTimes> prefetch_working_set(const WorkingSet& set, const GuestMemory& memory);

struct GuestRange {
    uint64_t addr;
    uint64_t size;
};
// Where the working set's pages are in guest-physical memory, adjacent runs merged.
Result<std::vector<GuestRange>> guest_ranges(const WorkingSet& set, const GuestMemory& memory);

}  // namespace ember::snapshot
