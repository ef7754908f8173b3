#include "snapshot/store/chunked_memory.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "core/base/at_once.h"
#include "core/memory/guest_memory.h"

namespace ember::snapshot {

Result<ChunkBytes> ChunkedMemory::piece(const ChunkId& id, uint64_t length, bool ahead,
                                        const Brought& brought) {
    if (auto had = brought.find(id); had != brought.end() && had->second->size() == length) {
        count(*had->second, ahead, true);
        return had->second;
    }
    auto bytes = store_.get(id, length);
    EMBER_TRY(bytes);
    count(**bytes, ahead);
    return bytes;
}

Result<ChunkBytes> ChunkedMemory::fetch(uint64_t index, bool ahead, const Brought& brought) {
    const auto& id = *manifest_.memory.chunks[index];
    const uint64_t length = manifest_.chunk_length(manifest_.memory.bytes, index);
    auto bytes = piece(id, length, ahead, brought);
    EMBER_TRY(bytes, "memory chunk " + std::to_string(index));
    const auto patched = manifest_.memory.patches.find(index);
    if (patched == manifest_.memory.patches.end()) return bytes;
    const ChunkPatch& patch = patched->second;
    auto pages = piece(patch.pages, patch.page_count() * kGuestPageSize, ahead, brought);
    EMBER_TRY(pages, "memory chunk " + std::to_string(index) + "'s patch");
    // The base is shared (the cache may be writing it): the chunk is a copy with the patch on it.
    auto chunk = std::make_shared<std::vector<uint8_t>>(**bytes);
    const uint8_t* from = (*pages)->data();
    for (const auto& [first, n] : patch.runs) {
        std::copy_n(from, uint64_t{n} * kGuestPageSize,
                    chunk->data() + uint64_t{first} * kGuestPageSize);
        from += uint64_t{n} * kGuestPageSize;
    }
    return ChunkBytes(std::move(chunk));
}

void ChunkedMemory::count(const std::vector<uint8_t>& bytes, bool ahead, bool packed) {
    const std::lock_guard guard(counting_);
    ++counts_.fetched;
    counts_.ahead += ahead ? 1 : 0;
    counts_.packed += packed ? 1 : 0;
    counts_.fetched_bytes += bytes.size();
}

Result<MemoryExtent> ChunkedMemory::extent_at(uint64_t offset, uint64_t page) {
    const uint64_t chunk = manifest_.chunk_size;
    if (page > chunk || chunk % page != 0)
        return fail("the VM's memory is on " + std::to_string(page >> 10) +
                    " KiB pages, larger than the store's " + std::to_string(chunk >> 10) +
                    " KiB chunks");
    if (offset >= size()) return fail("an offset past the memory's end");
    const uint64_t index = offset / chunk;
    const MemoryExtent zeros{index * chunk, manifest_.chunk_length(size(), index), nullptr};
    if (!manifest_.memory.chunks[index]) return zeros;
    auto bytes = fetch(index, false);
    EMBER_TRY(bytes);
    current_ = std::move(*bytes);
    return MemoryExtent{zeros.offset, zeros.length, current_->data()};
}

namespace {

// A read of one pack's chunks `first` to `first + count`, which start at byte `offset` of it, and
// the positions in the working set's list of the chunks it brings first.
struct PackRead {
    size_t pack = 0, first = 0, count = 0;
    uint64_t offset = 0;
    std::vector<size_t> owns;
};

// The reads of the packs that bring the pieces of the chunks `wanted`: each a run of pieces they
// need, of at most kPackReadBytes, one after another in a pack. Each wanted chunk is owned by the
// read that brings its first piece, and delivered by it; `alone` gets the rest.
std::vector<PackRead> plan_reads(const Manifest& m, std::span<const uint64_t> wanted,
                                 std::vector<size_t>& alone) {
    struct Place {
        size_t pack, entry;
    };
    // The pieces the wanted chunks need, and where the packs first hold each: a manifest's packs
    // may name many more chunks than the working set has, which cost a pass and nothing kept.
    std::unordered_map<ChunkId, std::optional<Place>, ChunkIdHash> places;
    for (uint64_t index : wanted) {
        if (!m.memory.chunks[index]) continue;
        places.try_emplace(*m.memory.chunks[index]);
        if (auto patch = m.memory.patches.find(index); patch != m.memory.patches.end())
            places.try_emplace(patch->second.pages);
    }
    std::vector<std::vector<bool>> needed(m.packs.size());
    for (size_t p = 0; p < m.packs.size(); ++p) {
        needed[p].resize(m.packs[p].chunks.size());
        for (size_t e = 0; e < m.packs[p].chunks.size(); ++e) {
            auto at = places.find(m.packs[p].chunks[e].id);
            if (at == places.end() || at->second) continue;
            at->second = Place{p, e};
            needed[p][e] = true;
        }
    }
    // The place of each wanted chunk's first piece, where a pack has it.
    std::vector<std::optional<Place>> first_piece(wanted.size());
    for (size_t k = 0; k < wanted.size(); ++k)
        if (const auto& id = m.memory.chunks[wanted[k]]) first_piece[k] = places.at(*id);
    std::vector<PackRead> reads;
    // The read that brings each needed entry, by its pack and place there.
    std::unordered_map<uint64_t, size_t> read_of;
    const auto key = [](size_t p, size_t e) { return uint64_t{p} << 32 | e; };
    for (size_t p = 0; p < m.packs.size(); ++p) {
        const auto& chunks = m.packs[p].chunks;
        uint64_t offset = 0, brought = 0;
        bool open = false;
        for (size_t e = 0; e < chunks.size(); offset += chunks[e++].stored) {
            if (!needed[p][e]) {
                open = false;
                continue;
            }
            if (!open || brought + chunks[e].length > kPackReadBytes) {
                reads.push_back({p, e, 0, offset, {}});
                brought = 0;
                open = true;
            }
            ++reads.back().count;
            brought += chunks[e].length;
            read_of[key(p, e)] = reads.size() - 1;
        }
    }
    for (size_t k = 0; k < wanted.size(); ++k) {
        if (first_piece[k])
            reads[read_of.at(key(first_piece[k]->pack, first_piece[k]->entry))].owns.push_back(k);
        else
            alone.push_back(k);
    }
    return reads;
}

}  // namespace

Result<void> ChunkedMemory::deliver(std::span<const PageRun> runs, const TakeExtent& take) {
    const std::vector<uint64_t> wanted =
        chunks_holding(runs, manifest_.chunk_size, manifest_.memory.chunks.size());
    std::vector<size_t> alone;
    const std::vector<PackRead> reads = plan_reads(manifest_, wanted, alone);
    // Each thread holds one chunk at a time, or a read of a pack (its range and what it brought,
    // a read being one chunk where chunks are larger, and the chunk a patch is put on), so what
    // is held is bounded in bytes whatever the runs.
    const uint64_t chunk = manifest_.chunk_size;
    const uint64_t held = reads.empty() ? chunk : 2 * std::max(kPackReadBytes, chunk) + chunk;
    const uint64_t most = std::max<uint64_t>(1, kMaxAheadBytes / held);
    const auto threads = static_cast<unsigned>(std::min<uint64_t>(fetchers_, most));
    auto deliver_one = [&](size_t k, const Brought& brought) -> Result<void> {
        const uint64_t index = wanted[k];
        const MemoryExtent zeros{index * manifest_.chunk_size,
                                 manifest_.chunk_length(size(), index), nullptr};
        if (!manifest_.memory.chunks[index]) return take(zeros);
        auto bytes = fetch(index, true, brought);
        EMBER_TRY(bytes);
        return take({zeros.offset, zeros.length, (*bytes)->data()});
    };
    // A pack that could not be read once (gone, or a server that reads no ranges) is not asked
    // again: its other reads' chunks are fetched alone.
    std::vector<std::atomic<bool>> failed(manifest_.packs.size());
    // The reads first, as each brings several chunks; then the chunks no pack has.
    auto delivered =
        for_each_at_once(reads.size() + alone.size(), threads, [&](size_t u) -> Result<void> {
            if (u >= reads.size()) return deliver_one(alone[u - reads.size()], {});
            const PackRead& r = reads[u];
            const ChunkPack& pack = manifest_.packs[r.pack];
            const auto entries = std::span(pack.chunks).subspan(r.first, r.count);
            Brought brought;
            if (!failed[r.pack]) {
                Unpacked got = store_.get_packed(pack.id, r.offset, entries);
                if (got.failed) failed[r.pack] = true;
                {
                    const std::lock_guard guard(counting_);
                    counts_.pack_reads += got.reads;
                    counts_.pack_bytes += got.bytes;
                }
                for (size_t i = 0; i < entries.size(); ++i)
                    if (got.chunks[i]) brought.emplace(entries[i].id, std::move(got.chunks[i]));
            }
            for (size_t k : r.owns) EMBER_TRY(deliver_one(k, brought));
            return {};
        });
    EMBER_TRY(delivered, "fetching the working set");
    return {};
}

Result<std::vector<uint8_t>> fetch_file(const Manifest& manifest, const ChunkedFile& file,
                                        ChunkStore& store) {
    std::vector<uint8_t> out;
    out.reserve(file.bytes);
    for (uint64_t i = 0; i < file.chunks.size(); ++i) {
        const uint64_t length = manifest.chunk_length(file.bytes, i);
        if (!file.chunks[i]) {
            out.resize(out.size() + length, 0);
            continue;
        }
        auto bytes = store.get(*file.chunks[i], length);
        EMBER_TRY(bytes);
        out.insert(out.end(), (*bytes)->begin(), (*bytes)->end());
    }
    return out;
}

}  // namespace ember::snapshot
