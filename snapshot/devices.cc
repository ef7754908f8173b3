#include "snapshot/devices.h"

#include <map>
#include <string>

namespace ember::snapshot {

void save_devices(Writer& file, std::span<Persistent* const> devices) {
    for (const Persistent* d : devices) file.add(d->section().id, 1, d->save());
}

Result<void> restore_devices(const Reader& file, std::span<Persistent* const> devices,
                             std::span<const StateSection> kinds) {
    // Counted first, so that no device is restored from a file that does not fit the VM.
    std::map<uint32_t, std::pair<std::string_view, size_t>> wanted;  // id: name, devices
    for (const StateSection& kind : kinds) wanted[kind.id] = {kind.name, 0};
    for (const Persistent* d : devices) {
        auto& w = wanted[d->section().id];
        w.first = d->section().name;
        ++w.second;
    }
    for (const auto& [id, want] : wanted) {
        const size_t present = file.all(id).size();
        if (present != want.second)
            return fail("the snapshot has " + std::to_string(present) + " " +
                        std::string(want.first) + " sections for " + std::to_string(want.second) +
                        " devices");
    }
    std::map<uint32_t, size_t> taken;
    for (Persistent* d : devices) {
        const StateSection kind = d->section();
        const size_t k = taken[kind.id]++;
        if (auto r = d->restore(file.all(kind.id)[k].payload); !r)
            return std::unexpected(std::move(r.error()).wrap(std::string(kind.name) + " section " +
                                                             std::to_string(k)));
    }
    return {};
}

}  // namespace ember::snapshot
