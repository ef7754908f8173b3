#include "snapshot/store/chunk_store.h"

#include "snapshot/store/chunk_codec.h"

namespace ember::snapshot {

Result<void> check_chunk(const ChunkId& id, uint64_t length, const std::vector<uint8_t>& bytes) {
    if (bytes.size() != length)
        return fail("chunk " + id.hex() + ": " + std::to_string(bytes.size()) +
                    " bytes, where the manifest says " + std::to_string(length));
    if (const ChunkId got = chunk_id_of(bytes); got != id)
        return fail("chunk " + id.hex() + " is corrupt: its bytes hash to " + got.hex());
    return {};
}

uint64_t stored_bytes(std::span<const PackedChunk> entries) {
    uint64_t n = 0;
    for (const auto& e : entries) n += e.stored;
    return n;
}

Result<std::vector<uint8_t>> ChunkStore::get_range(const ChunkId& object, uint64_t, uint64_t) {
    return fail("object " + object.hex() + ": this store reads no ranges");
}

Unpacked ChunkStore::get_packed(const ChunkId& pack, uint64_t offset,
                                std::span<const PackedChunk> entries) {
    Unpacked got;
    got.chunks.resize(entries.size());
    got.by_sum.resize(entries.size());
    auto bytes = get_range(pack, offset, stored_bytes(entries));
    if (!bytes) {
        got.failed = true;
        return got;
    }
    got.reads = 1;
    got.bytes = bytes->size();
    unpack(entries, *bytes, std::vector<bool>(entries.size(), true), got.chunks, got.by_sum);
    return got;
}

void unpack(std::span<const PackedChunk> entries, std::span<const uint8_t> from,
            const std::vector<bool>& take, std::vector<ChunkBytes>& out,
            std::vector<bool>& by_sum) {
    by_sum.assign(entries.size(), false);
    uint64_t at = 0;
    for (size_t i = 0; i < entries.size() && at <= from.size(); at += entries[i++].stored) {
        if (!take[i] || entries[i].stored > from.size() - at) continue;
        const auto stored = from.subspan(at, entries[i].stored);
        bool summed = false;
        auto chunk = decode_packed(entries[i], stored, summed);
        if (!chunk) continue;
        out[i] = std::make_shared<const std::vector<uint8_t>>(std::move(*chunk));
        by_sum[i] = summed;
    }
}

}  // namespace ember::snapshot
