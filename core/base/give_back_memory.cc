#include "core/base/give_back_memory.h"

#include <link.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

namespace ember {

void give_back_freed_heap() {
    ::malloc_trim(0);
}

// Down from below `keep` to the lowest page still mapped (the kernel keeps a gap below the main
// thread's stack), so that nothing beyond the stack's own mapping is touched; at most 8 MiB, the
// usual stack limit. The pages are found with mincore, which fails where nothing is mapped, and
// given back with one madvise: each madvise flushes the TLB of every CPU the process runs on, a
// running vCPU's too (after a load, a page at a time took 79-158 us on the 2-core host, one call
// 49-52). Only on the main thread: below
// another thread's stack is its guard page, which is mapped, and then another mapping. From the
// frame's address, not a local's: AddressSanitizer may keep locals on a stack of its own, in the
// heap.
void give_back_stack_below_here(size_t keep) {
    if (::gettid() != ::getpid()) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    // A page at least: the frames of the calls made from here (mincore, madvise) are below this
    // one's, and their return addresses must stay.
    const uintptr_t top = (frame - std::max<uintptr_t>(keep, page)) & ~(page - 1);
    constexpr uintptr_t kMost = 8 * 1024 * 1024;
    constexpr uintptr_t kProbePages = 16;
    std::array<unsigned char, kProbePages> resident{};
    uintptr_t low = top;
    // Addresses below the stack pointer, which no object holds: only integers name them.
    // NOLINTBEGIN(performance-no-int-to-ptr)
    for (uintptr_t step = kProbePages * page; step >= page; step /= kProbePages)
        while (top - (low - step) <= kMost &&
               ::mincore(reinterpret_cast<void*>(low - step), step, resident.data()) == 0)
            low -= step;
    if (low < top) (void)::madvise(reinterpret_cast<void*>(low), top - low, MADV_DONTNEED);
    // NOLINTEND(performance-no-int-to-ptr)
}

namespace {

// The main program's executable segments: the first object dl_iterate_phdr reports.
int populate_program_text(dl_phdr_info* info, size_t, void*) {
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD || (ph.p_flags & PF_X) == 0) continue;
        const uintptr_t from = (info->dlpi_addr + ph.p_vaddr) & ~(page - 1);
        const uintptr_t to = info->dlpi_addr + ph.p_vaddr + ph.p_memsz;
        // An address the program's headers name, not an object's.
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        (void)::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_READ);
    }
    return 1;  // the program only
}

// A byte of each page written through a volatile pointer, so that the compiler keeps every write
// (memory about to be freed, or below the frame, is otherwise dead to it).
void touch_pages(volatile char* bytes, size_t size) {
    const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    for (size_t at = 0; at < size; at += page) bytes[at] = 0;
}

[[gnu::noinline]] void touch_stack(size_t bytes) {
    touch_pages(static_cast<volatile char*>(__builtin_alloca(bytes)), bytes);
}

}  // namespace

void touch_ahead(size_t stack_bytes, size_t heap_bytes) {
    ::dl_iterate_phdr(populate_program_text, nullptr);
    if (::gettid() == ::getpid() && stack_bytes > 0) touch_stack(stack_bytes);
    // In pieces below malloc's mmap threshold, so that they come from the heap.
    constexpr size_t kPiece = 16 * 1024;
    std::vector<std::unique_ptr<char[]>> pieces;
    for (size_t made = 0; made < heap_bytes; made += kPiece) {
        pieces.push_back(std::make_unique_for_overwrite<char[]>(kPiece));
        touch_pages(pieces.back().get(), kPiece);
    }
}

}  // namespace ember
