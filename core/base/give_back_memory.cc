#include "core/base/give_back_memory.h"

#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace ember {

void give_back_freed_heap() {
    ::malloc_trim(0);
}

// Page by page down from below `keep`, until the first page that is not mapped (the gap the
// kernel keeps below the main thread's stack), so that nothing beyond the stack's own mapping is
// touched; at most 8 MiB, the usual stack limit. Only on the main thread: below another thread's
// stack is its guard page, which is mapped, and then another mapping. From the frame's address,
// not a local's: AddressSanitizer may keep locals on a stack of its own, in the heap.
void give_back_stack_below_here(size_t keep) {
    if (::gettid() != ::getpid()) return;
    const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto frame = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
    const uintptr_t top = (frame - keep) & ~(page - 1);
    constexpr uintptr_t kMost = 8 * 1024 * 1024;
    for (uintptr_t at = top - page; top - at <= kMost; at -= page)
        // An address below the stack pointer, which no object holds: only an integer names it.
        // NOLINTNEXTLINE(performance-no-int-to-ptr)
        if (::madvise(reinterpret_cast<void*>(at), page, MADV_DONTNEED) != 0) return;
}

}  // namespace ember
