// A store's manifest (snapshot/store/manifest), as any bytes from a store: the parser must refuse
// what a restore could not trust and hand on only chunk lists that fit their files, and what it
// accepts must come back the same through the encoder.
#include <string_view>

#include "fuzz/support/require.h"
#include "snapshot/store/manifest.h"

using namespace ember;
using fuzz::require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    auto m = snapshot::parse_manifest(text);
    if (!m) {
        require(!m.error().message.empty(), "a refusal says why");
        return 0;
    }
    require(m->chunk_size >= snapshot::kMinChunkSize && m->chunk_size <= snapshot::kMaxChunkSize &&
                (m->chunk_size & (m->chunk_size - 1)) == 0,
            "a chunk size that is a power of two in bounds");
    for (const auto* f : {&m->state, &m->memory})
        require(f->bytes > 0 && f->chunks.size() == (f->bytes + m->chunk_size - 1) / m->chunk_size,
                "a chunk for each piece of a file");
    for (const auto& c : m->state.chunks) require(c.has_value(), "no zero chunk in the state");
    uint64_t end = 0;
    for (const auto& r : m->working_set) {
        require(r.offset % 4096 == 0 && r.pages > 0 && r.offset >= end &&
                    r.offset + r.pages * 4096 <= m->memory.bytes,
                "working-set runs in order inside the memory");
        end = r.offset + r.pages * 4096;
    }
    for (const auto& pack : m->packs) {
        uint64_t bytes = 0;
        for (const auto& c : pack.chunks) {
            require(
                c.length > 0 && c.length <= m->chunk_size && c.stored > 0 && c.stored <= c.length,
                "a pack's chunks fit a chunk and are stored in no more");
            require(c.sum.has_value() == pack.chunks.front().sum.has_value(),
                    "a pack's chunks have sums all or none");
            require(!c.sum || c.stored < c.length || *c.sum == c.id,
                    "a chunk stored as it is has its name for its sum");
            bytes += c.stored;
        }
        require(!pack.chunks.empty() && bytes <= snapshot::kMaxPackBytes && bytes == pack.bytes(),
                "a pack of some chunks, within its bound");
    }
    auto again = snapshot::parse_manifest(snapshot::encode_manifest(*m));
    require(again && *again == *m, "the encoder's manifest reads back the same");
    return 0;
}
