// Where a restore reads a store's chunks from. A store is hostile: every chunk it hands back is
// checked against its name and length before anything uses it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_id.h"

namespace ember::snapshot {

// A chunk's bytes, shared: the cache writes the very bytes a restore installs, once it has.
using ChunkBytes = std::shared_ptr<const std::vector<uint8_t>>;

class ChunkStore {
  public:
    virtual ~ChunkStore() = default;
    // The chunk named `id`, which must be `length` bytes long and hash to its name. Called from
    // several threads at once.
    virtual Result<ChunkBytes> get(const ChunkId& id, uint64_t length) = 0;
};

// Where a push puts a snapshot's chunks and then its manifest: a directory, or a bucket.
class ChunkSink {
  public:
    virtual ~ChunkSink() = default;
    // Stores `stored` (chunk `id` of `length` bytes, as it is or as a frame: chunk_codec.h) under
    // its name unless the store holds that chunk already, in either form: true if it stored it.
    // Called from parallel() threads at once.
    virtual Result<bool> put(const ChunkId& id, std::span<const uint8_t> stored,
                             uint64_t length) = 0;
    // Once every chunk is in: the manifest `name`, whole or not at all.
    virtual Result<void> put_manifest(std::string_view name, std::string_view text) = 0;
    // How many puts at once keep it busy.
    virtual unsigned parallel() const = 0;
};

// "chunk <id>: ..." where `bytes` is not what `id` names (or not `length` long).
Result<void> check_chunk(const ChunkId& id, uint64_t length, const std::vector<uint8_t>& bytes);

}  // namespace ember::snapshot
