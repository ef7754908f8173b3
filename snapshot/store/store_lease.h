// A restore's hold on what a store folder's manifest names, for as long as the restoring process
// runs: a collection (store_collect.h) keeps every object a held manifest names, also once the
// snapshot's manifest is gone from snapshots/, so that a clone restored lazily never asks the store
// for a chunk that a collection took meanwhile.
//
// The store keeps the manifest's text as leases/<SHA-256 of the text>.json, written whole under a
// temporary name, synced and locked before it is linked in, and each process that reads from it
// holds it locked shared (flock) for as long as it lives. The kernel lets go of a lock however its
// process ends (an NFS server, of a client host that died, once the client's lease runs out). A
// collection removes a lease it can lock exclusively (no reader is left), and reads one it cannot
// as a manifest.
//
// A restore reads the manifest, takes the lease on that text, and reads the manifest once more: a
// collection lists snapshots/ before leases/, so a manifest that is still there, unchanged, after
// its lease is in place was either read by a collection under way or has its lease seen by it. (A
// manifest that went before that listing and came back after it is a push's, which makes every
// object it names new first; one copied back by hand is not covered.) A lease is removed only by
// the holder of its exclusive lock while its name is still that file, and a restore links a new
// one in only where the name is free, so no collection removes a lease a restore holds.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::snapshot {

inline constexpr const char* kLeaseFolder = "leases";

class StoreLease {
  public:
    // The lease on `text` (a manifest as read) in the store folder `root`, made where the store
    // has none yet. Bounded: a collection holds a lease's lock only to remove it.
    static Result<StoreLease> take(const std::string& root, std::string_view text);

  private:
    explicit StoreLease(UniqueFd locked) : locked_(std::move(locked)) {}
    UniqueFd locked_;
};

// What a collection finds under leases/.
struct HeldLease {
    std::string name;  // under leases/
    std::string text;
};
struct LeaseScan {
    std::vector<HeldLease> held;  // the leases some process holds
    uint64_t stale = 0;           // held by none: removed (in a dry run, counted)
    uint64_t leftovers = 0;       // temporary files older than the bound: removed
};

// Reads every lease of the store folder `root` (none where it has no leases/).
Result<LeaseScan> scan_leases(const std::string& root, std::chrono::system_clock::time_point bound,
                              bool dry_run);

}  // namespace ember::snapshot
