#include "snapshot/store/push.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <mutex>
#include <unordered_set>

#include "core/base/at_once.h"
#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "core/memory/guest_memory.h"
#include "snapshot/decoded_snapshot.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/directory_store.h"

namespace ember::snapshot {

namespace {

bool all_zero(std::span<const uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// Which chunks of `fd` hold data, as far as its file system says (a chunk wholly in a hole reads
// as zeros): all of them where it cannot say.
std::vector<bool> chunks_with_data(int fd, uint64_t size, uint64_t chunk_size) {
    const uint64_t count = (size + chunk_size - 1) / chunk_size;
    std::vector<bool> data(count, false);
    for (uint64_t at = 0; at < size;) {
        const off_t start = ::lseek(fd, static_cast<off_t>(at), SEEK_DATA);
        if (start < 0 && errno == ENXIO) break;
        if (start < 0) return std::vector<bool>(count, true);
        off_t end = ::lseek(fd, start, SEEK_HOLE);
        if (end < 0) end = static_cast<off_t>(size);
        const uint64_t last = std::min<uint64_t>(static_cast<uint64_t>(end), size);
        for (uint64_t c = static_cast<uint64_t>(start) / chunk_size; c * chunk_size < last; ++c)
            data[c] = true;
        at = std::max(last, static_cast<uint64_t>(start) + 1);
    }
    return data;
}

// The counts of a push whose chunks go in from several threads, and the chunks it has put: a
// chunk met twice (two equal pages of memory) is put once.
class Tally {
  public:
    // `level`: zstd's, for the chunks put (0: none compressed).
    explicit Tally(int level) : level_(level) {}
    // Names `bytes` and puts them into `store` (where given) unless this push has already.
    Result<ChunkId> take(std::span<const uint8_t> bytes, ChunkSink* store) {
        const ChunkId id = chunk_id_of(bytes);
        EMBER_TRY(put(id, bytes, store, bytes.size()));
        return id;
    }
    // Puts `bytes`, named `id`, as take() does: the stored bytes of a chunk of `length`.
    Result<void> put(const ChunkId& id, std::span<const uint8_t> bytes, ChunkSink* store,
                     uint64_t length) {
        {
            std::lock_guard lock(mutex_);
            ++counts_.chunks;
            counts_.bytes += length;
            if (store == nullptr) return {};
            if (!taken_.insert(id).second) {
                ++counts_.shared;
                return {};
            }
        }
        auto stored = store_one(id, bytes, *store);
        EMBER_TRY(stored);
        std::lock_guard lock(mutex_);
        if (*stored) {
            ++counts_.stored;
            counts_.stored_bytes += **stored;
            counts_.stored_uncompressed += bytes.size();
        } else {
            ++counts_.shared;
        }
        return {};
    }
    // `bytes`, the parent's chunk `id` that this push names under a patch, put as any chunk this
    // push names is (the store holds it, and makes it new: ChunkSink::put), but not counted as
    // this snapshot's.
    Result<void> keep(const ChunkId& id, std::span<const uint8_t> bytes, ChunkSink* store) {
        if (store == nullptr) return {};
        {
            std::lock_guard lock(mutex_);
            if (!taken_.insert(id).second) return {};
        }
        EMBER_TRY(store_one(id, bytes, *store));
        return {};
    }
    void patched() {
        std::lock_guard lock(mutex_);
        ++counts_.patched;
    }
    void zero() {
        std::lock_guard lock(mutex_);
        ++counts_.zero_chunks;
    }
    PushCounts counts() const {
        std::lock_guard lock(mutex_);
        return counts_;
    }

  private:
    // `bytes` into `store` as a push stores a chunk (a zstd frame where that saves): the bytes it
    // wrote, or nothing where the store held the chunk already.
    Result<std::optional<uint64_t>> store_one(const ChunkId& id, std::span<const uint8_t> bytes,
                                              ChunkSink& store) const {
        const auto frame = compress_chunk(bytes, level_);
        const std::span<const uint8_t> put = frame ? std::span<const uint8_t>(*frame) : bytes;
        auto stored = store.put(id, put, bytes.size());
        EMBER_TRY(stored);
        if (!*stored) return std::nullopt;
        return put.size();
    }

    int level_;
    mutable std::mutex mutex_;
    PushCounts counts_;
    std::unordered_set<ChunkId, ChunkIdHash> taken_;
};

// `piece`, chunk `c` of a file, as a patch onto the parent's chunk at its place, its changed pages
// put in `pages`: none where the parent has zeros there, the very same bytes, or bytes that differ
// in more than half the pages.
Result<std::optional<ChunkPatch>> patch_onto(const ParentSnapshot& parent, uint64_t c,
                                             std::span<const uint8_t> piece, const ChunkId& id,
                                             std::vector<uint8_t>& pages, ChunkBytes& base_bytes) {
    const auto& base = parent.manifest.memory.chunks[c];
    if (!base || *base == id) return std::nullopt;
    auto before = parent.chunks.get(*base, piece.size());
    EMBER_TRY(before, "the parent's chunk " + std::to_string(c));
    base_bytes = *before;
    ChunkPatch patch;
    const uint64_t count = piece.size() / kGuestPageSize;
    for (uint64_t p = 0; p < count; ++p) {
        const auto page = piece.subspan(p * kGuestPageSize, kGuestPageSize);
        if (std::equal(page.begin(), page.end(), (*before)->begin() + p * kGuestPageSize)) continue;
        if (!patch.runs.empty() && patch.runs.back().first + patch.runs.back().second == p)
            ++patch.runs.back().second;
        else
            patch.runs.emplace_back(static_cast<uint32_t>(p), 1);
        pages.insert(pages.end(), page.begin(), page.end());
        if (pages.size() * 2 > piece.size()) return std::nullopt;
    }
    patch.pages = chunk_id_of(pages);
    return patch;
}

// Cuts the first `file.bytes` bytes of `fd` into chunks from several threads: chunks of zeros
// named null, the others put into `store` (where given) once, as patches onto `parent`'s where
// given.
Result<void> chunk_file(const UniqueFd& fd, const std::string& what, uint64_t chunk_size,
                        ChunkSink* store, Tally& tally, ChunkedFile& file,
                        const ParentSnapshot* parent = nullptr) {
    const std::vector<bool> data = chunks_with_data(fd.get(), file.bytes, chunk_size);
    file.chunks.assign(data.size(), std::nullopt);
    std::vector<std::optional<ChunkPatch>> patches(parent != nullptr ? data.size() : 0);
    const unsigned threads = store != nullptr ? store->parallel() : busy_threads();
    auto cut = for_each_at_once(data.size(), threads, [&](size_t c) -> Result<void> {
        const uint64_t at = c * chunk_size;
        const uint64_t length = std::min(chunk_size, file.bytes - at);
        if (!data[c]) {
            tally.zero();
            return {};
        }
        std::vector<uint8_t> piece(length);
        EMBER_TRY(pread_exact(fd.get(), piece, at), what);
        if (all_zero(piece)) {
            tally.zero();
            return {};
        }
        const ChunkId id = chunk_id_of(piece);
        if (parent != nullptr) {
            std::vector<uint8_t> pages;
            ChunkBytes base;
            auto patch = patch_onto(*parent, c, piece, id, pages, base);
            EMBER_TRY(patch, what);
            if (*patch) {
                EMBER_TRY(tally.put((*patch)->pages, pages, store, piece.size()), what);
                EMBER_TRY(tally.keep(*parent->manifest.memory.chunks[c], *base, store), what);
                tally.patched();
                file.chunks[c] = parent->manifest.memory.chunks[c];
                patches[c] = std::move(*patch);
                return {};
            }
        }
        EMBER_TRY(tally.put(id, piece, store, piece.size()), what);
        file.chunks[c] = id;
        return {};
    });
    EMBER_TRY(cut);
    for (uint64_t c = 0; c < patches.size(); ++c)
        if (patches[c]) file.patches.emplace(c, std::move(*patches[c]));
    return {};
}

// A snapshot a restore would refuse: its manifest names more chunks than a manifest may.
std::string too_many_chunks(uint64_t chunk_size) {
    return "in chunks of " + std::to_string(chunk_size >> 10) + " KiB its files make more than " +
           std::to_string(kMaxManifestChunks) +
           " chunks, which no restore takes: push it with a larger --chunk-size";
}

// Where drive `d`'s image is read from: it must be a read-only drive of the snapshot, whose guest
// sees the image unchanged on every restore.
Result<std::string> drive_path(const VmConfig& config, const DriveImage& d) {
    for (const auto& drive : config.drives) {
        if (drive.drive_id != d.id) continue;
        if (!drive.is_read_only)
            return fail("drive " + d.id +
                        " is not read-only in the snapshot: its guest may have changed it, and "
                        "only read-only drives go into a store");
        return d.path.empty() ? drive.path_on_host : d.path;
    }
    return fail("the snapshot has no drive '" + d.id + "'");
}

}  // namespace

Result<void> pack_working_set(Manifest& m, int memory, const ParentSnapshot* parent, int level,
                              uint64_t most, uint64_t most_chunks, ChunkSink* store,
                              PushCounts& counts) {
    std::unordered_set<ChunkId, ChunkIdHash> packed;
    std::vector<uint8_t> bytes;
    ChunkPack pack;
    uint64_t chunks = 0;
    bool full = false;  // kMaxPacks made, or most_chunks packed: the rest is fetched alone
    auto close = [&]() -> Result<void> {
        if (pack.chunks.empty()) return {};
        pack.id = chunk_id_of(bytes);
        if (store != nullptr) EMBER_TRY(store->put(pack.id, bytes, bytes.size()), "pack");
        ++counts.packs;
        counts.packed += pack.chunks.size();
        counts.pack_bytes += bytes.size();
        m.packs.push_back(std::move(pack));
        pack = {};
        bytes.clear();
        full = full || m.packs.size() == kMaxPacks;
        return {};
    };
    auto add = [&](const ChunkId& id, std::span<const uint8_t> chunk) -> Result<void> {
        if (full || packed.contains(id)) return {};
        if (chunks == most_chunks) {
            full = true;
            return {};
        }
        const auto frame = compress_chunk(chunk, level);
        const std::span<const uint8_t> stored = frame ? std::span<const uint8_t>(*frame) : chunk;
        if (bytes.size() + stored.size() > most) {
            EMBER_TRY(close());
            if (full) return {};
        }
        packed.insert(id);
        ++chunks;
        bytes.insert(bytes.end(), stored.begin(), stored.end());
        pack.chunks.push_back({id, chunk.size(), stored.size(), frame ? chunk_id_of(stored) : id});
        return {};
    };
    // Read again, so checked again: a memory file changed since it was cut would pack chunks
    // that no restore takes.
    const auto changed = [] { return fail("the memory file changed while it was pushed"); };
    for (uint64_t c : m.working_set_chunks()) {
        const auto& id = m.memory.chunks[c];
        if (!id || full) continue;
        std::vector<uint8_t> piece(m.chunk_length(m.memory.bytes, c));
        EMBER_TRY(pread_exact(memory, piece, c * m.chunk_size), "memory file");
        const auto patch = m.memory.patches.find(c);
        if (patch == m.memory.patches.end()) {
            if (chunk_id_of(piece) != *id) return changed();
            EMBER_TRY(add(*id, piece));
            continue;
        }
        if (parent == nullptr) return fail("a patched chunk without its parent");
        auto base = parent->chunks.get(*id, piece.size());
        EMBER_TRY(base, "the parent's chunk " + std::to_string(c));
        EMBER_TRY(add(*id, **base));
        std::vector<uint8_t> pages;
        for (const auto& [first, n] : patch->second.runs)
            pages.insert(pages.end(), piece.begin() + uint64_t{first} * kGuestPageSize,
                         piece.begin() + uint64_t{first + n} * kGuestPageSize);
        if (chunk_id_of(pages) != patch->second.pages) return changed();
        EMBER_TRY(add(patch->second.pages, pages));
    }
    return close();
}

Result<Manifest> chunk_snapshot(const PushInput& in, ChunkSink* store, PushCounts* out,
                                const ParentSnapshot* parent) {
    Manifest m;
    if (!std::has_single_bit(in.chunk_size) || in.chunk_size < kMinChunkSize ||
        in.chunk_size > kMaxChunkSize)
        return fail("a chunk size of " + std::to_string(in.chunk_size) +
                    " bytes; it is a power of two from 4 KiB to 4 MiB");
    m.chunk_size = in.chunk_size;

    auto snapshot = read_snapshot(in.state_path);
    EMBER_TRY(snapshot, "state file " + in.state_path);
    const SnapshotIdentity identity = snapshot->identity;
    if (identity.memory_bytes > kMaxStoredMemoryBytes)
        return fail("memory of " + std::to_string(identity.memory_bytes) +
                    " bytes; a store takes at most " + std::to_string(kMaxStoredMemoryBytes));
    auto memory = open_file(in.memory_path, O_RDONLY);
    EMBER_TRY(memory, "memory file " + in.memory_path);
    auto memory_bytes = file_size(memory->get());
    EMBER_TRY(memory_bytes, "memory file " + in.memory_path);
    if (*memory_bytes != identity.memory_bytes)
        return fail("memory file " + in.memory_path + ": " + std::to_string(*memory_bytes) +
                    " bytes, where the state file's layout has " +
                    std::to_string(identity.memory_bytes));
    if ((identity.memory_bytes + m.chunk_size - 1) / m.chunk_size > kMaxManifestChunks)
        return fail(too_many_chunks(m.chunk_size));
    if (!in.working_set_path.empty()) {
        auto fd = open_file(in.working_set_path, O_RDONLY);
        EMBER_TRY(fd, "working set " + in.working_set_path);
        auto set = read_working_set(fd->get(), identity);
        EMBER_TRY(set, "working set " + in.working_set_path);
        m.working_set = std::move(set->runs);
    }

    if (parent != nullptr && (parent->manifest.chunk_size != m.chunk_size ||
                              parent->manifest.memory.bytes != identity.memory_bytes))
        return fail("the parent has " + std::to_string(parent->manifest.memory.bytes >> 20) +
                    " MiB of memory in chunks of " +
                    std::to_string(parent->manifest.chunk_size >> 10) + " KiB, this snapshot " +
                    std::to_string(identity.memory_bytes >> 20) + " MiB in chunks of " +
                    std::to_string(m.chunk_size >> 10) +
                    " KiB: a patch is onto the chunk at its place, of the same size");

    Tally tally(in.compression_level);
    m.compressed_chunks = in.compression_level > 0;
    const std::vector<uint8_t>& state = snapshot->bytes;
    m.state.bytes = state.size();
    for (uint64_t at = 0; at < state.size(); at += m.chunk_size) {
        const auto piece = std::span(state).subspan(at, std::min(m.chunk_size, state.size() - at));
        auto id = tally.take(piece, store);
        EMBER_TRY(id, "state file");
        m.state.chunks.emplace_back(*id);
    }

    m.memory.bytes = identity.memory_bytes;
    EMBER_TRY(chunk_file(*memory, "memory file " + in.memory_path, m.chunk_size, store, tally,
                         m.memory, parent));
    for (const auto& d : in.drives) {
        auto path = drive_path(snapshot->config, d);
        EMBER_TRY(path);
        for (const auto& already : m.drives)
            if (already.id == d.id) return fail("drive '" + d.id + "' is given twice");
        if (m.drives.size() == kMaxStoredDrives)
            return fail("more than " + std::to_string(kMaxStoredDrives) + " drives");
        auto image = open_file(*path, O_RDONLY);
        EMBER_TRY(image, "drive " + d.id + ": " + *path);
        StoredDrive drive{d.id, {}};
        auto bytes = file_size(image->get());
        EMBER_TRY(bytes, "drive " + d.id + ": " + *path);
        if (*bytes == 0 || *bytes > kMaxStoredDriveBytes)
            return fail("drive " + d.id + ": " + *path + " is " + std::to_string(*bytes) +
                        " bytes, where a store takes 1 to " + std::to_string(kMaxStoredDriveBytes));
        drive.image.bytes = *bytes;
        EMBER_TRY(chunk_file(*image, "drive " + d.id + ": " + *path, m.chunk_size, store, tally,
                             drive.image));
        m.drives.push_back(std::move(drive));
    }
    // Last, in what the manifest's chunk bound leaves: packs are a restore's shortcut, never what
    // makes a snapshot one no restore takes.
    const uint64_t named = m.named_chunks();
    PushCounts packs;
    if (in.pack_bytes > 0 && named < kMaxManifestChunks)
        EMBER_TRY(pack_working_set(m, memory->get(), parent, in.compression_level,
                                   std::min(in.pack_bytes, kMaxPackBytes),
                                   kMaxManifestChunks - named, store, packs));
    if (out != nullptr) {
        *out = tally.counts();
        out->packs = packs.packs;
        out->packed = packs.packed;
        out->pack_bytes = packs.pack_bytes;
    }
    return m;
}

Result<PushCounts> push_snapshot(ChunkSink& store, std::string_view name, const PushInput& input,
                                 const ParentSnapshot* parent) {
    EMBER_TRY(check_snapshot_name(name));
    PushCounts counts;
    auto manifest = chunk_snapshot(input, &store, &counts, parent);
    EMBER_TRY(manifest);
    if (manifest->named_chunks() > kMaxManifestChunks)
        return fail(too_many_chunks(manifest->chunk_size));
    std::string text = encode_manifest(*manifest);
    if (text.size() > kMaxManifestBytes && !manifest->packs.empty()) {
        // The packs' lines made it too long (4 KiB chunks of a large working set): without their
        // sums first (a restore then hashes each chunk to its name), then without them (they stay
        // in the store, named by no manifest), the working set coming chunk by chunk.
        for (auto& pack : manifest->packs)
            for (auto& c : pack.chunks) c.sum.reset();
        text = encode_manifest(*manifest);
    }
    if (text.size() > kMaxManifestBytes && !manifest->packs.empty()) {
        manifest->packs.clear();
        counts.packs = counts.packed = counts.pack_bytes = 0;
        text = encode_manifest(*manifest);
    }
    // What every restore will do with it first: a manifest no restore takes is not published.
    EMBER_TRY(parse_manifest(text), "push made a manifest no restore takes");
    counts.manifest = manifest_digest(text);
    EMBER_TRY(store.put_manifest(name, text));
    return counts;
}

}  // namespace ember::snapshot
