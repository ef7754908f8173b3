// Collecting a store's garbage: the objects under chunks/ (chunks and packs) that no manifest under
// snapshots/ names, once a snapshot's manifest is gone, removed where they are older than a bound.
//
// A push that runs beside a collection is safe as long as it takes less than that bound: it writes
// its new objects, and makes each object it shares new again (ChunkSink::put and keep), before it
// writes its manifest, so an object it relies on is young until its manifest names it. A removal
// checks the object's age once more where no push can make it new in between (DirectoryStore:
// renamed aside, then checked, then removed or put back). A manifest the collection cannot read
// or parse stops it before it removes anything: what it names is not known. Beside what it parses,
// every SHA-256 a manifest's text holds is taken as named (a field a later ember adds).
//
// A clone restored lazily from a snapshot fetches its chunks for as long as it runs, and reading a
// chunk does not make it new: its restore holds a lease on the manifest it read (store_lease.h),
// which the collection reads as a manifest after those under snapshots/.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_id.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_lease.h"

namespace ember::snapshot {

// An object under chunks/ as a listing shows it.
struct StoredObject {
    ChunkId id;
    uint64_t bytes = 0;
    std::chrono::system_clock::time_point modified;
    // Set aside by a collection that did not finish (DirectoryStore): put back where it is named.
    bool aside = false;
};

class CollectableStore {
  public:
    virtual ~CollectableStore() = default;
    // The names of the snapshots whose manifests the store holds; an error where it cannot say
    // them all.
    virtual Result<std::vector<std::string>> manifest_names() const = 0;
    virtual Result<std::string> manifest(std::string_view name) const = 0;
    // Every object, and how many other files (a push's leftovers) it has removed that were older
    // than `bound` (none where `dry_run`).
    virtual Result<std::vector<StoredObject>> objects(std::chrono::system_clock::time_point bound,
                                                      bool dry_run, uint64_t& leftovers) = 0;
    // Removes `object` unless it is newer than `bound` when looked at last: true if it did.
    virtual Result<bool> remove_unless_newer(const StoredObject& object,
                                             std::chrono::system_clock::time_point bound) = 0;
    // Puts back an object set aside (StoredObject::aside) that a manifest names.
    virtual Result<void> put_back(const StoredObject& object) = 0;
    // The manifests restores hold leases on, read after manifest_names(), their leases no process
    // holds removed (none where `dry_run`).
    virtual Result<LeaseScan> leases(std::chrono::system_clock::time_point bound, bool dry_run) = 0;
};

struct CollectOptions {
    // What an object no manifest names must be older than to go: longer than any push takes.
    std::chrono::seconds older_than{std::chrono::hours(24)};
    bool dry_run = false;  // count, remove nothing
};

struct CollectCounts {
    uint64_t manifests = 0;
    uint64_t leases = 0;         // held by a restore: read as manifests
    uint64_t stale_leases = 0;   // held by none: removed
    uint64_t objects = 0;        // under chunks/
    uint64_t named = 0;          // of those, named by a manifest
    uint64_t young = 0;          // named by none, but newer than the bound: kept
    uint64_t removed = 0;        // named by none and older (in a dry run: would be removed)
    uint64_t removed_bytes = 0;  // their bytes
    uint64_t leftovers = 0;      // a push's or a lease's files never renamed into place, removed
};

// Adds every object `m` names to `into`: its files' chunks, its patches' pages, its packs.
void add_named_objects(const Manifest& m, std::vector<ChunkId>& into);

// Reads every manifest first, then removes what none names (above).
Result<CollectCounts> collect_store(CollectableStore& store, const CollectOptions& options);

}  // namespace ember::snapshot
