#include "snapshot/store/chunked_memory.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

#include "core/memory/guest_memory.h"

namespace ember::snapshot {

Result<std::vector<uint8_t>> ChunkedMemory::fetch(uint64_t index) {
    const auto& id = *manifest_.memory.chunks[index];
    auto bytes = store_.get(id, manifest_.chunk_length(manifest_.memory.bytes, index));
    EMBER_TRY(bytes, "memory chunk " + std::to_string(index));
    return bytes;
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
    if (auto it = ahead_.find(index); it != ahead_.end()) {
        current_ = std::move(it->second);
        ahead_.erase(it);
    } else {
        auto bytes = fetch(index);
        EMBER_TRY(bytes);
        current_ = std::move(*bytes);
        ++counts_.fetched;
        counts_.fetched_bytes += current_.size();
    }
    return MemoryExtent{zeros.offset, zeros.length, current_.data()};
}

Result<void> ChunkedMemory::prefetch(std::span<const PageRun> runs) {
    std::vector<uint64_t> wanted;
    for (const auto& run : runs) {
        const uint64_t first = run.offset / manifest_.chunk_size;
        const uint64_t last = (run.offset + run.pages * kGuestPageSize - 1) / manifest_.chunk_size;
        for (uint64_t i = first; i <= last && i < manifest_.memory.chunks.size(); ++i)
            if (manifest_.memory.chunks[i] && !ahead_.contains(i) &&
                (wanted.empty() || wanted.back() != i))
                wanted.push_back(i);
    }
    // Runs come written first, then read: a chunk may hold both.
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    // What is held ahead is bounded in bytes, whatever the runs: a sparse working set in large
    // chunks would otherwise hold a chunk per page. The rest comes a chunk per fault.
    const uint64_t most = std::max<uint64_t>(1, kMaxAheadBytes / manifest_.chunk_size);
    if (wanted.size() > most) wanted.resize(most);
    std::vector<std::optional<Result<std::vector<uint8_t>>>> got(wanted.size());
    std::atomic<size_t> next{0};
    {
        std::vector<std::jthread> workers;
        workers.reserve(fetchers_);
        const unsigned n = std::min<unsigned>(fetchers_, static_cast<unsigned>(wanted.size()));
        for (unsigned w = 0; w < n; ++w)
            workers.emplace_back([&] {
                for (size_t i; (i = next.fetch_add(1)) < wanted.size();) got[i] = fetch(wanted[i]);
            });
    }
    for (size_t i = 0; i < wanted.size(); ++i) {
        EMBER_TRY(*got[i], "fetching the working set");
        counts_.fetched_bytes += (*got[i])->size();
        ahead_.emplace(wanted[i], std::move(**got[i]));
    }
    counts_.fetched += wanted.size();
    counts_.ahead += wanted.size();
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
        out.insert(out.end(), bytes->begin(), bytes->end());
    }
    return out;
}

}  // namespace ember::snapshot
