// A store's state file made one this host may load. The store chose every byte of it, and the
// manifest that names it is the same store's, so its hash proves nothing about its content: a
// drive's path_on_host would pick which host file ember opens, and writes where the drive is not
// read-only. Every drive is moved to `drive_root`/<drive id>, a folder the host chooses (where
// ember-store-mount serves the store's images, say); a state with drives and no drive root is
// refused. A drive id is 1-64 of A-Z, a-z, 0-9 and _, so it names a file in that folder and
// nothing else.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/store/manifest.h"

namespace ember::snapshot {

struct HostState {
    std::vector<uint8_t> bytes;  // to write as the state file
    SnapshotIdentity identity;   // of `bytes`
};

// `state` as a store handed it for manifest `m`: it must lay out the manifest's memory.
Result<HostState> state_for_host(std::vector<uint8_t> state, const Manifest& m,
                                 const std::string& drive_root);

}  // namespace ember::snapshot
