// A File-backed restore of a VM on hugetlb pages. Such memory cannot map a regular file, so the
// memory file's bytes are read into it at load: its data only, since a Full snapshot leaves zero
// pages as holes, and a hole's pages stay untouched (zero, from the reserved pool) until the guest
// uses them.
#pragma once

#include <cstdint>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember::snapshot {

// Reads `fd`, laid out as the regions back to back from offset 0, into `memory`; returns the
// bytes read. The file's size must already be checked against the regions.
Result<uint64_t> copy_memory_file(int fd, const GuestMemory& memory);

}  // namespace ember::snapshot
