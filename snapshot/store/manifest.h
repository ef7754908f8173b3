// A snapshot in a store: the manifest that names the content-addressed chunks of its state file and
// memory file, and the working set a restore installs first.
//
// A store is a plain layout that a directory, a web server or an object store serves alike:
//   <root>/chunks/<64 hex digits>    a chunk: the bytes whose SHA-256 is its name, or a zstd
//                                    frame of them (chunk_codec.h)
//   <root>/snapshots/<name>.json     a manifest
// so a manifest's chunks are found beside the folder that holds it. Memory chunks of all-zero bytes
// are not stored: the manifest names them null. Chunks cut both files at multiples of the chunk
// size; each is the chunk size long but the file's last, which is what is left.
//
// The manifest is JSON: {"format": "ember-store-manifest", "version": 1, "hash": "sha256",
// "chunk_size": N, "state": {"bytes": N, "chunks": [ID, ...]}, "memory": {"bytes": N, "chunks":
// [ID or null, ...]}, "working_set": [[OFFSET, PAGES, WRITTEN], ...], "drives": [{"id": DRIVE_ID,
// "bytes": N, "chunks": [ID or null, ...]}, ...]}, the working set's runs of 4 KiB pages by
// memory-file offset, written ones marked 1, in order (empty when it has none), and the images of
// the snapshot's read-only drives that went in with it, by drive id (none where none did; a
// manifest without "drives" has none), whose chunks of zeros are null as memory's are.
//
// Version 2 adds patched memory chunks, for a snapshot pushed onto its parent's (two functions
// restored from one runtime's snapshot): an entry {"base": ID, "patch": ID, "pages": [[FIRST,
// COUNT], ...]} is the chunk `base` (the parent's, stored once for both) with the runs of 4 KiB
// pages named replaced, in order, by the pages of the chunk `patch`. A function writes a few pages
// of most chunks it restored, so whole chunks alone would share little of them. Version 3 (what
// push writes where it compresses) says that chunks may be zstd frames (chunk_codec.h); its
// fields are version 2's.
//
// "packs" (optional, in any version: a reader that does not know it fetches chunk by chunk) holds
// the working set's chunks once more, as objects of the chunks' stored forms back to back, in the
// order a restore installs them: [{"id": ID, "chunks": [[ID, LENGTH, STORED], ...]}, ...], each
// pack an object under chunks/ named by the SHA-256 of its bytes. A restore reads a pack's chunks
// a range at a time (a store's round trip costs more than its bytes: 515 chunks of 128 KiB took
// 236 ms 1 ms away, 131 of 512 KiB 179 ms), and checks each against its name. A pack may also
// have "sums": [SUM, ...], one for each of its chunks, the SHA-256 of its stored bytes (a chunk
// stored as it is: its name). A restore then checks a compressed chunk by its stored bytes, a
// third of them or less, and takes the frame's bytes as what push hashed to its name (hashing
// was a restore's largest cost of CPU after the copies); what it keeps in a host's cache it still
// hashes to its name first. A reader that does not know "sums" checks each chunk by its name. So
// a manifest's memory is what its packs' sums say as much as what its chunks' names do: its
// digest, which covers both, is what names a snapshot.
#pragma once

#include <map>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "snapshot/store/chunk_id.h"
#include "snapshot/store/chunk_store.h"
#include "snapshot/working_set.h"

namespace ember::snapshot {

inline constexpr uint64_t kMinChunkSize = 4096;
inline constexpr uint64_t kMaxChunkSize = uint64_t{4} << 20;
// A manifest of a 64 GiB memory in 64 KiB chunks is 70 MiB of JSON at most; larger is not one.
inline constexpr size_t kMaxManifestBytes = size_t{96} << 20;
// What a manifest's values may take once parsed: that 70 MiB manifest's take about 110 MiB, while
// text of many small values ("null,null,...") takes 20 times its bytes, which this bounds.
inline constexpr size_t kMaxManifestTreeBytes = size_t{256} << 20;
// The chunks a manifest's files name in all, null ones too: that manifest's million, twice over.
// Each takes 33 bytes once parsed, so a manifest of 64 GiB in 4 KiB chunks of zeros (16 million,
// "null," each) is refused rather than taking half a GiB.
inline constexpr uint64_t kMaxManifestChunks = uint64_t{1} << 21;
inline constexpr uint64_t kMaxStoredMemoryBytes = uint64_t{64} << 30;
inline constexpr uint64_t kMaxStoredDriveBytes = uint64_t{64} << 30;
inline constexpr size_t kMaxStoredDrives = 16;
// A pack's bytes at most: what ember-store-fetch puts in one request, with room; a working set
// past it takes several packs.
inline constexpr uint64_t kMaxPackBytes = uint64_t{64} << 20;
inline constexpr size_t kMaxPacks = kMaxStoredMemoryBytes / kMaxPackBytes;

// The pages of a chunk that differ from its base: runs of pages (first, count) by page index in the
// chunk, in order and apart, whose bytes are those of the chunk `pages` one after another.
struct ChunkPatch {
    ChunkId pages;
    std::vector<std::pair<uint32_t, uint32_t>> runs;

    uint64_t page_count() const;
    bool operator==(const ChunkPatch&) const = default;
};

// A file cut into chunks; a chunk that is nullopt holds zeros only. A patched chunk (memory's
// alone) is its entry in `chunks` with the patch of the same index applied.
struct ChunkedFile {
    uint64_t bytes = 0;
    std::vector<std::optional<ChunkId>> chunks;
    std::map<uint64_t, ChunkPatch> patches = {};
    bool operator==(const ChunkedFile&) const = default;
};

// A read-only drive's image, named by the snapshot's drive id (1-64 of A-Z, a-z, 0-9 or _).
struct StoredDrive {
    std::string id;
    ChunkedFile image;
    bool operator==(const StoredDrive&) const = default;
};

// The working set's chunks' stored forms back to back, as one object of the store.
struct ChunkPack {
    ChunkId id;
    std::vector<PackedChunk> chunks;

    uint64_t bytes() const;
    bool operator==(const ChunkPack&) const = default;
};

struct Manifest {
    uint64_t chunk_size = 0;
    ChunkedFile state;
    ChunkedFile memory;
    std::vector<PageRun> working_set;
    std::vector<StoredDrive> drives;
    std::vector<ChunkPack> packs;
    // Whether its chunks may be zstd frames (chunk_codec.h): version 3, which embers from before
    // frames refuse. Without it, a store may still hand back frames that another push stored.
    bool compressed_chunks = false;

    // The length of chunk `index` of a file of `bytes`.
    uint64_t chunk_length(uint64_t bytes, uint64_t index) const;
    // The chunks its files and packs name, null ones too: what kMaxManifestChunks bounds.
    uint64_t named_chunks() const;
    // The memory chunks that hold the working set's pages (chunks_holding()).
    std::vector<uint64_t> working_set_chunks() const;
    bool operator==(const Manifest&) const = default;
};

// The chunks of `chunk_size` that hold the pages of `runs`, in order, each once, below `count`.
std::vector<uint64_t> chunks_holding(std::span<const PageRun> runs, uint64_t chunk_size,
                                     uint64_t count);

std::string encode_manifest(const Manifest& manifest);
// The SHA-256 of a manifest's text: what pins its snapshot (push prints it; a view is named by it).
ChunkId manifest_digest(std::string_view text);

// Checks everything a restore relies on: the chunk size (a power of two from 4 KiB to 4 MiB), each
// file's chunk count against its size, the state file's bound, no zero chunk in it, a working
// set of whole pages in order inside the memory, drives of distinct, valid ids, and packs of at
// most kMaxPackBytes whose chunks each fit a chunk and are no longer stored than they are.
Result<Manifest> parse_manifest(std::string_view json);

}  // namespace ember::snapshot
