// The regions message a page-fault handler (ember-uffd) reads from a VMM, as any bytes: the parser
// must refuse what no VMM sends and hand on only regions a handler can serve, and what it accepts
// must come back the same through the VMM's encoder.
#include <string_view>

#include "fuzz/support/require.h"
#include "snapshot/uffd/handshake.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto regions = snapshot::parse_uffd_regions(text);
    if (!regions) {
        require(!regions.error().message.empty(), "a refusal says why");
        return 0;
    }
    require(!regions->empty() && regions->size() <= snapshot::kMaxUffdRegions,
            "between one and the most regions");
    for (const auto& r : *regions) {
        require(r.page_size == 4096 || r.page_size == 2 * 1024 * 1024, "a page size a host has");
        require(r.size != 0 && r.size % r.page_size == 0 && r.offset % r.page_size == 0 &&
                    r.base_host_virt_addr % r.page_size == 0,
                "whole pages");
        require(r.offset + r.size >= r.offset &&
                    r.base_host_virt_addr + r.size >= r.base_host_virt_addr,
                "no region wraps");
    }
    auto again = snapshot::parse_uffd_regions(snapshot::encode_uffd_regions(*regions));
    require(again && again->size() == regions->size(), "the encoder's message parses");
    for (size_t i = 0; i < regions->size(); ++i) {
        const auto& a = (*regions)[i];
        const auto& b = (*again)[i];
        require(a.base_host_virt_addr == b.base_host_virt_addr && a.size == b.size &&
                    a.offset == b.offset && a.page_size == b.page_size,
                "a region reads back the same");
    }
    return 0;
}
