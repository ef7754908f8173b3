// The kinds of virtio device ember's VMs can have, one line each in virtio_kinds.cc. Everything
// else the Vmm does with a device goes through virtio::VirtioKind and virtio::VirtioDevice.
#pragma once

#include <span>
#include <string>

#include "virtio/device.h"
#include "virtio/kind.h"

namespace ember {

// In the order they take slots.
std::span<const virtio::VirtioKind* const> virtio_kinds();

// What to say when no device takes an update: "drive 'x': no such drive" and the like.
std::string no_such_device(const virtio::DeviceUpdate& update);

}  // namespace ember
