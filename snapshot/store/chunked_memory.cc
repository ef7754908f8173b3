#include "snapshot/store/chunked_memory.h"

#include <algorithm>

#include "core/base/at_once.h"
#include "core/memory/guest_memory.h"

namespace ember::snapshot {

Result<ChunkBytes> ChunkedMemory::fetch(uint64_t index, bool ahead) {
    const auto& id = *manifest_.memory.chunks[index];
    const uint64_t length = manifest_.chunk_length(manifest_.memory.bytes, index);
    auto bytes = store_.get(id, length);
    EMBER_TRY(bytes, "memory chunk " + std::to_string(index));
    count(**bytes, ahead);
    const auto patched = manifest_.memory.patches.find(index);
    if (patched == manifest_.memory.patches.end()) return bytes;
    const ChunkPatch& patch = patched->second;
    auto pages = store_.get(patch.pages, patch.page_count() * kGuestPageSize);
    EMBER_TRY(pages, "memory chunk " + std::to_string(index) + "'s patch");
    count(**pages, ahead);
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

void ChunkedMemory::count(const std::vector<uint8_t>& bytes, bool ahead) {
    const std::lock_guard guard(counting_);
    ++counts_.fetched;
    counts_.ahead += ahead ? 1 : 0;
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

Result<void> ChunkedMemory::deliver(std::span<const PageRun> runs, const TakeExtent& take) {
    std::vector<uint64_t> wanted;
    for (const auto& run : runs) {
        if (run.pages == 0) continue;
        const uint64_t first = run.offset / manifest_.chunk_size;
        const uint64_t last = (run.offset + run.pages * kGuestPageSize - 1) / manifest_.chunk_size;
        for (uint64_t i = first; i <= last && i < manifest_.memory.chunks.size(); ++i)
            if (wanted.empty() || wanted.back() != i) wanted.push_back(i);
    }
    // Runs come written first, then read: a chunk may hold both.
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    // Each thread holds one chunk at a time, so what is held is bounded in bytes whatever the
    // runs.
    const uint64_t most = std::max<uint64_t>(1, kMaxAheadBytes / manifest_.chunk_size);
    const auto threads = static_cast<unsigned>(std::min<uint64_t>(fetchers_, most));
    auto delivered = for_each_at_once(wanted.size(), threads, [&](size_t k) -> Result<void> {
        const uint64_t index = wanted[k];
        const MemoryExtent zeros{index * manifest_.chunk_size,
                                 manifest_.chunk_length(size(), index), nullptr};
        if (!manifest_.memory.chunks[index]) return take(zeros);
        auto bytes = fetch(index, true);
        EMBER_TRY(bytes);
        return take({zeros.offset, zeros.length, (*bytes)->data()});
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
