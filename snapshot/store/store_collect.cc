#include "snapshot/store/store_collect.h"

#include <algorithm>

namespace ember::snapshot {

namespace {

void add_file(const ChunkedFile& file, std::vector<ChunkId>& into) {
    for (const auto& id : file.chunks)
        if (id) into.push_back(*id);
    for (const auto& [index, patch] : file.patches) into.push_back(patch.pages);
}

// `ids` sorted and each once, with `from` on (what was added since) merged in: what a lookup by
// binary search takes, and no more than the distinct objects named.
void settle(std::vector<ChunkId>& ids, size_t from) {
    std::sort(ids.begin() + static_cast<ptrdiff_t>(from), ids.end());
    std::inplace_merge(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(from), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

bool hex_digit(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// Every run of exactly 64 lower-case hex digits in a manifest's text: a field that a later push
// adds to name objects (as "packs" once was, in any version) names them so, and a collection by
// this ember must keep them though its parser passes over the field.
void add_named_in_text(std::string_view text, std::vector<ChunkId>& into) {
    size_t i = 0;
    while (i < text.size()) {
        if (!hex_digit(text[i])) {
            ++i;
            continue;
        }
        size_t end = i;
        while (end < text.size() && hex_digit(text[end])) ++end;
        if (end - i == 64)
            if (auto id = ChunkId::parse(text.substr(i, 64))) into.push_back(*id);
        i = end;
    }
}

}  // namespace

void add_named_objects(const Manifest& m, std::vector<ChunkId>& into) {
    add_file(m.state, into);
    add_file(m.memory, into);
    for (const auto& drive : m.drives) add_file(drive.image, into);
    for (const auto& pack : m.packs) into.push_back(pack.id);
}

Result<CollectCounts> collect_store(CollectableStore& store, const CollectOptions& options) {
    const auto bound = std::chrono::system_clock::now() - options.older_than;
    CollectCounts counts;
    std::vector<ChunkId> named;
    auto names = store.manifest_names();
    EMBER_TRY(names, "nothing removed");
    const auto add = [&](std::string_view text) -> Result<void> {
        auto manifest = parse_manifest(text);
        EMBER_TRY(manifest);
        const size_t before = named.size();
        add_named_objects(*manifest, named);
        add_named_in_text(text, named);
        settle(named, before);
        return {};
    };
    for (const auto& name : *names) {
        auto text = store.manifest(name);
        // One removed since it was listed names nothing now; any other failure leaves what it
        // names unknown.
        if (!text && text.error().kind == ErrorKind::Gone) continue;
        EMBER_TRY(text, "snapshot " + name + ": nothing removed");
        EMBER_TRY(add(*text), "snapshot " + name + ": nothing removed");
        ++counts.manifests;
    }
    // After the manifests: a restore takes its lease, then finds its manifest still there.
    auto leases = store.leases(bound, options.dry_run);
    EMBER_TRY(leases, "nothing removed");
    for (const auto& held : leases->held)
        EMBER_TRY(add(held.text),
                  std::string(kLeaseFolder) + "/" + held.name + ": nothing removed");
    counts.leases = leases->held.size();
    counts.stale_leases = leases->stale;
    counts.leftovers += leases->leftovers;
    auto objects = store.objects(bound, options.dry_run, counts.leftovers);
    EMBER_TRY(objects);
    for (const auto& object : *objects) {
        ++counts.objects;
        const bool is_named = std::binary_search(named.begin(), named.end(), object.id);
        if (is_named || object.modified >= bound) {
            ++(is_named ? counts.named : counts.young);
            // Set aside where a push may have made it new just before: back before a push names it.
            if (object.aside && !options.dry_run) EMBER_TRY(store.put_back(object));
            continue;
        }
        if (!options.dry_run) {
            auto removed = store.remove_unless_newer(object, bound);
            EMBER_TRY(removed);
            if (!*removed) {
                ++counts.young;
                continue;
            }
        }
        ++counts.removed;
        counts.removed_bytes += object.bytes;
    }
    return counts;
}

}  // namespace ember::snapshot
