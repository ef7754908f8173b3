// Every kind of section a state file holds, one line each and all in this one list, so that no two
// share an id (checked below, when ember is compiled). An id is forever: state files written by
// any earlier ember name it. A new device kind adds its line here, marked kPerDevice, and uses it
// for Persistent::section() (core/base/persistent.h); a VM restores every per-device kind.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ember {

struct StateSection {
    uint32_t id;
    std::string_view name;  // for tools and error messages
    // The layout this ember writes; it reads every one from 1 up to it.
    uint32_t version = 1;
    // One section per device, tagged with the device it belongs to (snapshot/devices.h), rather
    // than a section of the machine's.
    bool per_device = false;
};

inline constexpr bool kPerDevice = true;

namespace state_sections {

inline constexpr StateSection kConfig{1, "config"};
inline constexpr StateSection kVmKvm{2, "vm (PIC, IOAPIC, PIT, clock)"};
// 2: the vCPU's nested virtualization state, when its guest used it; 3: events that hold an
// exception still pending (KVM_CAP_EXCEPTION_PAYLOAD's format), with or without a nested state
inline constexpr StateSection kVcpu{3, "vcpu", 3};
inline constexpr StateSection kSerial{4, "serial", 1, kPerDevice};
inline constexpr StateSection kI8042{5, "i8042", 1, kPerDevice};
// 2: the generation ID's address; 3: the page size
inline constexpr StateSection kMemory{6, "memory layout", 3};
// 2: the device's own state after the transport's (its rate limiters' tokens)
inline constexpr StateSection kVirtio{7, "virtio", 2, kPerDevice};

// The custom CPU template the guest was booted under, when there was one (written optional).
inline constexpr StateSection kCpuTemplate{8, "cpu template"};

// Empty, written optional by a restore from a store into a state with network interfaces
// (snapshot/store/store_state.h): its tap names are a store's, and its load must name this host's
// for every interface.
inline constexpr StateSection kFromStore{9, "from a store"};

inline constexpr StateSection kAll[] = {kConfig, kVmKvm,  kVcpu,        kSerial,   kI8042,
                                        kMemory, kVirtio, kCpuTemplate, kFromStore};

// The kinds a VM hands to its devices at restore.
inline constexpr auto kPerDeviceKinds = [] {
    constexpr size_t n = [] {
        size_t count = 0;
        for (const auto& s : kAll) count += s.per_device;
        return count;
    }();
    std::array<StateSection, n> kinds{};
    size_t i = 0;
    for (const auto& s : kAll)
        if (s.per_device) kinds[i++] = s;
    return kinds;
}();

static_assert(
    [] {
        for (size_t i = 0; i < std::size(kAll); ++i)
            for (size_t j = i + 1; j < std::size(kAll); ++j)
                if (kAll[i].id == kAll[j].id) return false;
        return true;
    }(),
    "two kinds of state section share an id");

// A kind named "?" for an id no kind has.
constexpr StateSection kind_of(uint32_t id) {
    for (const auto& s : kAll)
        if (s.id == id) return s;
    return {id, "?"};
}

constexpr std::string_view name_of(uint32_t id) {
    return kind_of(id).name;
}

}  // namespace state_sections
}  // namespace ember
