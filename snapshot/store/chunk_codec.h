// How a chunk's bytes lie in a store: as they are, or as one zstd frame where that is smaller. A
// chunk keeps its name (the SHA-256 of its bytes as they are) either way, so that a store may hold
// both forms and every reader tells them apart by size alone: an object of the chunk's length is
// its bytes, a shorter one a frame. Compressing is push's choice, decompressing every reader's
// (stores written before there was a choice hold only the first form). A frame is a store's
// hostile bytes like any other: decompressed into exactly the chunk's length, no more, then checked
// against the name.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_id.h"
#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

// zstd's level for push: its own default. Higher levels made a store a few percent smaller and a
// push several times slower; decompression costs the same at every level.
inline constexpr int kDefaultCompressionLevel = 3;

// `bytes` as one zstd frame at `level`; nothing where `level` is 0 or the frame saves less than an
// eighth of the bytes (their decompression would cost a restore more than it saves).
std::optional<std::vector<uint8_t>> compress_chunk(std::span<const uint8_t> bytes, int level);

// Chunk `id` of `length` bytes from what a store held for it: `stored` itself where it is that
// long, else `stored` decompressed; checked against `id` either way. "chunk <id> is corrupt: ..."
// where it is neither.
Result<std::vector<uint8_t>> decode_chunk(const ChunkId& id, uint64_t length,
                                          std::vector<uint8_t> stored);
// The same from bytes held elsewhere (a pack's range): a frame is decompressed from them, with no
// copy of its own.
Result<std::vector<uint8_t>> decode_chunk(const ChunkId& id, uint64_t length,
                                          std::span<const uint8_t> stored);

// A pack's entry from its stored bytes: where the manifest gives its sum, checked against that
// (the SHA-256 of a third of the bytes or less, where the chunk is compressed: a restore's largest
// cost of CPU after the copies) and decompressed unhashed, `by_sum` set; else as decode_chunk.
// "chunk <id> is corrupt: ..." where it is not what the manifest says.
Result<std::vector<uint8_t>> decode_packed(const PackedChunk& entry,
                                           std::span<const uint8_t> stored, bool& by_sum);

}  // namespace ember::snapshot
