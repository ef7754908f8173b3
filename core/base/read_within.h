// Reads parts of a file and waits for them a bounded time. Afterwards the parts are in the page
// cache, so a mapping of the file reads them without waiting on its file system. What the page
// cache holds already is read at once, on the calling thread (RWF_NOWAIT), as for every clone of
// a snapshot that is in use; the rest is read on a thread of its own, so that a file system that
// does not answer (a hung FUSE server, an NFS server gone) fails the call with a clear error
// instead of blocking the caller for ever. Such a thread is left to end whenever its read does,
// holding nothing of the caller's (a descriptor and a buffer of its own); while kMaxLeft of them
// still wait, a call fails at once.
// Starting the thread needs a thread that may still create threads (the VMM thread before its
// filter is installed).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "core/base/error.h"

namespace ember {

struct FileRange {
    uint64_t offset;
    uint64_t size;
};

inline constexpr int kMaxLeft = 4;

// An error of kind Unavailable when `bound` passed first, or too many earlier reads still wait.
Result<void> read_within(int fd, std::vector<FileRange> ranges, std::chrono::milliseconds bound);

}  // namespace ember
