// The kinds of virtio device ember's VMs can have, one line each in virtio_kinds.cc. Everything
// else the Vmm does with a device goes through virtio::VirtioKind and virtio::VirtioDevice.
#pragma once

#include <span>

#include "virtio/kind.h"

namespace ember {

// In the order they take slots.
std::span<const virtio::VirtioKind* const> virtio_kinds();

}  // namespace ember
