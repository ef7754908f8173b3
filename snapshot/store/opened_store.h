// A manifest's store, opened for a restore from its URL: the manifest read and checked, and where
// its chunks come from (a folder, or ember-store-fetch for http(s):// and s3://), behind the
// host's cache where one is named. What ember-uffd and ember-store-mount both start from.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/base/error.h"
#include "snapshot/store/chunk_cache.h"
#include "snapshot/store/chunk_store.h"
#include "snapshot/store/manifest.h"
#include "snapshot/store/store_lease.h"

namespace ember::snapshot {

struct StoreOptions {
    std::string manifest_url;
    std::string fetcher;  // ember-store-fetch, for a remote store
    std::string cache;    // the cache's folder; empty: none
    uint64_t cache_bytes = uint64_t{4} << 30;
    // The SHA-256 of the manifest's text that push printed, as 64 hex digits: any other manifest
    // is refused before a chunk is read. Empty: whatever the URL hands back is taken.
    std::string manifest_sha256;
    // A store folder's lease on the manifest (store_lease.h), for a process that reads chunks.
    bool lease = true;
};

class OpenedStore {
  public:
    static Result<std::unique_ptr<OpenedStore>> open(const StoreOptions& options);

    const Manifest& manifest() const { return manifest_; }
    // The SHA-256 of the manifest's text as the store handed it.
    const ChunkId& manifest_digest() const { return manifest_digest_; }
    // Where chunks come from: the cache where there is one, else the store itself.
    ChunkStore& chunks() { return cache_ ? *cache_ : *origin_; }
    ChunkCache* cache() { return cache_.get(); }
    bool remote() const { return remote_; }
    // Why a store folder took no lease on the manifest (store_lease.h); empty where it did, and
    // for a remote store, which a collection by ember never touches.
    const std::string& unleased() const { return unleased_; }

  private:
    OpenedStore() = default;
    std::unique_ptr<ChunkStore> origin_;
    std::unique_ptr<ChunkCache> cache_;  // after origin_, which it reads from: it goes first
    Manifest manifest_;
    ChunkId manifest_digest_;
    bool remote_ = false;
    std::optional<StoreLease> lease_;  // held for as long as this process reads the store
    std::string unleased_;
};

}  // namespace ember::snapshot
