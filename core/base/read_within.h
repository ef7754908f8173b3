// Reads parts of a file on a thread of its own and waits for them a bounded time. Afterwards the
// parts are in the page cache, so a mapping of the file reads them without waiting on its file
// system. A file system that does not answer (a hung FUSE server, an NFS server gone) fails the
// call with a clear error instead of blocking the caller for ever; the thread is left to end
// whenever its read does, and holds nothing of the caller's (a descriptor and a buffer of its own).
// Needs a thread that may still create threads (the VMM thread before its filter is installed).
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

// An error of kind Unavailable when `bound` passed first.
Result<void> read_within(int fd, std::vector<FileRange> ranges, std::chrono::milliseconds bound);

}  // namespace ember
