// core/base/give_back_memory: what building a VM touched and no longer needs goes back to the
// kernel, and nothing the caller still uses; what a ready ember touches ahead of its load.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "core/base/give_back_memory.h"
#include "core/base/unique_fd.h"

namespace ember {
namespace {

uintptr_t page_size() {
    return static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
}

// Whether the page holding `address` is in memory.
bool resident(uintptr_t address) {
    unsigned char in = 0;
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a page below the stack pointer holds no object
    void* page = reinterpret_cast<void*>(address & ~(page_size() - 1));
    return ::mincore(page, page_size(), &in) == 0 && (in & 1) != 0;
}

// Writes 64 KiB of stack in each of `depth` nested calls; the address of the deepest. From alloca,
// which is on the thread's own stack even where AddressSanitizer keeps locals on one of its own.
[[gnu::noinline]] uintptr_t touch_stack(int depth) {
    auto* block = static_cast<volatile char*>(__builtin_alloca(64 * 1024));
    for (size_t i = 0; i < 64 * 1024; i += 512) block[i] = 1;
    const uintptr_t deepest =
        depth > 1 ? touch_stack(depth - 1) : reinterpret_cast<uintptr_t>(&block[0]);
    block[0] = 2;  // used after the call: no tail call
    return deepest;
}

TEST(GiveBackMemory, TheStackBelowTheCallerGoesBackAndTheCallersFrameStays) {
    const uintptr_t deep = touch_stack(3);
    ASSERT_TRUE(resident(deep)) << "the deepest call's page, before";
    volatile char here = 0;
    give_back_stack_below_here();
    EXPECT_FALSE(resident(deep)) << "the deepest call's page, after";
    here = 1;
    EXPECT_TRUE(resident(reinterpret_cast<uintptr_t>(__builtin_frame_address(0))))
        << "the caller's own frame";
    EXPECT_EQ(here, 1);
}

// Below another thread's stack is its guard page, mapped, and then other memory: there it does
// nothing.
TEST(GiveBackMemory, OnAnyThreadButTheMainOneTheStackStays) {
    bool before = false, after = false;
    std::thread([&] {
        const uintptr_t deep = touch_stack(3);
        before = resident(deep);
        give_back_stack_below_here();
        after = resident(deep);
    }).join();
    ASSERT_TRUE(before);
    EXPECT_TRUE(after);
}

TEST(GiveBackMemory, FreedHeapPagesGoBackAndLiveOnesStay) {
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "under AddressSanitizer its allocator serves malloc: there is no glibc heap to "
                    "give back (the release build's run of this test checks it)";
#endif
    constexpr size_t kBlock = 16 * 1024;  // from the heap, below malloc's mmap threshold
    std::vector<void*> blocks;
    for (int i = 0; i < 256; ++i) {
        void* b = std::malloc(kBlock);  // NOLINT(cppcoreguidelines-no-malloc): malloc's own heap
        ASSERT_NE(b, nullptr);
        std::memset(b, 1, kBlock);
        blocks.push_back(b);
    }
    // Above them: freeing them leaves a hole, which free() keeps, not a top it would trim itself.
    void* live = std::malloc(kBlock);  // NOLINT(cppcoreguidelines-no-malloc)
    std::memset(live, 7, kBlock);
    std::vector<uintptr_t> freed;
    for (void* b : blocks) {
        freed.push_back(reinterpret_cast<uintptr_t>(b) + kBlock / 2);
        std::free(b);  // NOLINT(cppcoreguidelines-no-malloc)
    }
    auto count_resident = [&] {
        int n = 0;
        for (uintptr_t a : freed) n += resident(a);
        return n;
    };
    ASSERT_GT(count_resident(), 200) << "freed, and still malloc's";
    give_back_freed_heap();
    EXPECT_LT(count_resident(), 10) << "given back";
    EXPECT_EQ(static_cast<unsigned char*>(live)[kBlock - 1], 7) << "a live block is untouched";
    std::free(live);  // NOLINT(cppcoreguidelines-no-malloc)
}

// Whether this process maps the page at `address` (/proc/self/pagemap's present bit): a page of a
// file in the page cache is resident before any process maps it.
bool mapped(int pagemap, uintptr_t address) {
    uint64_t entry = 0;
    const auto at = static_cast<off_t>(address / page_size() * sizeof entry);
    return ::pread(pagemap, &entry, sizeof entry, at) == sizeof entry && (entry >> 63) != 0;
}

struct Range {
    uintptr_t from, to;
};

// The program's executable segments.
std::vector<Range> program_text() {
    std::vector<Range> text;
    ::dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* out) {
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr)& ph = info->dlpi_phdr[i];
                if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0)
                    static_cast<std::vector<Range>*>(out)->push_back(
                        {(info->dlpi_addr + ph.p_vaddr) & ~(page_size() - 1),
                         info->dlpi_addr + ph.p_vaddr + ph.p_memsz});
            }
            return 1;
        },
        &text);
    return text;
}

TEST(TouchAhead, TheProgramsWholeTextIsMapped) {
    UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(pagemap.valid());
    const auto text = program_text();
    ASSERT_FALSE(text.empty());
    auto count = [&] {
        size_t n = 0, of = 0;
        for (const Range& r : text)
            for (uintptr_t a = r.from; a < r.to; a += page_size(), ++of)
                n += mapped(pagemap.get(), a);
        return std::pair{n, of};
    };
    // Unmapped first (clean pages of a file: what runs next maps its own back), so that the test
    // sees what touch_ahead maps.
    for (const Range& r : text)
        // NOLINTNEXTLINE(performance-no-int-to-ptr): the program's own segment, by its headers
        ASSERT_EQ(::madvise(reinterpret_cast<void*>(r.from), r.to - r.from, MADV_DONTNEED), 0);
    const auto [before, pages] = count();
    ASSERT_LT(before, pages / 2);
    // Linux before 5.14 has no MADV_POPULATE_READ, and touch_ahead maps nothing there.
    if (::madvise(reinterpret_cast<void*>(text.front().from), page_size(), MADV_POPULATE_READ) !=
            0 &&
        errno == EINVAL)
        GTEST_SKIP() << "this kernel has no MADV_POPULATE_READ";
    touch_ahead(0, 0);
    EXPECT_EQ(count().first, pages);
}

TEST(TouchAhead, TheStackBelowTheCallerIsTouched) {
    give_back_stack_below_here(0);
    const uintptr_t frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    const uintptr_t below = frame - 48 * 1024;
    ASSERT_FALSE(resident(below)) << "given back first";
    touch_ahead(64 * 1024, 0);
    EXPECT_TRUE(resident(below));
}

}  // namespace
}  // namespace ember
