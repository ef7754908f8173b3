#include "snapshot/devices.h"

#include <cinttypes>
#include <cstdio>
#include <map>

#include "vmm/base/bytes.h"

namespace ember::snapshot {
namespace {

// Kinds and ids are short names (an id is at most 64 bytes); a longer one is not ember's.
constexpr size_t kMaxName = 64;

std::string where(const DeviceTag& tag) {
    if (tag.mmio_base == 0) return "on I/O ports";
    char at[64];
    std::snprintf(at, sizeof at, "at %#" PRIx64 " (GSI %u)", tag.mmio_base, tag.gsi);
    return at;
}

Result<void> restore_one(const TaggedDevice& d, const Section& s,
                         std::span<const uint8_t> payload) {
    if (auto r = d.device->restore(payload, s.version); !r)
        return std::unexpected(std::move(r.error()).wrap(describe(d.tag)));
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
    struct Found {
        Section section;
        SplitSection split;
        bool taken = false;
    };
    std::vector<Found> found;
    for (const StateSection& kind : kinds)
        for (const Section& s : file.all(kind.id)) {
            auto split = split_device_section(s.payload);
            if (!split)
                return std::unexpected(std::move(split.error()).wrap(std::string(kind.name)));
            found.push_back({s, *split});
        }
    // Every device is matched before any is restored, so a file that does not fit changes nothing.
    std::vector<const Found*> mine;
    for (const TaggedDevice& d : devices) {
        Found* match = nullptr;
        for (Found& f : found) {
            if (f.section.id != d.device->section().id || f.split.tag.kind != d.tag.kind ||
                f.split.tag.id != d.tag.id)
                continue;
            if (match) return fail("the snapshot has two sections for " + describe(d.tag));
            match = &f;
        }
        if (!match) return fail("the snapshot has no section for " + describe(d.tag));
        if (match->split.tag != d.tag)
            return fail(describe(d.tag) + " was " + where(match->split.tag) +
                        " in the snapshot, and this VM places it " + where(d.tag));
        match->taken = true;
        mine.push_back(match);
    }
    for (const Found& f : found)
        if (!f.taken)
            return fail("the snapshot has a section for " + describe(f.split.tag) +
                        ", which this VM does not have");
    for (size_t i = 0; i < devices.size(); ++i)
        EMBER_TRY(restore_one(devices[i], mine[i]->section, mine[i]->split.payload));
    return {};
}

}  // namespace

std::string describe(const DeviceTag& tag) {
    return tag.kind == tag.id ? tag.kind : tag.kind + " '" + tag.id + "'";
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
        if (!n) return std::unexpected(n.error());
        if (n->empty() || n->size() > kMaxName)
            return fail("device tag: a name of " + std::to_string(n->size()) + " bytes, not 1 to " +
                        std::to_string(kMaxName));
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
