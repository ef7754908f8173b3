// virtio-net as a kind: one device per configured network interface, in the configuration's
// order (the first is eth0).
#pragma once

#include "virtio/kind.h"

namespace ember::virtio {

extern const VirtioKind kNetKind;

}  // namespace ember::virtio
