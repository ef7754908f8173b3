// The devices' sections in a state file: each device writes and reads its own payload
// (vmm/base/persistent.h); this file only puts them in order and hands them back.
#pragma once

#include <span>

#include "snapshot/format.h"
#include "vmm/base/error.h"
#include "vmm/base/persistent.h"

namespace ember::snapshot {

// One section per device, in the order given, each under its kind's id.
void save_devices(Writer& file, std::span<Persistent* const> devices);

// Hands each device its section: the k-th device of a kind gets the k-th section with that
// kind's id. For each of `kinds`, the file must hold exactly as many sections as there are
// devices of that kind.
Result<void> restore_devices(const Reader& file, std::span<Persistent* const> devices,
                             std::span<const StateSection> kinds);

}  // namespace ember::snapshot
