// The VM generation ID (ACPI VMGenID): 16 random bytes where the DSDT's ADDR method points. A new
// VM gets one, and so does every VM restored from a snapshot, so that clones of one snapshot stop
// sharing RNG state: the guest rereads it when the Generic Event Device's interrupt fires.
#pragma once

#include <cstdint>

#include "core/base/error.h"
#include "core/memory/guest_memory.h"

namespace ember {

Result<void> write_new_generation_id(const GuestMemory& mem, uint64_t addr);

}  // namespace ember
