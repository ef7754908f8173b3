// Every kind of section a state file holds, one line each and all in this one list, so that no two
// share an id (checked below, when ember is compiled). An id is forever: state files written by
// any earlier ember name it. A new device kind adds its line here and uses it for
// Persistent::section() (vmm/base/persistent.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ember {

struct StateSection {
    uint32_t id;
    std::string_view name;  // for tools and error messages
};

namespace state_sections {

inline constexpr StateSection kConfig{1, "config"};
inline constexpr StateSection kVmKvm{2, "vm (PIC, IOAPIC, PIT, clock)"};
inline constexpr StateSection kVcpu{3, "vcpu"};
inline constexpr StateSection kSerial{4, "serial"};
inline constexpr StateSection kI8042{5, "i8042"};
inline constexpr StateSection kMemory{6, "memory layout"};
inline constexpr StateSection kVirtio{7, "virtio"};

inline constexpr StateSection kAll[] = {kConfig, kVmKvm, kVcpu, kSerial, kI8042, kMemory, kVirtio};

inline constexpr auto kIds = [] {
    std::array<uint32_t, std::size(kAll)> ids{};
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = kAll[i].id;
    return ids;
}();

static_assert(
    [] {
        for (size_t i = 0; i < kIds.size(); ++i)
            for (size_t j = i + 1; j < kIds.size(); ++j)
                if (kIds[i] == kIds[j]) return false;
        return true;
    }(),
    "two kinds of state section share an id");

// "?" for an id no kind has.
constexpr std::string_view name_of(uint32_t id) {
    for (const auto& s : kAll)
        if (s.id == id) return s.name;
    return "?";
}

}  // namespace state_sections
}  // namespace ember
