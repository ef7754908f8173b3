#include "core/seccomp/library_calls.h"

#include <malloc.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <thread>

namespace ember::seccomp {

void make_library_calls_once() {
    // A thread that allocates gets an arena of its own; freeing blocks of 64 KiB or more there
    // (FASTBIN_CONSOLIDATION_THRESHOLD) past the trim threshold (128 KiB) shrinks its heap, and
    // the first shrink in the process reads overcommit_memory and caches the answer. Blocks stay
    // below the mmap threshold (128 KiB) so that they come from the arena's heap.
    std::thread([] {
        constexpr int kBlocks = 8;
        void* blocks[kBlocks];
        for (auto& b : blocks) {
            b = std::malloc(96 * 1024);
            asm volatile("" : : "r"(b) : "memory");  // so the compiler cannot elide the pair
        }
        for (auto* b : blocks) std::free(b);
    }).join();
    // The API server trims the heap after a crowd of connections leaves. glibc's first
    // malloc_trim sets its allocator up if nothing did yet (as under AddressSanitizer, whose
    // allocator stands in for glibc's), and that asks getrandom for its tcache key: a call the API
    // thread's filter forbids.
    ::malloc_trim(0);
}

bool is_file_lookup(long syscall_number) {
    switch (syscall_number) {
        case SYS_open:
        case SYS_openat:
        case SYS_openat2:
        case SYS_stat:
        case SYS_lstat:
        case SYS_newfstatat:
        case SYS_statx:
        case SYS_access:
        case SYS_faccessat:
        case SYS_faccessat2:
        case SYS_readlink:
        case SYS_readlinkat: return true;
        default: return false;
    }
}

}  // namespace ember::seccomp
