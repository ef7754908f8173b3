// A chunk's bytes as a store hands them back (snapshot/store/chunk_codec): as they are, or a zstd
// frame, or anything else. The first byte sets the chunk's length (1 to 32 pages), the rest are the
// stored bytes, for a chunk of zeros of that length. Whatever is handed back is exactly the
// chunk's length and hashes to its name; a refusal says why. And what compress_chunk makes of
// the same bytes reads back as them.
#include <vector>

#include "fuzz/support/require.h"
#include "snapshot/store/chunk_codec.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint64_t length = 4096 * (1 + uint64_t{data[0]} % 32);
    const std::vector<uint8_t> stored(data + 1, data + size);
    const snapshot::ChunkId zeros = snapshot::chunk_id_of(std::vector<uint8_t>(length, 0));
    auto chunk = snapshot::decode_chunk(zeros, length, stored);
    if (chunk)
        require(chunk->size() == length && snapshot::chunk_id_of(*chunk) == zeros,
                "only the named chunk's bytes are handed back");
    else
        require(chunk.error().message.rfind("chunk " + zeros.hex(), 0) == 0,
                "a refusal names the chunk");
    // The same bytes as a pack's entry whose sum is theirs: handed back whole where decode_chunk
    // hands them back; checked by the sum alone only where they are a frame, else by the name;
    // under another sum, never.
    snapshot::PackedChunk entry{zeros, length, stored.size(), snapshot::chunk_id_of(stored)};
    bool by_sum = false;
    auto packed = snapshot::decode_packed(entry, stored, by_sum);
    if (chunk) require(packed && *packed == *chunk, "a right sum takes what the name takes");
    if (packed)
        require(packed->size() == length && by_sum == (stored.size() < length) &&
                    (by_sum || snapshot::chunk_id_of(*packed) == zeros),
                "a sum's chunk is its length, a frame's bytes or what its name says");
    else
        require(packed.error().message.rfind("chunk " + zeros.hex(), 0) == 0,
                "a refusal names the chunk");
    entry.sum = zeros;
    if (stored.size() < length && !stored.empty())
        require(!snapshot::decode_packed(entry, stored, by_sum), "a wrong sum is refused");
    if (!stored.empty()) {
        const auto frame = snapshot::compress_chunk(stored, 1);
        if (frame) {
            require(frame->size() < stored.size(), "a frame only where it saves");
            auto back =
                snapshot::decode_chunk(snapshot::chunk_id_of(stored), stored.size(), *frame);
            require(back && *back == stored, "a frame reads back as the bytes it was made of");
        }
    }
    return 0;
}
