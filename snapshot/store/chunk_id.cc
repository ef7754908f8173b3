#include "snapshot/store/chunk_id.h"

#include <nettle/sha2.h>

namespace ember::snapshot {

std::string ChunkId::hex() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(digest.size() * 2, '0');
    for (size_t i = 0; i < digest.size(); ++i) {
        out[2 * i] = kDigits[digest[i] >> 4];
        out[2 * i + 1] = kDigits[digest[i] & 0xf];
    }
    return out;
}

std::optional<ChunkId> ChunkId::parse(std::string_view hex) {
    if (hex.size() != 64) return std::nullopt;
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        return -1;
    };
    ChunkId id;
    for (size_t i = 0; i < id.digest.size(); ++i) {
        const int hi = nibble(hex[2 * i]);
        const int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        id.digest[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return id;
}

ChunkId chunk_id_of(std::span<const uint8_t> bytes) {
    sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, bytes.size(), bytes.data());
    ChunkId id;
    sha256_digest(&ctx, id.digest.size(), id.digest.data());
    return id;
}

}  // namespace ember::snapshot
