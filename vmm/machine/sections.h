// Every kind of section a state file holds: the machine-wide ones (snapshot/) and one line per
// device kind. A new device adds its line here; ember and ember-snapshot-info read this list.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "snapshot/machine_state.h"
#include "virtio/mmio/persist.h"
#include "vmm/base/persistent.h"
#include "vmm/devices/i8042_persist.h"
#include "vmm/devices/serial_persist.h"

namespace ember {

// The kinds of device with a section: one line per kind.
inline constexpr StateSection kDeviceSections[] = {kSerialSection, kI8042Section,
                                                   virtio::kTransportSection};

inline constexpr auto kStateSections = [] {
    constexpr StateSection machine[] = {snapshot::kConfigSection, snapshot::kVmKvmSection,
                                        snapshot::kVcpuSection, snapshot::kMemorySection};
    std::array<StateSection, std::size(machine) + std::size(kDeviceSections)> all{};
    size_t i = 0;
    for (const auto& s : machine) all[i++] = s;
    for (const auto& s : kDeviceSections) all[i++] = s;
    return all;
}();

inline constexpr auto kStateSectionIds = [] {
    std::array<uint32_t, std::size(kStateSections)> ids{};
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = kStateSections[i].id;
    return ids;
}();

// "?" for an id no one declares.
constexpr std::string_view section_name(uint32_t id) {
    for (const auto& s : kStateSections)
        if (s.id == id) return s.name;
    return "?";
}

}  // namespace ember
