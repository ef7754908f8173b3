// The devices' sections in a state file: each device writes and reads its own payload
// (core/base/persistent.h); this file tags each with the device it belongs to and hands it back to
// that device at restore.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "core/base/persistent.h"
#include "snapshot/format.h"

namespace ember::snapshot {

// Which device a section belongs to, written before its payload: restore matches a section to a
// device by kind and id, and the VM rebuilt from the snapshot's configuration must place the
// device where the guest last saw it.
struct DeviceTag {
    std::string kind;  // "serial", "i8042", "block", "net"
    std::string id;    // its configuration id (drive_id, iface_id); the kind for a lone device
    uint64_t mmio_base = 0;  // 0 for a device on I/O ports
    uint32_t gsi = 0;
    bool operator==(const DeviceTag&) const = default;
};

// "block 'rootfs'", for messages.
std::string describe(const DeviceTag& tag);

struct TaggedDevice {
    Persistent* device;
    DeviceTag tag;
};

// One section per device, in the order given, each under its kind's id and version, the tag first.
void save_devices(Writer& file, std::span<const TaggedDevice> devices);

// Hands each device its section. In a tagged file (format 2 on), the section with the device's
// kind and id, which must sit where the device does; in an older one, the k-th device of a kind
// gets the k-th section with that kind's id. For each of `kinds`, the file must hold a section
// for every device and no other; nothing is restored unless all fit.
Result<void> restore_devices(const Reader& file, std::span<const TaggedDevice> devices,
                             std::span<const StateSection> kinds);

// A tagged section's tag and the device's payload after it, and the reverse (for the fuzzers).
struct SplitSection {
    DeviceTag tag;
    std::span<const uint8_t> payload;
};
Result<SplitSection> split_device_section(std::span<const uint8_t> section);
std::vector<uint8_t> tagged_payload(const DeviceTag& tag, std::span<const uint8_t> payload);

}  // namespace ember::snapshot
