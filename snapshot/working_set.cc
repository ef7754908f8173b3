#include "snapshot/working_set.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/bytes.h"
#include "core/base/elapsed.h"
#include "core/base/file_io.h"
#include "core/base/hex.h"
#include "snapshot/format.h"

namespace ember::snapshot {
namespace {

constexpr char kWorkingSetMagic[8] = {'E', 'M', 'B', 'W', 'S', 'E', 'T', '\0'};
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVersionWithContents = 1;
constexpr uint64_t kPage = kGuestPageSize;
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 5 * 8;
constexpr size_t kRunBytes = 3 * 8;
constexpr uint64_t kWritten = 1;

uint64_t data_offset_for(uint64_t runs) {
    const uint64_t end = kHeaderBytes + runs * kRunBytes + 8;
    return (end + kPage - 1) / kPage * kPage;
}

// The host bytes behind [offset, offset + pages) of the memory file, cut at regions' edges, each
// with the guest address it is at.
template <typename Each>
Result<void> for_each_piece(const GuestMemory& memory, const PageRun& run, Each each) {
    uint64_t region_start = 0;
    uint64_t at = run.offset;
    const uint64_t end = run.offset + run.pages * kPage;
    for (const auto& r : memory.regions()) {
        const uint64_t region_end = region_start + r.size();
        if (at < region_end && at < end) {
            const uint64_t to = std::min(end, region_end);
            EMBER_TRY(each(std::span<uint8_t>(r.mapping.data() + (at - region_start), to - at),
                           r.guest_addr + (at - region_start)));
            at = to;
        }
        region_start = region_end;
    }
    if (at != end) return fail("working set: a run of pages ends past guest memory");
    return {};
}

// Populates the written runs of `set` (each page the clone's own copy of the file's) or the read
// ones (mapped from the file), and says how long that took.
Result<std::chrono::microseconds> populate(const WorkingSet& set, const GuestMemory& memory,
                                           bool written) {
    // A written page becomes the clone's own copy of the file's page now rather than on the
    // guest's first write: one copy from the page cache, where filling anonymous memory from the
    // working set's own copy cost a zeroed page, a copy, and a split of the guest's mapping per run
    // (1.5-3x the time, measured on a host and under emulation).
    const int advice = written ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
    const char* what = written ? "working set: copying written pages (MADV_POPULATE_WRITE)"
                               : "working set: mapping read pages (MADV_POPULATE_READ)";
    const auto start = std::chrono::steady_clock::now();
    for (const auto& run : set.runs) {
        if (run.written != written) continue;
        EMBER_TRY(
            for_each_piece(memory, run, [&](std::span<uint8_t> piece, uint64_t) -> Result<void> {
                if (::madvise(piece.data(), piece.size(), advice) < 0) return fail_errno(what);
                return {};
            }));
    }
    return elapsed_since(start);
}

}  // namespace

WorkingSetCounts count_runs(std::span<const PageRun> runs) {
    WorkingSetCounts c;
    for (const auto& r : runs) (r.written ? c.written_pages : c.read_pages) += r.pages;
    c.runs = runs.size();
    return c;
}

WorkingSetCounts WorkingSet::counts() const {
    return count_runs(runs);
}

std::vector<PageRun> touched_runs(const std::vector<std::vector<Residency>>& residency,
                                  const GuestMemory& memory) {
    std::vector<PageRun> runs;
    uint64_t region_offset = 0;
    for (size_t i = 0; i < residency.size() && i < memory.regions().size(); ++i) {
        const auto& pages = residency[i];
        for (size_t p = 0; p < pages.size();) {
            if (pages[p] == Residency::Absent) {
                ++p;
                continue;
            }
            const bool written = pages[p] == Residency::Private;
            size_t q = p + 1;
            while (q < pages.size() && pages[q] == pages[p]) ++q;
            runs.push_back({region_offset + p * kPage, q - p, written});
            p = q;
        }
        region_offset += memory.regions()[i].size();
    }
    return runs;
}

Result<void> write_working_set(int out, const SnapshotIdentity& snapshot,
                               std::span<const PageRun> runs) {
    ByteWriter w;
    for (char c : kWorkingSetMagic) w.put(c);
    w.put(kVersion);
    w.put(static_cast<uint32_t>(kPage));
    w.put(snapshot.state_checksum);
    w.put(snapshot.memory_bytes);
    w.put(static_cast<uint64_t>(runs.size()));
    const auto counts = count_runs(runs);
    w.put(counts.written_pages);
    w.put(counts.read_pages);
    for (const auto& r : runs) {
        w.put(r.offset);
        w.put(r.pages);
        w.put(r.written ? kWritten : uint64_t{0});
    }
    w.put(fnv1a64(w.bytes()));
    return write_all(out, w.bytes());
}

Result<WorkingSet> read_working_set(int fd, const SnapshotIdentity& expected) {
    auto size = file_size(fd);
    EMBER_TRY(size);
    std::vector<uint8_t> head(kHeaderBytes);
    if (*size < kHeaderBytes) return fail("not a working set file: too short");
    EMBER_TRY(pread_exact(fd, head, 0));
    if (std::memcmp(head.data(), kWorkingSetMagic, sizeof kWorkingSetMagic) != 0)
        return fail("not a working set file (no working set magic)");
    ByteReader r(std::span<const uint8_t>(head).subspan(sizeof kWorkingSetMagic),
                 "working set header");
    auto version = r.get<uint32_t>();
    auto page = r.get<uint32_t>();
    auto checksum = r.get<uint64_t>();
    auto memory_bytes = r.get<uint64_t>();
    auto count = r.get<uint64_t>();
    auto written = r.get<uint64_t>();
    auto read = r.get<uint64_t>();
    EMBER_TRY(read);  // the header is whole, so every field before it is too
    if (*version != kVersion && *version != kVersionWithContents)
        return fail("working set format version " + std::to_string(*version) +
                    "; this ember reads versions " + std::to_string(kVersionWithContents) +
                    " and " + std::to_string(kVersion));
    if (*page != kPage) return fail("working set of " + std::to_string(*page) + "-byte pages");
    const SnapshotIdentity found{*checksum, *memory_bytes};
    if (found != expected)
        return fail("recorded from another snapshot (state checksum " + hex(found.state_checksum) +
                    ", " + std::to_string(found.memory_bytes) +
                    " bytes of memory), not the one being loaded (state checksum " +
                    hex(expected.state_checksum) + ", " + std::to_string(expected.memory_bytes) +
                    " bytes)");
    // Every run holds a page at least, so a count past the memory's pages is a lie, not a size
    // to allocate for.
    if (*count > expected.memory_bytes / kPage)
        return fail("working set lists " + std::to_string(*count) + " runs of pages, more than " +
                    "the snapshot has pages");
    const uint64_t index_bytes = *count * kRunBytes + 8;
    if (*size < kHeaderBytes + index_bytes) return fail("working set is shorter than its index");
    // The index follows the header just read; the checksum covers both.
    std::vector<uint8_t> index = std::move(head);
    index.resize(kHeaderBytes + index_bytes);
    EMBER_TRY(pread_exact(fd, std::span(index).subspan(kHeaderBytes), kHeaderBytes));
    uint64_t stored_sum = 0;
    std::memcpy(&stored_sum, index.data() + index.size() - 8, 8);
    if (fnv1a64(std::span(index).first(index.size() - 8)) != stored_sum)
        return fail("working set index checksum mismatch: the file is damaged");
    WorkingSet set{found, {}};
    ByteReader runs(std::span<const uint8_t>(index).subspan(kHeaderBytes, *count * kRunBytes),
                    "working set index");
    uint64_t previous_end = 0, counted_written = 0, counted_read = 0;
    for (uint64_t i = 0; i < *count; ++i) {
        auto offset = runs.get<uint64_t>();
        auto pages = runs.get<uint64_t>();
        auto flags = runs.get<uint64_t>();
        EMBER_TRY(flags);
        const std::string which = "working set run " + std::to_string(i);
        if (*offset % kPage != 0 || *pages == 0 || (*flags & ~kWritten) != 0)
            return fail(which + ": not page-aligned, empty, or with unknown flags");
        if (*offset < previous_end) return fail(which + ": out of order or overlapping");
        if (*offset > expected.memory_bytes || *pages > (expected.memory_bytes - *offset) / kPage)
            return fail(which + " runs past the snapshot's memory");
        previous_end = *offset + *pages * kPage;
        const bool is_written = (*flags & kWritten) != 0;
        (is_written ? counted_written : counted_read) += *pages;
        set.runs.push_back({*offset, *pages, is_written});
    }
    if (counted_written != *written || counted_read != *read)
        return fail("working set header and index disagree on the number of pages");
    if (*version == kVersion && *size != kHeaderBytes + index_bytes)
        return fail("working set is " + std::to_string(*size) + " bytes, where its header and " +
                    "index are " + std::to_string(kHeaderBytes + index_bytes));
    // A version 1 file's contents are skipped, but must be whole: a short one is damaged.
    const uint64_t with_contents =
        data_offset_for(*count) + (counted_written + counted_read) * kPage;
    if (*version == kVersionWithContents && *size != with_contents)
        return fail("working set is " + std::to_string(*size) + " bytes, but its index lists " +
                    std::to_string(counted_written + counted_read) + " pages (" +
                    std::to_string(with_contents) + " bytes)");
    return set;
}

Result<PrefetchTimes> prefetch_working_set(const WorkingSet& set, const GuestMemory& memory) {
    // The memory file's reads start now, in the background, for every run at once.
    for (const auto& run : set.runs)
        EMBER_TRY(
            for_each_piece(memory, run, [](std::span<uint8_t> piece, uint64_t) -> Result<void> {
                // A hint: failure is fine.
                ::madvise(piece.data(), piece.size(), MADV_WILLNEED);
                return {};
            }));
    PrefetchTimes times;
    auto copied = populate(set, memory, true);
    EMBER_TRY(copied);
    times.copy_written = *copied;
    auto mapped = populate(set, memory, false);
    EMBER_TRY(mapped);
    times.map_read = *mapped;
    return times;
}

Result<std::vector<GuestRange>> guest_ranges(const WorkingSet& set, const GuestMemory& memory) {
    std::vector<GuestRange> ranges;
    for (const auto& run : set.runs)
        EMBER_TRY(for_each_piece(memory, run, [&](std::span<uint8_t> piece, uint64_t at) {
            if (!ranges.empty() && ranges.back().addr + ranges.back().size == at)
                ranges.back().size += piece.size();
            else
                ranges.push_back({at, piece.size()});
            return Result<void>{};
        }));
    return ranges;
}

}  // namespace ember::snapshot
