#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

#include "core/base/unique_fd.h"

#include "tests/unit/test_memory.h"

namespace ember {
namespace {

GuestMemory two_regions() {
    MemoryRegionSpec specs[] = {{0, 0x10000}, {0x100000, 0x10000}};
    return std::move(*GuestMemory::create_anonymous(specs));
}

TEST(GuestMemory, ReadsBackWhatWasWritten) {
    auto mem = two_regions();
    ASSERT_TRUE(mem.write_obj<uint64_t>(0x100008, 0x1122334455667788));
    EXPECT_EQ(*mem.read_obj<uint64_t>(0x100008), 0x1122334455667788u);
    EXPECT_EQ(mem.total_size(), 0x20000u);
}

// Retired memory is given back, and its addresses stay taken: no later mapping lands where the
// kernel may still write (a drive's read left in flight at exit).
TEST(GuestMemory, RetiredMemoryKeepsItsAddressesReservedAndHoldsNothing) {
    auto mem = two_regions();
    ASSERT_TRUE(mem.write_obj<uint64_t>(0x100008, 0x1122334455667788));
    std::vector<std::pair<uint8_t*, size_t>> ranges;
    for (const auto& r : mem.regions()) ranges.emplace_back(r.mapping.data(), r.size());
    mem.retire();
    EXPECT_TRUE(mem.regions().empty());
    EXPECT_FALSE(mem.read_obj<uint64_t>(0x100008));
    for (auto [addr, size] : ranges) {
        void* again =
            ::mmap(addr, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        EXPECT_EQ(again, MAP_FAILED) << "the range was free again";
        EXPECT_EQ(errno, EEXIST);
        // Reserved without access: the kernel's write into it fails rather than landing.
        unsigned char residency = 1;
        EXPECT_EQ(::mincore(addr, 4096, &residency), 0);
        EXPECT_EQ(residency & 1, 0) << "the page was given back";
    }
}

TEST(GuestMemory, RejectsAddressesOutsideEveryRegion) {
    auto mem = two_regions();
    EXPECT_FALSE(mem.slice(0x10000, 1));   // first byte past region 0
    EXPECT_FALSE(mem.slice(0x50000, 0));   // a hole, even for zero bytes
    EXPECT_FALSE(mem.slice(0x110000, 1));  // past the end
    EXPECT_FALSE(mem.read_obj<uint32_t>(UINT64_MAX - 1));
}

TEST(GuestMemory, RejectsAccessesCrossingARegionEdge) {
    auto mem = two_regions();
    EXPECT_TRUE(mem.slice(0xfff8, 8));
    auto crossing = mem.slice(0xfff8, 9);
    ASSERT_FALSE(crossing);
    EXPECT_NE(crossing.error().message.find("runs past the end"), std::string::npos);
    // A length so large that addr + len wraps must not pass.
    EXPECT_FALSE(mem.slice(0x100000, UINT64_MAX));
}

// So that KVM can back the guest with large pages where the host has them.
TEST(GuestMemory, RegionsSitAt2MiBAlignedHostAddresses) {
    for (int n = 0; n < 8; ++n) {
        auto mem = two_regions();
        for (const auto& r : mem.regions())
            EXPECT_EQ(reinterpret_cast<uintptr_t>(r.mapping.data()) % 0x200000, 0u);
    }
    UniqueFd file(::memfd_create("ember-guest-memory-test", MFD_CLOEXEC));
    ASSERT_EQ(::ftruncate(file.get(), 0x20000), 0);
    MemoryRegionSpec specs[] = {{0, 0x10000}, {0x100000, 0x10000}};
    auto mapped = GuestMemory::map_file(specs, file.get());
    ASSERT_TRUE(mapped) << mapped.error().message;
    for (const auto& r : mapped->regions())
        EXPECT_EQ(reinterpret_cast<uintptr_t>(r.mapping.data()) % 0x200000, 0u);
}

TEST(GuestMemory, RejectsBadRegionSpecs) {
    MemoryRegionSpec unaligned[] = {{0x800, 0x1000}};
    EXPECT_FALSE(GuestMemory::create_anonymous(unaligned));
    MemoryRegionSpec overlapping[] = {{0, 0x2000}, {0x1000, 0x1000}};
    EXPECT_FALSE(GuestMemory::create_anonymous(overlapping));
    MemoryRegionSpec empty[] = {{0, 0}};
    EXPECT_FALSE(GuestMemory::create_anonymous(empty));
}

}  // namespace
}  // namespace ember
