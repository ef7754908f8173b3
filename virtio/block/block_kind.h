// virtio-blk as a kind: one device per configured drive, the root drive first.
#pragma once

#include "virtio/kind.h"

namespace ember::virtio {

extern const VirtioKind kBlockKind;

}  // namespace ember::virtio
