// snapshot: the state file's cpu template section, the custom CPU template (PUT /cpu-config, the
// config file's cpu-config) the guest was booted under. Its effect is in each vCPU's section (the
// CPUID and MSRs the guest was given); this says where that came from, so a VM restored from it,
// and every snapshot taken of that VM, still knows, and so ember-snapshot-info can tell. Written
// optional: an ember that does not know the section loads the file without it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "core/config/cpu_template.h"

namespace ember::snapshot {

std::vector<uint8_t> encode(const CpuTemplate& t);
// Bounded as a template from the API is (cpu_template.h's kMax...), and checked whole.
Result<CpuTemplate> decode_cpu_template(std::span<const uint8_t> payload);

}  // namespace ember::snapshot
