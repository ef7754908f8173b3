// api/client: a store's snapshot made whole in the host's chunk cache, for a File load
// (`ember-snapshot view`; README, "A host that runs the function again: its view"): found at once
// where it is pinned by its manifest's SHA-256 and was made this boot, else made, and the load
// that names it. Every clone loaded from it maps the page cache's one copy of its memory, where a
// restore through ember-uffd copies the working set into each.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/actions.h"
#include "core/base/error.h"

namespace ember::client {

struct StoreView {
    std::string manifest_url;     // file://, http://, https:// or s3://
    std::string cache_dir;        // the host's chunk cache, which holds the view
    uint64_t cache_bytes = 0;     // its bound; 0: ember-snapshot's own (4 GiB)
    std::string manifest_sha256;  // the pin, as push printed it; empty: the store is asked
    std::string drive_root;       // the snapshot's drives at DIR/<drive id> (store_state.h)
    std::vector<std::string> writable_drives;  // the ids of those it may write
    std::string ember_snapshot = "ember-snapshot";
    // Making a view fetches what the cache lacks of the snapshot's whole memory.
    std::chrono::milliseconds timeout{300'000};
    bool resume_vm = true;
    std::vector<NetworkOverride> network_overrides;  // the load's: a clone's own taps
};

// What a tool said last: its text's last line that is not empty.
std::string last_line(std::string_view text);
// ember-snapshot's command line for `command` (view, find-view) of `view`.
std::vector<std::string> view_command(const StoreView& view, const char* command);
// Runs ember-snapshot view and reads the load it prints; an error carries its last line.
Result<LoadSnapshot> view_load(const StoreView& view);
// ember-snapshot find-view: the load of a view made this boot, or nullopt where none is (nothing
// is made or fetched then).
Result<std::optional<LoadSnapshot>> find_view_load(const StoreView& view);

}  // namespace ember::client
