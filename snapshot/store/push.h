// Pushing a snapshot into a store (a directory, or an S3 bucket): its state file and memory file
// cut into chunks of one size, each stored once under its SHA-256 (all-zero memory chunks not at
// all), compressed where that saves (chunk_codec.h), and a manifest that names them and the
// working set a restore installs first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_codec.h"
#include "snapshot/store/chunk_store.h"
#include "snapshot/store/manifest.h"

namespace ember::snapshot {

// A read-only drive of the snapshot whose image goes into the store with it.
struct DriveImage {
    std::string id;
    std::string path;  // empty: where the snapshot's drive has it (its path_on_host)
};

struct PushInput {
    std::string state_path;
    std::string memory_path;
    std::string working_set_path;  // empty: none
    std::vector<DriveImage> drives;
    uint64_t chunk_size = 0;
    int compression_level = kDefaultCompressionLevel;  // zstd's (chunk_codec.h); 0: none
    // The most a pack of the working set's chunks holds (manifest.h); 0: no packs.
    uint64_t pack_bytes = kMaxPackBytes;
};

struct PushCounts {
    uint64_t chunks = 0;        // non-zero chunks of the files: state, memory, drives
    uint64_t bytes = 0;         // their bytes
    uint64_t zero_chunks = 0;   // memory and drive chunks of zeros, not stored
    uint64_t stored = 0;        // chunks this push wrote (a patch is one)
    uint64_t shared = 0;        // chunks the store held already (another snapshot's, or this one's)
    uint64_t patched = 0;       // memory chunks put as the parent's with a patch of their own
    uint64_t stored_bytes = 0;  // bytes this push wrote
    uint64_t stored_uncompressed = 0;  // the same chunks' bytes before compression
    uint64_t packs = 0;                // packs of the working set's chunks
    uint64_t packed = 0;               // the chunks in them
    uint64_t pack_bytes = 0;           // their bytes
    ChunkId manifest;  // the SHA-256 of the manifest's text, which pins this snapshot
};

// The snapshot this one was restored from, in the store it goes to: each memory chunk that differs
// from the parent's at its place in at most half its pages goes in as a patch onto that chunk.
struct ParentSnapshot {
    const Manifest& manifest;
    ChunkStore& chunks;
};

// Checks the files against one another first (the memory file's size against the state file's
// layout, the working set against both, each drive against a read-only drive of the snapshot).
// Chunks go in from store.parallel() threads at once; the manifest goes in last, once every chunk
// is in, and not at all where one is not.
Result<PushCounts> push_snapshot(ChunkSink& store, std::string_view name, const PushInput& input,
                                 const ParentSnapshot* parent = nullptr);

// The working set's chunks of `m` once more, as packs of at most `most` bytes (manifest.h) added
// to `m` and put into `store` where given: each chunk's stored form (compressed at `level`, as
// push compresses) in the order a restore installs them, each chunk once, a patched chunk's base
// (`parent`'s) and its patch, each read again from `memory` and checked against its name. At most
// kMaxPacks packs and `most_chunks` chunks in them: past either, the rest of the working set is in
// no pack, and a restore fetches it chunk by chunk.
Result<void> pack_working_set(Manifest& m, int memory, const ParentSnapshot* parent, int level,
                              uint64_t most, uint64_t most_chunks, ChunkSink* store,
                              PushCounts& counts);

// The manifest of a snapshot: what push writes, with its chunks put into `store` where it is
// given.
Result<Manifest> chunk_snapshot(const PushInput& input, ChunkSink* store, PushCounts* counts,
                                const ParentSnapshot* parent = nullptr);

}  // namespace ember::snapshot
