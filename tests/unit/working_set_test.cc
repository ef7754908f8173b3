#include "snapshot/working_set.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"
#include "snapshot/format.h"

namespace ember::snapshot {
namespace {

constexpr uint64_t kPage = 4096;
// Four of the kernel's 64 KiB fault-around windows each (guest memory sits at 2 MiB-aligned host
// addresses, so the windows line up with the region): a read fault maps the file's other pages
// in its window too (they are in the page cache), so what a guest read is known to a window.
constexpr uint64_t kRegionPages = 64;
// Two regions, as a memory file holds them back to back.
const MemoryRegionSpec kSpecs[] = {{0, kRegionPages* kPage}, {0x100000, kRegionPages* kPage}};
const SnapshotIdentity kSnapshot{0x1234abcd, 2 * kRegionPages* kPage};

UniqueFd memfd() {
    return UniqueFd(::memfd_create("ember-working-set-test", MFD_CLOEXEC));
}

// A memory file whose page N starts with the value N + 1 (no holes: every page is the file's).
UniqueFd memory_file(uint64_t pages = 2 * kRegionPages) {
    UniqueFd fd = memfd();
    std::vector<uint8_t> page(kPage, 0xee);
    for (uint64_t n = 0; n < pages; ++n) {
        const uint64_t v = n + 1;
        std::memcpy(page.data(), &v, sizeof v);
        EXPECT_TRUE(pwrite_all(fd.get(), page, n * kPage));
    }
    return fd;
}

uint64_t first_word(const GuestMemory& m, uint64_t guest_addr) {
    return *m.read_obj<uint64_t>(guest_addr);
}

std::vector<std::vector<Residency>> residency_of(const GuestMemory& m) {
    std::vector<std::vector<Residency>> all;
    for (const auto& r : m.regions()) {
        auto pages = resident_pages(r.mapping.data(), r.size());
        EXPECT_TRUE(pages) << pages.error().message;
        all.push_back(pages ? *pages : std::vector<Residency>{});
    }
    return all;
}

// The guest of the first clone: reads pages 1-2 of region 0 and 0 of region 1 (their windows
// come in whole), writes page 37 of region 0 and pages 62-63 of region 1, which run to the
// region's edge; windows 1 and 3 of region 0 and 1-2 of region 1 stay untouched.
void touch_as_the_first_clone(const GuestMemory& m) {
    EXPECT_EQ(first_word(m, 1 * kPage), 2u);
    EXPECT_EQ(first_word(m, 2 * kPage), 3u);
    EXPECT_EQ(first_word(m, 0x100000), kRegionPages + 1);
    for (uint64_t addr : {37 * kPage, 0x100000 + 62 * kPage, 0x100000 + 63 * kPage})
        EXPECT_TRUE(m.write_obj<uint64_t>(addr, 0xdead));
}

// Pages of region `r` that must be absent: the untouched windows.
void expect_untouched_windows_absent(const std::vector<std::vector<Residency>>& residency) {
    for (uint64_t p = 16; p < 32; ++p) EXPECT_EQ(residency[0][p], Residency::Absent) << p;
    for (uint64_t p = 48; p < 64; ++p) EXPECT_EQ(residency[0][p], Residency::Absent) << p;
    for (uint64_t p = 16; p < 48; ++p) EXPECT_EQ(residency[1][p], Residency::Absent) << p;
}

TEST(WorkingSet, PagemapTellsReadPagesFromWrittenOnesAndUntouchedOnes) {
    UniqueFd file = memory_file();
    auto m = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(m) << m.error().message;
    touch_as_the_first_clone(*m);
    auto residency = residency_of(*m);
    ASSERT_EQ(residency.size(), 2u);
    for (uint64_t p : {1, 2}) EXPECT_EQ(residency[0][p], Residency::Shared);
    EXPECT_EQ(residency[1][0], Residency::Shared);
    EXPECT_EQ(residency[0][37], Residency::Private);
    EXPECT_EQ(residency[1][62], Residency::Private);
    EXPECT_EQ(residency[1][63], Residency::Private);
    expect_untouched_windows_absent(residency);
    // As runs of the memory file: the written ones exactly, and none across the regions' edge.
    auto runs = touched_runs(residency, *m);
    std::vector<PageRun> written;
    for (const auto& r : runs) {
        if (r.written) written.push_back(r);
        EXPECT_EQ(r.offset / (kRegionPages * kPage),
                  (r.offset + r.pages * kPage - 1) / (kRegionPages * kPage));
    }
    EXPECT_EQ(written, (std::vector<PageRun>{{37 * kPage, 1, true},
                                             {(kRegionPages + 62) * kPage, 2, true}}));
}

TEST(WorkingSet, ALaterCloneGetsTheSnapshotsPagesInPlaceAndTheRestStaysLazy) {
    UniqueFd file = memory_file();
    UniqueFd set_file = memfd();
    {
        auto first = GuestMemory::map_file(kSpecs, file.get());
        ASSERT_TRUE(first);
        touch_as_the_first_clone(*first);
        auto runs = touched_runs(residency_of(*first), *first);
        ASSERT_TRUE(write_working_set(set_file.get(), kSnapshot, runs));
    }
    auto set = read_working_set(set_file.get(), kSnapshot);
    ASSERT_TRUE(set) << set.error().message;
    const auto counts = set->counts();
    EXPECT_EQ(counts.written_pages, 3u);
    EXPECT_GE(counts.read_pages, 3u);
    // The index alone: the pages come from the memory file.
    EXPECT_EQ(*file_size(set_file.get()), 56 + set->runs.size() * 24 + 8);

    auto clone = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(clone);
    ASSERT_TRUE(prefetch_working_set(*set, *clone));
    // In place before anything touched them: the read pages still the file's, shared; the written
    // ones private, holding the snapshot's bytes, not what the first clone wrote.
    auto residency = residency_of(*clone);
    EXPECT_EQ(touched_runs(residency, *clone), set->runs);
    expect_untouched_windows_absent(residency);
    EXPECT_EQ(first_word(*clone, 37 * kPage), 38u);
    EXPECT_EQ(first_word(*clone, 0x100000 + 63 * kPage), 2 * kRegionPages);
    EXPECT_EQ(first_word(*clone, 1 * kPage), 2u);
    // The pages nobody touched are still the file's, mapped when touched.
    EXPECT_EQ(first_word(*clone, 0x100000 + 20 * kPage), kRegionPages + 21);
    // Writing a prefetched page changes this clone only.
    ASSERT_TRUE(clone->write_obj<uint64_t>(37 * kPage, 7));
    uint64_t in_file = 0;
    ASSERT_TRUE(pread_exact(file.get(), {reinterpret_cast<uint8_t*>(&in_file), 8}, 37 * kPage));
    EXPECT_EQ(in_file, 38u);
}

TEST(WorkingSet, AWorkingSetOfAnotherSnapshotIsRefused) {
    UniqueFd set_file = memfd();
    const std::vector<PageRun> runs = {{1 * kPage, 2, false}, {5 * kPage, 1, true}};
    ASSERT_TRUE(write_working_set(set_file.get(), kSnapshot, runs));
    auto other =
        read_working_set(set_file.get(), {kSnapshot.state_checksum + 1, kSnapshot.memory_bytes});
    ASSERT_FALSE(other);
    EXPECT_NE(other.error().message.find("recorded from another snapshot"), std::string::npos)
        << other.error().message;
    EXPECT_FALSE(read_working_set(set_file.get(), {kSnapshot.state_checksum, 4 * kPage}));
}

TEST(WorkingSet, ADamagedOrForeignFileIsRefusedBeforeAnythingIsRead) {
    auto error_of = [](const std::vector<uint8_t>& bytes, const SnapshotIdentity& id) {
        UniqueFd fd = memfd();
        EXPECT_TRUE(write_all(fd.get(), bytes));
        auto r = read_working_set(fd.get(), id);
        return r ? std::string("(read)") : r.error().message;
    };
    UniqueFd good = memfd();
    const std::vector<PageRun> runs = {
        {1 * kPage, 2, false}, {5 * kPage, 1, true}, {70 * kPage, 3, false}};
    ASSERT_TRUE(write_working_set(good.get(), kSnapshot, runs));
    std::vector<uint8_t> bytes(*file_size(good.get()));
    ASSERT_TRUE(pread_exact(good.get(), bytes, 0));
    EXPECT_EQ(error_of(bytes, kSnapshot), "(read)");

    EXPECT_NE(error_of({1, 2, 3}, kSnapshot).find("not a working set file"), std::string::npos);
    EXPECT_NE(error_of(std::vector<uint8_t>(8192, 0), kSnapshot).find("not a working set file"),
              std::string::npos);
    auto flipped = bytes;
    flipped[56 + 3] ^= 1;  // the first run's offset
    EXPECT_NE(error_of(flipped, kSnapshot).find("checksum mismatch"), std::string::npos);
    auto short_index = bytes;
    short_index.resize(bytes.size() - 8);
    EXPECT_NE(error_of(short_index, kSnapshot).find("shorter than its index"), std::string::npos);
    auto longer = bytes;
    longer.resize(bytes.size() + kPage);
    EXPECT_NE(error_of(longer, kSnapshot).find("where its header and index are"),
              std::string::npos);
    // A version 1 file: the same index, then the pages' contents from a page-aligned offset.
    auto v1 = bytes;
    v1[8] = 1;
    const uint64_t sum = fnv1a64(std::span(v1).first(v1.size() - 8));
    std::memcpy(v1.data() + v1.size() - 8, &sum, 8);
    v1.resize(kPage + 6 * kPage, 0);
    EXPECT_EQ(error_of(v1, kSnapshot), "(read)");
    v1.resize(v1.size() - kPage);
    EXPECT_NE(error_of(v1, kSnapshot).find("but its index lists 6 pages"), std::string::npos);
    auto huge_count = bytes;
    huge_count[32 + 4] = 0xff;  // the run count, past the snapshot's pages
    EXPECT_NE(error_of(huge_count, kSnapshot).find("more than the snapshot has pages"),
              std::string::npos);
}

TEST(WorkingSet, RunsOutsideTheSnapshotsMemoryAreRefused) {
    // A file written for a larger memory, claiming the small snapshot's identity.
    UniqueFd set_file = memfd();
    const std::vector<PageRun> past_the_end = {{(2 * kRegionPages + 1) * kPage, 1, true}};
    ASSERT_TRUE(write_working_set(set_file.get(), kSnapshot, past_the_end));
    auto r = read_working_set(set_file.get(), kSnapshot);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("runs past the snapshot's memory"), std::string::npos)
        << r.error().message;
    UniqueFd overlapping = memfd();
    const std::vector<PageRun> twice = {{1 * kPage, 2, false}, {2 * kPage, 1, true}};
    ASSERT_TRUE(write_working_set(overlapping.get(), kSnapshot, twice));
    r = read_working_set(overlapping.get(), kSnapshot);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("out of order or overlapping"), std::string::npos);
}

TEST(WorkingSet, GuestRangesAreWhereTheRunsArePutInGuestMemory) {
    UniqueFd file = memory_file();
    auto m = GuestMemory::map_file(kSpecs, file.get());
    ASSERT_TRUE(m) << m.error().message;
    // Memory-file offsets: a read run and a written one back to back in region 0, one that
    // crosses into region 1 (at guest 0x100000, not right after region 0), and one inside it.
    WorkingSet set{kSnapshot,
                   {{2 * kPage, 3, false},
                    {5 * kPage, 1, true},
                    {(kRegionPages - 2) * kPage, 4, true},
                    {(kRegionPages + 10) * kPage, 1, false}}};
    auto ranges = guest_ranges(set, *m);
    ASSERT_TRUE(ranges) << ranges.error().message;
    const std::vector<std::pair<uint64_t, uint64_t>> want = {
        {2 * kPage, 4 * kPage},
        {(kRegionPages - 2) * kPage, 2 * kPage},
        {0x100000, 2 * kPage},
        {0x100000 + 10 * kPage, kPage}};
    ASSERT_EQ(ranges->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ((*ranges)[i].addr, want[i].first) << i;
        EXPECT_EQ((*ranges)[i].size, want[i].second) << i;
    }
    set.runs = {{(2 * kRegionPages - 1) * kPage, 2, false}};
    EXPECT_FALSE(guest_ranges(set, *m)) << "a run past guest memory";
}

}  // namespace
}  // namespace ember::snapshot
