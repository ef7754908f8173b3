#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

Result<void> check_chunk(const ChunkId& id, uint64_t length, const std::vector<uint8_t>& bytes) {
    if (bytes.size() != length)
        return fail("chunk " + id.hex() + ": " + std::to_string(bytes.size()) +
                    " bytes, where the manifest says " + std::to_string(length));
    if (const ChunkId got = chunk_id_of(bytes); got != id)
        return fail("chunk " + id.hex() + " is corrupt: its bytes hash to " + got.hex());
    return {};
}

}  // namespace ember::snapshot
