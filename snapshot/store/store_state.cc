#include "snapshot/store/store_state.h"

#include <algorithm>

#include "core/base/state_sections.h"
#include "snapshot/config_section.h"
#include "snapshot/format.h"

namespace ember::snapshot {
namespace {

// The file again with its config section's drives under `root` where it has drives, and marked
// as from a store where it has interfaces: every other section as it was.
Result<std::vector<uint8_t>> for_host(const DecodedSnapshot& s, const std::string& root) {
    auto section = s.file.one(state_sections::kConfig.id);
    EMBER_TRY(section);
    std::vector<uint8_t> payload(section->payload.begin(), section->payload.end());
    uint32_t version = section->version;
    if (!root.empty()) {
        // The section alone: a CPU template the file holds stays in its own section.
        auto saved = decode_config(section->payload, section->version);
        EMBER_TRY(saved);
        VmConfig config = *saved;
        for (auto& d : config.drives) d.path_on_host = root + "/" + d.drive_id;
        EMBER_TRY(ValidVmConfig::check(config));
        payload = encode(config);
        version = state_sections::kConfig.version;
    }
    Writer w(s.file.format_version());
    for (const Section& each : s.file.sections()) {
        const uint32_t id = each.id | (each.optional ? kOptional : 0);
        if (each.id == state_sections::kConfig.id)
            w.add(id, version, payload);
        else if (each.id != state_sections::kFromStore.id)
            w.add(id, each.version, each.payload);
    }
    if (!s.config->network_interfaces.empty())
        w.add(state_sections::kFromStore.id | kOptional, state_sections::kFromStore.version, {});
    return w.finish();
}

}  // namespace

std::string_view without_trailing_slashes(std::string_view root) {
    while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
    return root;
}

Result<HostState> state_for_host(std::vector<uint8_t> state, const Manifest& m,
                                 const HostDrives& host) {
    auto decoded = decode_snapshot(std::move(state));
    EMBER_TRY(decoded, "the store's state file");
    if (decoded->identity.memory_bytes != m.memory.bytes)
        return fail("the store's state file lays out " +
                    std::to_string(decoded->identity.memory_bytes) +
                    " bytes of memory, and its manifest " + std::to_string(m.memory.bytes));
    const auto& drives = decoded->config->drives;
    // Nothing of the host in it: as the store handed it, byte for byte.
    if (drives.empty() && decoded->config->network_interfaces.empty())
        return HostState{std::move(decoded->bytes), decoded->identity};
    if (!drives.empty() && host.root.empty())
        return fail("the store's snapshot has " + std::to_string(drives.size()) +
                    " drive(s), the first '" + drives.front().drive_id +
                    "': a restore from a store opens its drives only in a folder the host names "
                    "(--drive-root DIR, each drive at DIR/<drive id>), never where the store "
                    "says");
    const std::string root(drives.empty() ? "" : without_trailing_slashes(host.root));
    if (!root.empty() && (root.front() != '/' || root == "/"))
        return fail("--drive-root " + host.root + ": not an absolute path of a folder below /");
    for (const auto& d : drives)
        if (!d.is_read_only && std::find(host.writable.begin(), host.writable.end(), d.drive_id) ==
                                   host.writable.end())
            return fail("the store's snapshot has drive '" + d.drive_id +
                        "' writable: a restore from a store writes a drive only where the host "
                        "says it may (--writable-drive " +
                        d.drive_id + ")");
    // What this ember does not know of the file would be lost in the rewrite.
    if (decoded->file.skipped() != 0)
        return fail("the store's state file has " + std::to_string(decoded->file.skipped()) +
                    " section(s) this ember does not know, which writing it for this host would "
                    "lose: restore it with a newer ember");
    auto bytes = for_host(*decoded, root);
    EMBER_TRY(bytes, "the store's state file");
    auto moved = decode_snapshot(std::move(*bytes));
    EMBER_TRY(moved, "the store's state file, as written for this host");
    return HostState{std::move(moved->bytes), moved->identity};
}

}  // namespace ember::snapshot
