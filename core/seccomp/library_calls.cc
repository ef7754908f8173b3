#include "core/seccomp/library_calls.h"

#include <malloc.h>
#include <sys/syscall.h>

namespace ember::seccomp {

void make_library_calls_once() {
    // glibc's first trim of a thread arena's heap reads overcommit_memory. ember has no such
    // arena: main() limits glibc to its main arena (M_ARENA_MAX), which is trimmed with brk.
    //
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
