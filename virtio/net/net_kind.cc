#include "virtio/net/net_kind.h"

#include <numeric>

#include "virtio/net/net_device.h"

namespace ember::virtio {
namespace {

std::vector<size_t> entries(const VmConfig& config) {
    std::vector<size_t> out(config.network_interfaces.size());
    std::iota(out.begin(), out.end(), size_t{0});
    return out;
}

Result<std::unique_ptr<VirtioDevice>> create(const VmConfig& config, size_t entry,
                                             const GuestMemory& memory, Interrupt& interrupt) {
    return as_virtio_device(NetDevice::create(config.network_interfaces[entry], memory, interrupt));
}

void record(VmConfig& config, size_t entry, const VirtioDevice& device) {
    config.network_interfaces[entry] = static_cast<const NetDevice&>(device).config();
}

}  // namespace

const VirtioKind kNetKind{.name = "net",
                          .entries = entries,
                          .create = create,
                          .record = record,
                          .noun = "network interface"};

}  // namespace ember::virtio
