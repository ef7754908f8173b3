// A store's state file made one this host may load. The store chose every byte of it, and the
// manifest that names it is the same store's, so its hash proves nothing about its content: a
// drive's path_on_host would pick which host file ember opens, and is_read_only whether it writes
// there. Every drive is moved to <root>/<drive id>, a folder the host chooses (where
// ember-store-mount serves the store's images, say), and one the state calls writable must be one
// the host names as such; a state with drives and no root is refused. A drive id is 1-64 of A-Z,
// a-z, 0-9 and _, so it names a file in that folder and nothing else. An interface's tap name is
// the store's too: a state with interfaces is marked as from a store (state_sections::kFromStore),
// and its load must name a tap of this host for every interface (network_overrides). A state
// with neither drives nor interfaces is written as the store handed it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/store/manifest.h"

namespace ember::snapshot {

struct HostState {
    std::vector<uint8_t> bytes;  // to write as the state file
    SnapshotIdentity identity;   // of `bytes`
};

// Where the host has a restored VM's drives: the folder (--drive-root) and the ids of those it may
// write (--writable-drive).
struct HostDrives {
    std::string root;
    std::vector<std::string> writable;
};

// `root` without the slashes that end it ("/" stays): one folder, however it was written.
std::string_view without_trailing_slashes(std::string_view root);

// `state` as a store handed it for manifest `m`: it must lay out the manifest's memory.
Result<HostState> state_for_host(std::vector<uint8_t> state, const Manifest& m,
                                 const HostDrives& drives);

}  // namespace ember::snapshot
