#include "vmm/machine/virtio_kinds.h"

#include "virtio/block/block_kind.h"
#include "virtio/net/net_kind.h"

namespace ember {
namespace {

constexpr const virtio::VirtioKind* kKinds[] = {
    &virtio::kBlockKind,
    &virtio::kNetKind,
};

}  // namespace

std::span<const virtio::VirtioKind* const> virtio_kinds() {
    return kKinds;
}

}  // namespace ember
