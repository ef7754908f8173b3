// A store in a local directory (a file:// URL; an NFS mount is one too): the layout of manifest.h.
// Push writes chunks under temporary names and renames them in, syncs the file system, and writes
// the manifest last, so a manifest never names a chunk that is not whole in the store. An object
// a push finds there already it makes new (its modification time), so that a collection of the
// store (store_collect.h) leaves it; where that is not this user's to change (a store several
// users push into), it writes it again.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/base/error.h"
#include "core/base/unique_fd.h"
#include "snapshot/store/chunk_store.h"
#include "snapshot/store/store_collect.h"
#include "snapshot/store/store_lease.h"

namespace ember::snapshot {

// A snapshot's name in a store: letters, digits, '.', '_' and '-', not starting with '.', at most
// 200 characters.
Result<void> check_snapshot_name(std::string_view name);

class DirectoryStore final : public ChunkStore, public ChunkSink, public CollectableStore {
  public:
    // `create`: make the root's chunks/ and snapshots/ folders where missing (a push).
    static Result<DirectoryStore> open(const std::string& root, bool create);

    Result<ChunkBytes> get(const ChunkId& id, uint64_t length) override;
    Result<std::vector<uint8_t>> get_range(const ChunkId& object, uint64_t offset,
                                           uint64_t length) override;
    Result<bool> put(const ChunkId& id, std::span<const uint8_t> stored, uint64_t length) override;
    // Syncs what put() wrote, then writes the manifest `name` whole.
    Result<void> put_manifest(std::string_view name, std::string_view text) override;
    // Hashing is most of a push's work: a thread a core.
    unsigned parallel() const override;
    // A manifest; one that is not there is ErrorKind::Gone.
    Result<std::string> manifest(std::string_view name) const override;
    // A manifest read for a restore, with the store's lease on it (store_lease.h). Where no lease
    // can be had (a store this user may not write), `unleased` says why and the restore goes on.
    struct Leased {
        std::string text;
        std::optional<StoreLease> lease;
        std::string unleased;
    };
    Result<Leased> leased_manifest(std::string_view name) const;

    // Collection (store_collect.h). chunks/ holds objects by their names, objects a collection
    // set aside to look at once more as .gc-NAME, and a write that never finished as
    // .NAME.tmp-RANDOM (write_named).
    Result<std::vector<std::string>> manifest_names() const override;
    Result<std::vector<StoredObject>> objects(std::chrono::system_clock::time_point bound,
                                              bool dry_run, uint64_t& leftovers) override;
    Result<bool> remove_unless_newer(const StoredObject& object,
                                     std::chrono::system_clock::time_point bound) override;
    Result<void> put_back(const StoredObject& object) override;
    Result<LeaseScan> leases(std::chrono::system_clock::time_point bound, bool dry_run) override;

    const std::string& root() const { return root_; }

  private:
    explicit DirectoryStore(std::string root, UniqueFd chunks)
        : root_(std::move(root)), chunks_(std::move(chunks)) {}
    std::string chunk_path(const ChunkId& id) const { return root_ + "/chunks/" + id.hex(); }
    // The object's file: where a collection set it aside, if not at its name.
    Result<UniqueFd> open_object(const ChunkId& id) const;

    std::string root_;
    UniqueFd chunks_;  // the chunks/ folder
};

}  // namespace ember::snapshot
