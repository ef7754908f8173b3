#include "snapshot/store/opened_store.h"

#include <chrono>
#include <optional>

#include "snapshot/store/directory_store.h"
#include "snapshot/store/fetcher_store.h"
#include "snapshot/store/manifest_url.h"

namespace ember::snapshot {

Result<std::unique_ptr<OpenedStore>> OpenedStore::open(const StoreOptions& o) {
    auto url = parse_manifest_url(o.manifest_url);
    EMBER_TRY(url, "--manifest");
    std::optional<ChunkId> pin;
    if (!o.manifest_sha256.empty()) {
        pin = ChunkId::parse(o.manifest_sha256);
        if (!pin) return fail("--manifest-sha256: not 64 lowercase hex digits");
    }
    std::unique_ptr<OpenedStore> opened(new OpenedStore());  // NOLINT: private
    opened->remote_ = url->remote;
    Result<std::string> text = fail("");
    if (url->remote) {
        auto fetcher = FetcherStore::start(o.fetcher, url->root, std::chrono::seconds(60));
        EMBER_TRY(fetcher, "--fetcher " + o.fetcher);
        text = (*fetcher)->manifest(url->name);
        opened->origin_ = std::move(*fetcher);
    } else {
        auto directory = DirectoryStore::open(url->root, false);
        EMBER_TRY(directory, "--manifest " + o.manifest_url);
        if (o.lease) {
            auto leased = directory->leased_manifest(url->name);
            if (leased) {
                text = std::move(leased->text);
                opened->lease_ = std::move(leased->lease);
                opened->unleased_ = std::move(leased->unleased);
            } else {
                text = std::unexpected(std::move(leased.error()));
            }
        } else {
            text = directory->manifest(url->name);
        }
        opened->origin_ = std::make_unique<DirectoryStore>(std::move(*directory));
    }
    EMBER_TRY(text, "--manifest " + o.manifest_url);
    opened->manifest_digest_ = snapshot::manifest_digest(*text);
    if (pin && opened->manifest_digest_ != *pin)
        return fail("--manifest " + o.manifest_url + ": the manifest's SHA-256 is " +
                    opened->manifest_digest_.hex() + ", not the pinned " + pin->hex());
    auto manifest = parse_manifest(*text);
    EMBER_TRY(manifest, "--manifest " + o.manifest_url);
    opened->manifest_ = std::move(*manifest);
    if (!o.cache.empty()) {
        auto cache = ChunkCache::open(o.cache, o.cache_bytes, *opened->origin_);
        EMBER_TRY(cache, "--cache " + o.cache);
        opened->cache_ = std::move(*cache);
    }
    return opened;
}

}  // namespace ember::snapshot
