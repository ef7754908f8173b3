#include "snapshot/devices.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <optional>

#include "core/base/bytes.h"
#include "core/config/vm_config.h"

namespace ember::snapshot {
namespace {

std::string where(const DeviceTag& tag) {
    char at[64];
    if (tag.mmio_base == 0)
        std::snprintf(at, sizeof at, "on I/O ports (GSI %u)", tag.gsi);
    else
        std::snprintf(at, sizeof at, "at %#" PRIx64 " (GSI %u)", tag.mmio_base, tag.gsi);
    return at;
}

Result<void> restore_one(const TaggedDevice& d, const Section& s,
                         std::span<const uint8_t> payload) {
    EMBER_TRY(d.device->restore(payload, s.version), describe(d.tag));
    return {};
}

// Format 1: no tags, so a kind's sections go to its devices in order.
Result<void> restore_in_order(const Reader& file, std::span<const TaggedDevice> devices,
                              std::span<const StateSection> kinds) {
    // Counted first, so that no device is restored from a file that does not fit the VM.
    std::map<uint32_t, std::pair<std::string_view, size_t>> wanted;  // id: name, devices
    for (const StateSection& kind : kinds) wanted[kind.id] = {kind.name, 0};
    for (const TaggedDevice& d : devices) {
        auto& w = wanted[d.device->section().id];
        w.first = d.device->section().name;
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
    for (const TaggedDevice& d : devices) {
        const uint32_t id = d.device->section().id;
        const Section s = file.all(id)[taken[id]++];
        EMBER_TRY(restore_one(d, s, s.payload));
    }
    return {};
}

Result<void> restore_by_tag(const Reader& file, std::span<const TaggedDevice> devices,
                            std::span<const StateSection> kinds) {
    // Every section is matched to a device before any device is restored, and the first that no
    // device claims ends the search: a file of a million tiny sections costs no more than one.
    struct Match {
        Section section;
        SplitSection split;
    };
    std::vector<std::optional<Match>> mine(devices.size());
    for (const Section& s : file.sections()) {
        const auto kind = std::find_if(kinds.begin(), kinds.end(),
                                       [&](const StateSection& k) { return k.id == s.id; });
        if (kind == kinds.end()) continue;
        auto split = split_device_section(s.payload);
        EMBER_TRY(split, std::string(kind->name));
        const DeviceTag& tag = split->tag;
        size_t i = 0;
        while (i < devices.size() &&
               (devices[i].device->section().id != s.id || devices[i].tag.kind != tag.kind ||
                devices[i].tag.id != tag.id))
            ++i;
        if (i == devices.size())
            return fail("the snapshot has a " + std::string(kind->name) + " section for " +
                        describe(tag) + ", which this VM does not have");
        if (mine[i]) return fail("the snapshot has two sections for " + describe(tag));
        if (tag != devices[i].tag)
            return fail(describe(tag) + " was " + where(tag) +
                        " in the snapshot, and this VM places it " + where(devices[i].tag));
        mine[i] = Match{s, *split};
    }
    for (size_t i = 0; i < devices.size(); ++i)
        if (!mine[i]) return fail("the snapshot has no section for " + describe(devices[i].tag));
    for (size_t i = 0; i < devices.size(); ++i)
        EMBER_TRY(restore_one(devices[i], mine[i]->section, mine[i]->split.payload));
    return {};
}

}  // namespace

std::string describe(const DeviceTag& tag) {
    const bool lone = tag.kind == tag.id && tag.mmio_base == 0;  // "serial", "i8042"
    return lone ? tag.kind : tag.kind + " '" + tag.id + "'";
}

std::vector<uint8_t> tagged_payload(const DeviceTag& tag, std::span<const uint8_t> payload) {
    ByteWriter w;
    w.put_string(tag.kind);
    w.put_string(tag.id);
    w.put(tag.mmio_base);
    w.put(tag.gsi);
    std::vector<uint8_t> out = w.bytes();
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

Result<SplitSection> split_device_section(std::span<const uint8_t> section) {
    ByteReader r(section, "device tag");
    SplitSection s;
    for (std::string* name : {&s.tag.kind, &s.tag.id}) {
        auto n = r.get_string();
        EMBER_TRY(n);
        // What ember writes is a config id or a kind's name; anything else (a control character
        // for a terminal, say) is refused before a message or a tool prints it.
        if (!is_valid_id(*n))
            return fail("device tag: a kind or id that is not 1 to 64 letters, digits or '_'");
        *name = std::move(*n);
    }
    EMBER_TRY(read_into(r, s.tag.mmio_base));
    EMBER_TRY(read_into(r, s.tag.gsi));
    s.payload = section.subspan(section.size() - r.remaining());
    return s;
}

void save_devices(Writer& file, std::span<const TaggedDevice> devices) {
    for (const TaggedDevice& d : devices) {
        const StateSection kind = d.device->section();
        file.add(kind, tagged_payload(d.tag, d.device->save()));
    }
}

Result<void> restore_devices(const Reader& file, std::span<const TaggedDevice> devices,
                             std::span<const StateSection> kinds) {
    if (file.format_version() < kFirstTaggedFormat) return restore_in_order(file, devices, kinds);
    return restore_by_tag(file, devices, kinds);
}

}  // namespace ember::snapshot
