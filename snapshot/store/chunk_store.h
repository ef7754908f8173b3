// Where a restore reads a store's chunks from. A store is hostile: every chunk it hands back is
// checked against its name and length before anything uses it (a pack's, where the manifest gives
// their sums, against those: chunk_codec.h, decode_packed).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_id.h"

namespace ember::snapshot {

// A chunk's bytes, shared: the cache writes the very bytes a restore installs, once it has.
using ChunkBytes = std::shared_ptr<const std::vector<uint8_t>>;

// A chunk as a pack holds it (manifest.h): its name, its length, and the bytes its stored form
// takes there (the chunk itself, or a shorter zstd frame: chunk_codec.h).
struct PackedChunk {
    ChunkId id;
    uint64_t length = 0;
    uint64_t stored = 0;
    // The SHA-256 of its stored bytes, where the manifest gives it (manifest.h, "sums"): a
    // compressed chunk is then checked as it is read, a third of its bytes or less, and its
    // decompressed bytes are what push hashed to its name.
    std::optional<ChunkId> sum;
    bool operator==(const PackedChunk&) const = default;
};

// The bytes `entries` take one after another in a pack.
uint64_t stored_bytes(std::span<const PackedChunk> entries);

// What a read of a pack brought: each entry's chunk, checked, or null where it is left to get().
struct Unpacked {
    std::vector<ChunkBytes> chunks;
    // Of those, the ones checked by their stored bytes' sum alone: right for the restore whose
    // manifest gave the sum, not yet hashed to their names (what a host-wide cache keeps must be).
    std::vector<bool> by_sum;
    uint64_t reads = 0;   // ranges read from the store: none, or one
    uint64_t bytes = 0;   // their bytes
    bool failed = false;  // a range was asked for and not had (the pack is not worth asking again)
};

class ChunkStore {
  public:
    virtual ~ChunkStore() = default;
    // The chunk named `id`, which must be `length` bytes long and hash to its name. Called from
    // several threads at once.
    virtual Result<ChunkBytes> get(const ChunkId& id, uint64_t length) = 0;
    // `length` bytes from byte `offset` of the object `object` (a pack), exactly, unchecked: a
    // pack is checked chunk by chunk. A store that reads no ranges fails.
    virtual Result<std::vector<uint8_t>> get_range(const ChunkId& object, uint64_t offset,
                                                   uint64_t length);
    // The chunks `entries`, which lie one after another from byte `offset` of pack `pack`, in one
    // range read, each checked against its name or its sum (decode_packed). Never an error: a chunk
    // that could not be had so (the read failed, or its bytes are not what the manifest says) is
    // null, and its restore gets it
    // alone, which asks the store again and says why where that fails too.
    virtual Unpacked get_packed(const ChunkId& pack, uint64_t offset,
                                std::span<const PackedChunk> entries);
};

// Where a push puts a snapshot's chunks and then its manifest: a directory, or a bucket.
class ChunkSink {
  public:
    virtual ~ChunkSink() = default;
    // Stores `stored` (chunk `id` of `length` bytes, as it is or as a frame: chunk_codec.h) under
    // its name unless the store holds that chunk already, in either form: true if it stored it.
    // One it holds it makes new where it can (DirectoryStore), so that a collection of the store
    // (store_collect.h) leaves it until the manifest that names it is in.
    // Called from parallel() threads at once.
    virtual Result<bool> put(const ChunkId& id, std::span<const uint8_t> stored,
                             uint64_t length) = 0;
    // Once every chunk is in: the manifest `name`, whole or not at all.
    virtual Result<void> put_manifest(std::string_view name, std::string_view text) = 0;
    // How many puts at once keep it busy.
    virtual unsigned parallel() const = 0;
};

// Fills `out` (one per entry) with the entries of `from`, the stored forms of `entries` one after
// another, decoded and checked (decode_packed), where `take` says so, and marks in `by_sum` those
// checked by their sums alone; an entry that is not what the manifest says is left null.
void unpack(std::span<const PackedChunk> entries, std::span<const uint8_t> from,
            const std::vector<bool>& take, std::vector<ChunkBytes>& out, std::vector<bool>& by_sum);

// "chunk <id>: ..." where `bytes` is not what `id` names (or not `length` long).
Result<void> check_chunk(const ChunkId& id, uint64_t length, const std::vector<uint8_t>& bytes);

}  // namespace ember::snapshot
