// snapshot: the state file's config section, the VM's configuration as it was when saved, written
// and read by walking its description (core/config/config_fields.h) in the state file's order.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/config/vm_config.h"

namespace ember::snapshot {

std::vector<uint8_t> encode(const VmConfig& c);
// Reads a section of `version` (state_sections::kConfig: 1 up to the one ember writes); checked as
// any configuration that comes in is.
Result<ValidVmConfig> decode_config(std::span<const uint8_t> payload, uint32_t version);

}  // namespace ember::snapshot
