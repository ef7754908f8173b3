// A chunk's name in a snapshot store: the SHA-256 of its bytes, written as 64 lower-case hex
// digits. Two snapshots that hold the same bytes (one kernel, one runtime) name the same chunk, and
// a chunk read back is checked against its name before anything uses it.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace ember::snapshot {

struct ChunkId {
    std::array<uint8_t, 32> digest{};

    std::string hex() const;
    // Exactly 64 hex digits, lower case (the name is a file's and an object's).
    static std::optional<ChunkId> parse(std::string_view hex);
    auto operator<=>(const ChunkId&) const = default;
};

ChunkId chunk_id_of(std::span<const uint8_t> bytes);

struct ChunkIdHash {
    size_t operator()(const ChunkId& id) const {
        size_t h = 0;
        for (size_t i = 0; i < sizeof h; ++i) h = (h << 8) | id.digest[i];
        return h;
    }
};

}  // namespace ember::snapshot
