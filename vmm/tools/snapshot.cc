// ember-snapshot push --snapshot-path STATE --mem-file-path MEM [--working-set WS]
//                     [--drive ID[=IMAGE]]... [--chunk-size BYTES] [--parent NAME]
//                     [--compression-level N] [--pack-bytes N] MANIFEST_URL
// ember-snapshot chunk-sizes --snapshot-path STATE --mem-file-path MEM --working-set WS
// push: puts a snapshot into a store (snapshot/store/manifest.h) as the manifest at MANIFEST_URL
// (file:///STORE/snapshots/NAME.json, or s3://BUCKET[/PREFIX]/snapshots/NAME.json with S3's
// credentials, region and endpoint from the environment as ember-store-fetch takes them), storing
// each chunk the store does not hold yet, and says how many it shared with what was there. Each
// --drive puts a read-only drive of the snapshot in with it (its image at the drive's
// path_on_host, or at IMAGE), for ember-store-mount to serve where the snapshot is restored.
// --parent names the snapshot in the same store this one was restored from (a function's, from
// its runtime's): a memory chunk that differs from the parent's in a few pages goes in as those
// pages alone, a patch onto the parent's chunk. Each chunk is stored as one zstd frame at
// --compression-level N (1-19; 3 unless given) where that saves an eighth of its bytes; 0 stores
// every chunk as it is. The working set's chunks go in once more, in packs of at most
// --pack-bytes N (64 MiB unless given, and at most that; 0: none), which a restore reads a few MiB
// at a time rather than a chunk at a time.
// ember-snapshot view --cache DIR [--cache-bytes N] [--fetcher PATH] [--manifest-sha256 HEX]
//                     [--drive-root DIR [--writable-drive ID]...] MANIFEST_URL
// ember-snapshot find-view --cache DIR [--cache-bytes N] [--fetcher PATH] [--manifest-sha256 HEX]
//                          [--drive-root DIR [--writable-drive ID]...] MANIFEST_URL
// view: the snapshot made whole in the host's chunk cache DIR (snapshot/store/snapshot_view.h),
// found there where it was made this boot, else made from its chunks, fetched into the cache where
// missing; prints the body of a load from it (the File backend, with its working set where it has
// one), to which an agent adds what it sets ("resume_vm"). --manifest-sha256 pins the snapshot by
// its manifest's SHA-256, as push printed it: a view of it made this boot is found without a word
// to the store, and a manifest the store hands back with another is refused. A snapshot with
// drives needs --drive-root: the view's state file has each drive at DIR/<drive id>, never where
// the store says, and a drive writable only where --writable-drive names it
// (snapshot/store/store_state.h); each root has a view of its own.
// find-view: as view, but only a view made this boot is printed; where there is none it makes
// nothing, fetches no chunk, and exits 3 (an agent's choice between a local restore now and a
// lazy one, after which it makes the view in the background).
// ember-snapshot gc [--older-than SECONDS] [--dry-run] file:///STORE
// gc: removes from the store's folder the chunks and packs that no manifest under its snapshots/
// names (those of snapshots whose manifests were removed) and that are older than SECONDS (a day
// unless given), which must be longer than any push into the store takes: a push makes what it
// shares new (snapshot/store/store_collect.h). --dry-run counts what it would remove.
// chunk-sizes: for each chunk size, what a restore from a store fetches ahead for the working set
// and what the store holds, to choose the size by (it reads the memory once and hashes nothing: a
// chunk is stored unless all zeros, sharing aside).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "api/json/writer.h"
#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "core/memory/guest_memory.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/store/chunked_memory.h"
#include "snapshot/store/directory_store.h"
#include "snapshot/store/fetcher_store.h"
#include "snapshot/store/manifest_url.h"
#include "snapshot/store/opened_store.h"
#include "snapshot/store/push.h"
#include "snapshot/store/snapshot_view.h"
#include "snapshot/store/store_collect.h"
#include "vmm/tools/options.h"

namespace {

using namespace ember;
using namespace ember::snapshot;

// 128 KiB: the largest size whose restore of a Python function fetched under 1.25x its working set
// ahead (README, "Snapshots in a store": the table).
constexpr uint64_t kDefaultChunkSize = uint64_t{128} << 10;

int usage() {
    std::fprintf(
        stderr,
        "usage: ember-snapshot push --snapshot-path STATE --mem-file-path MEM "
        "[--working-set WS] [--drive ID[=IMAGE]]... [--chunk-size BYTES] [--parent NAME] "
        "[--compression-level N] [--pack-bytes N] MANIFEST_URL\n"
        "       ember-snapshot view --cache DIR [--cache-bytes N] [--fetcher PATH] "
        "[--manifest-sha256 HEX] [--drive-root DIR [--writable-drive ID]...] MANIFEST_URL\n"
        "       ember-snapshot find-view --cache DIR [--cache-bytes N] [--fetcher PATH] "
        "[--manifest-sha256 HEX] [--drive-root DIR [--writable-drive ID]...] "
        "MANIFEST_URL\n"
        "       ember-snapshot gc [--older-than SECONDS] [--dry-run] file:///STORE\n"
        "       ember-snapshot chunk-sizes --snapshot-path STATE --mem-file-path MEM "
        "--working-set WS\n");
    return 2;
}

// Pushes into `store` (a folder's or a bucket's), onto the parent snapshot `parent` where named.
template <typename Store>
Result<PushCounts> push_into(Store& store, const std::string& name, const PushInput& in,
                             const std::string& parent) {
    if (parent.empty()) return push_snapshot(store, name, in);
    auto text = store.manifest(parent);
    EMBER_TRY(text, "--parent " + parent);
    auto manifest = parse_manifest(*text);
    EMBER_TRY(manifest, "--parent " + parent);
    const ParentSnapshot onto{*manifest, store};
    return push_snapshot(store, name, in, &onto);
}

Result<int> push(const PushInput& in, const std::string& url_text, const std::string& parent) {
    auto url = parse_manifest_url(url_text);
    EMBER_TRY(url);
    Result<PushCounts> counts = PushCounts{};
    if (url->root.starts_with("s3://")) {
        // A request's own bound is the fetcher's (its tries of 15 s each); this one only catches
        // a fetcher that stopped answering.
        auto store = FetcherStore::start(FetcherStore::beside_this_program(), url->root,
                                         std::chrono::minutes(2));
        EMBER_TRY(store);
        counts = push_into(**store, url->name, in, parent);
    } else if (url->remote) {
        return fail(
            "push writes a file:// store or an s3:// bucket; a web server serves a copy "
            "of a store's folder");
    } else {
        auto store = DirectoryStore::open(url->root, true);
        EMBER_TRY(store);
        counts = push_into(*store, url->name, in, parent);
    }
    EMBER_TRY(counts);
    const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "ember-snapshot: pushed %s: %llu chunks of %llu KiB (%llu of them patches onto the "
        "parent's), %llu stored (%llu bytes; %llu before compression) and %llu shared with what "
        "the store held; %llu%% of the snapshot's %llu bytes were in the store already; %llu "
        "chunks of zeros not stored; "
        "the working set's %llu chunks in %llu packs (%llu bytes); "
        "the manifest's SHA-256 %s\n",
        url_text.c_str(), u(counts->chunks), u(in.chunk_size >> 10), u(counts->patched),
        u(counts->stored), u(counts->stored_bytes), u(counts->stored_uncompressed),
        u(counts->shared),
        u(counts->bytes == 0 ? 0
                             : (counts->bytes - counts->stored_uncompressed) * 100 / counts->bytes),
        u(counts->bytes), u(counts->zero_chunks), u(counts->packed), u(counts->packs),
        u(counts->pack_bytes), counts->manifest.hex().c_str());
    return 0;
}

Result<int> collect(const std::string& url, const CollectOptions& options) {
    if (url.starts_with("s3://") || url.starts_with("http://") || url.starts_with("https://"))
        return fail(
            "gc collects a store's folder (file:///STORE); a bucket's or a web server's "
            "objects are not collected by ember");
    if (!url.starts_with("file:///") || url == "file:///")
        return fail("gc takes a store's folder as file:///STORE, not '" + url.substr(0, 300) + "'");
    std::string root = url.substr(7);
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (root == "/") return fail("gc: a store's folder is not /");
    auto store = DirectoryStore::open(root, false);
    EMBER_TRY(store);
    auto counts = collect_store(*store, options);
    EMBER_TRY(counts);
    const auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
    std::printf(
        "ember-snapshot: %s %s: %llu manifests and %llu restores' leases name %llu of its %llu "
        "objects; %llu named by none and older than %llu s %s (%llu bytes); %llu named by none "
        "but younger, kept; %llu leases no restore holds %s; %llu unfinished writes %s\n",
        options.dry_run ? "would collect" : "collected", url.c_str(), u(counts->manifests),
        u(counts->leases), u(counts->named), u(counts->objects), u(counts->removed),
        u(static_cast<uint64_t>(options.older_than.count())),
        options.dry_run ? "would go" : "removed", u(counts->removed_bytes), u(counts->young),
        u(counts->stale_leases), options.dry_run ? "would go" : "removed", u(counts->leftovers),
        options.dry_run ? "would go" : "removed");
    return 0;
}

// A store of nothing: the cache a pinned view is looked for in fetches no chunk.
class NoStore final : public ChunkStore {
  public:
    Result<ChunkBytes> get(const ChunkId& id, uint64_t) override {
        return fail("chunk " + id.hex() + ": no store to fetch it from");
    }
};

void print_load(const SnapshotView& made) {
    std::string body = "{\"snapshot_path\": " + json::quote(made.state) +
                       ", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": " +
                       json::quote(made.memory) + "}";
    if (!made.working_set.empty())
        body += ", \"working_set_path\": " + json::quote(made.working_set);
    std::printf("%s}\n", body.c_str());
}

// The exit status of find-view where no view is made (client::find_view_load reads it).
constexpr int kNoView = 3;

Result<int> view(const StoreOptions& options, const HostDrives& drives, bool make) {
    auto no_view = [&](const std::string& of) {
        std::fprintf(stderr, "ember-snapshot: no view of %s made this boot in %s\n", of.c_str(),
                     options.cache.c_str());
        return kNoView;
    };
    std::optional<ChunkId> pin;
    if (!options.manifest_sha256.empty()) {
        pin = ChunkId::parse(options.manifest_sha256);
        if (!pin) return fail("--manifest-sha256: not 64 lowercase hex digits");
        NoStore none;
        auto cache = ChunkCache::open(options.cache, options.cache_bytes, none);
        EMBER_TRY(cache, "--cache " + options.cache);
        if (auto found = find_view(**cache, *pin, drives)) {
            print_load(*found);
            return 0;
        }
        if (!make) return no_view(pin->hex());
    }
    StoreOptions reading = options;
    reading.lease = make;  // find-view reads the manifest alone
    auto opened = OpenedStore::open(reading);
    EMBER_TRY(opened);
    if (!make) {
        if (auto found = find_view(*(*opened)->cache(), (*opened)->manifest_digest(), drives)) {
            print_load(*found);
            return 0;
        }
        return no_view(options.manifest_url);
    }
    ChunkCache& cache = *(*opened)->cache();
    const auto start = std::chrono::steady_clock::now();
    auto made = open_view(cache, (*opened)->manifest(), (*opened)->manifest_digest(), drives,
                          (*opened)->remote() ? FetcherStore::kFetches : 8);
    EMBER_TRY(made, options.manifest_url);
    print_load(*made);
    if (made->made) {
        cache.flush();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        std::fprintf(stderr,
                     "ember-snapshot: made the view of %s (%llu bytes on the disk) in %lld ms; "
                     "the cache: %s\n",
                     options.manifest_url.c_str(), static_cast<unsigned long long>(made->bytes),
                     static_cast<long long>(ms.count()), describe(cache.counts()).c_str());
    }
    return 0;
}

// Which 4 KiB pages of the memory file hold anything but zeros: one read, holes skipped.
Result<std::vector<bool>> nonzero_pages(const std::string& path) {
    auto fd = open_file(path, O_RDONLY);
    EMBER_TRY(fd, "memory file " + path);
    auto size = file_size(fd->get());
    EMBER_TRY(size, "memory file " + path);
    std::vector<bool> pages(*size / kGuestPageSize, false);
    std::vector<uint8_t> buffer(uint64_t{1} << 20);
    for (uint64_t at = 0; at < *size;) {
        const off_t data = ::lseek(fd->get(), static_cast<off_t>(at), SEEK_DATA);
        if (data < 0 && errno == ENXIO) break;
        if (data > 0)
            at = std::max(at, static_cast<uint64_t>(data) / kGuestPageSize * kGuestPageSize);
        const uint64_t n = std::min<uint64_t>(buffer.size(), *size - at);
        EMBER_TRY(pread_exact(fd->get(), std::span(buffer).first(n), at), "memory file " + path);
        for (uint64_t p = 0; p < n / kGuestPageSize; ++p) {
            const auto page = std::span(buffer).subspan(p * kGuestPageSize, kGuestPageSize);
            pages[at / kGuestPageSize + p] =
                std::any_of(page.begin(), page.end(), [](uint8_t b) { return b != 0; });
        }
        at += n;
    }
    return pages;
}

// For each chunk size: what a restore fetches ahead for the working set (chunks, each a request
// where the store has no pack, the reads of its pack where it has, bytes, against the working
// set's own bytes), and what the store holds of this memory (chunks not all zeros).
Result<int> chunk_sizes(const PushInput& in) {
    auto snapshot = read_snapshot(in.state_path);
    EMBER_TRY(snapshot, "state file " + in.state_path);
    auto ws_fd = open_file(in.working_set_path, O_RDONLY);
    EMBER_TRY(ws_fd, "working set " + in.working_set_path);
    auto set = read_working_set(ws_fd->get(), snapshot->identity);
    EMBER_TRY(set, "working set " + in.working_set_path);
    auto pages = nonzero_pages(in.memory_path);
    EMBER_TRY(pages);
    if (pages->size() * kGuestPageSize != snapshot->identity.memory_bytes)
        return fail("memory file " + in.memory_path + ": not the state file's memory");
    uint64_t set_bytes = 0;
    for (const auto& run : set->runs) set_bytes += run.pages * kGuestPageSize;
    std::printf("working set: %llu KiB in %zu runs; memory %llu MiB\n",
                static_cast<unsigned long long>(set_bytes >> 10), set->runs.size(),
                static_cast<unsigned long long>(snapshot->identity.memory_bytes >> 20));
    std::printf(
        "| chunk | chunks for the working set | reads of its pack | KiB fetched ahead | x working "
        "set | non-zero chunks | store MiB |\n|---|---|---|---|---|---|---|\n");
    for (uint64_t size = 16 << 10; size <= (uint64_t{4} << 20); size *= 2) {
        const uint64_t per = size / kGuestPageSize;
        const uint64_t chunks = (pages->size() + per - 1) / per;
        std::vector<bool> nonzero(chunks, false);
        for (uint64_t p = 0; p < pages->size(); ++p)
            if ((*pages)[p]) nonzero[p / per] = true;
        std::vector<bool> wanted(chunks, false);
        for (const auto& run : set->runs)
            for (uint64_t p = run.offset / kGuestPageSize;
                 p < run.offset / kGuestPageSize + run.pages; ++p)
                wanted[p / per] = wanted[p / per] || nonzero[p / per];
        uint64_t requests = 0, stored = 0, reads = 0, read_bytes = 0;
        for (uint64_t c = 0; c < chunks; ++c) {
            requests += wanted[c] ? 1 : 0;
            stored += nonzero[c] ? 1 : 0;
            // A read of the pack brings chunks until the next would pass kPackReadBytes
            // (chunked_memory.h), as a restore plans them.
            if (!wanted[c]) continue;
            if (reads == 0 || read_bytes + size > kPackReadBytes) {
                ++reads;
                read_bytes = 0;
            }
            read_bytes += size;
        }
        const uint64_t fetched_kib = requests * (size >> 10);
        const uint64_t store_mib = (stored * size) >> 20;
        std::printf(
            "| %llu KiB | %llu | %llu | %llu | %.2f | %llu | %llu |\n",
            static_cast<unsigned long long>(size >> 10), static_cast<unsigned long long>(requests),
            static_cast<unsigned long long>(reads), static_cast<unsigned long long>(fetched_kib),
            set_bytes == 0 ? 0.0 : static_cast<double>(requests * size) / set_bytes,
            static_cast<unsigned long long>(stored), static_cast<unsigned long long>(store_mib));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    // A fetcher that dies leaves a pipe with no reader: the write's EPIPE says so, not a signal.
    ::signal(SIGPIPE, SIG_IGN);
    const std::string command = argv[1];
    PushInput in;
    in.chunk_size = kDefaultChunkSize;
    uint64_t level = kDefaultCompressionLevel;
    std::string url, parent;
    HostDrives drives;
    StoreOptions store;
    uint64_t older_than = std::chrono::seconds(CollectOptions{}.older_than).count();
    bool older_than_given = false;
    bool dry_run = false;
    std::vector<char*> args(argv, argv + argc);
    if (command == "gc")
        dry_run = std::erase_if(
                      args, [](const char* a) { return std::string_view(a) == "--dry-run"; }) > 0;
    auto parsed = tools::parse_options(
        static_cast<int>(args.size()), args.data(), 2,
        {{"--snapshot-path", &in.state_path},
         {"--mem-file-path", &in.memory_path},
         {"--working-set", &in.working_set_path},
         {"--drive",
          [&](const std::string& v) {
              const auto equals = v.find('=');
              in.drives.push_back(
                  {v.substr(0, equals), equals == std::string::npos ? "" : v.substr(equals + 1)});
          }},
         {"--parent", &parent},
         {"--older-than", tools::WholeNumber{.out = &older_than,
                                             .given = &older_than_given,
                                             .min = 0,
                                             .max = uint64_t{10} * 365 * 24 * 3600,
                                             .what = "a number of seconds, ten years at most"}},
         {"--cache", &store.cache},
         {"--fetcher", &store.fetcher},
         {"--manifest-sha256", &store.manifest_sha256},
         {"--drive-root", &drives.root},
         {"--writable-drive", [&](const std::string& id) { drives.writable.push_back(id); }},
         {"--cache-bytes",
          tools::WholeNumber{.out = &store.cache_bytes, .what = "a number of bytes"}},
         {"--chunk-size", tools::WholeNumber{.out = &in.chunk_size, .min = 0, .what = "a number"}},
         {"--compression-level",
          tools::WholeNumber{.out = &level, .min = 0, .max = 19, .what = "a zstd level"}},
         {"--pack-bytes", tools::WholeNumber{.out = &in.pack_bytes,
                                             .min = 0,
                                             .max = kMaxPackBytes,
                                             .what = "a number of bytes up to 64 MiB"}}},
        &url);
    if (!parsed) {
        std::fprintf(stderr, "ember-snapshot: %s\n", parsed.error().message.c_str());
        return 2;
    }
    if (!*parsed) return usage();
    in.compression_level = static_cast<int>(level);
    if (command != "gc" && older_than_given) return usage();
    const bool store_options = !store.cache.empty() || !store.fetcher.empty() ||
                               !store.manifest_sha256.empty() || !drives.root.empty() ||
                               !drives.writable.empty();
    Result<int> r = 0;
    if (command == "view" || command == "find-view") {
        if (url.empty() || store.cache.empty() || !in.state_path.empty() ||
            !in.memory_path.empty() || !in.working_set_path.empty() || !in.drives.empty() ||
            !parent.empty())
            return usage();
        store.manifest_url = url;
        // The load it prints names the view's files: an ember elsewhere must find them.
        std::error_code absolute_error;
        auto absolute = std::filesystem::absolute(store.cache, absolute_error);
        if (!absolute_error) store.cache = absolute.string();
        if (store.fetcher.empty()) store.fetcher = FetcherStore::beside_this_program();
        r = view(store, drives, command == "view");
    } else if (command == "gc") {
        if (url.empty() || store_options || !in.state_path.empty() || !in.memory_path.empty() ||
            !in.working_set_path.empty() || !in.drives.empty() || !parent.empty())
            return usage();
        r = collect(url, {std::chrono::seconds(older_than), dry_run});
    } else {
        const bool files = !in.state_path.empty() && !in.memory_path.empty() && !store_options;
        if (files && command == "push" && !url.empty())
            r = push(in, url, parent);
        else if (files && command == "chunk-sizes" && url.empty() && !in.working_set_path.empty())
            r = chunk_sizes(in);
        else
            return usage();
    }
    if (!r) {
        std::fprintf(stderr, "ember-snapshot: %s\n", r.error().message.c_str());
        return 1;
    }
    return *r;
}
