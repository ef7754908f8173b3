#include "snapshot/store/push.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>

#include "core/base/file_io.h"
#include "core/base/open_file.h"
#include "snapshot/decoded_snapshot.h"

namespace ember::snapshot {

namespace {

bool all_zero(std::span<const uint8_t> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

// Where the next data at or after `offset` begins in `fd` (holes read as zeros): the file's end
// when only holes are left, `offset` itself where the file system cannot say.
uint64_t next_data(int fd, uint64_t offset, uint64_t end) {
    const off_t at = ::lseek(fd, static_cast<off_t>(offset), SEEK_DATA);
    if (at < 0) return errno == ENXIO ? end : offset;
    return static_cast<uint64_t>(at);
}

Result<std::optional<ChunkId>> take_chunk(std::span<const uint8_t> bytes, DirectoryStore* store,
                                          PushCounts& counts) {
    const ChunkId id = chunk_id_of(bytes);
    ++counts.chunks;
    if (store == nullptr) return id;
    auto stored = store->put(id, bytes);
    EMBER_TRY(stored);
    if (*stored) {
        ++counts.stored;
        counts.stored_bytes += bytes.size();
    } else {
        ++counts.shared;
    }
    return id;
}

}  // namespace

Result<Manifest> chunk_snapshot(const PushInput& in, DirectoryStore* store, PushCounts* out) {
    PushCounts counts;
    Manifest m;
    if (!std::has_single_bit(in.chunk_size) || in.chunk_size < kMinChunkSize ||
        in.chunk_size > kMaxChunkSize)
        return fail("a chunk size of " + std::to_string(in.chunk_size) +
                    " bytes; it is a power of two from 4 KiB to 4 MiB");
    m.chunk_size = in.chunk_size;

    auto snapshot = read_snapshot(in.state_path);
    EMBER_TRY(snapshot, "state file " + in.state_path);
    const SnapshotIdentity identity = snapshot->identity;
    if (identity.memory_bytes > kMaxStoredMemoryBytes)
        return fail("memory of " + std::to_string(identity.memory_bytes) +
                    " bytes; a store takes at most " + std::to_string(kMaxStoredMemoryBytes));
    auto memory = open_file(in.memory_path, O_RDONLY);
    EMBER_TRY(memory, "memory file " + in.memory_path);
    auto memory_bytes = file_size(memory->get());
    EMBER_TRY(memory_bytes, "memory file " + in.memory_path);
    if (*memory_bytes != identity.memory_bytes)
        return fail("memory file " + in.memory_path + ": " + std::to_string(*memory_bytes) +
                    " bytes, where the state file's layout has " +
                    std::to_string(identity.memory_bytes));
    if (!in.working_set_path.empty()) {
        auto fd = open_file(in.working_set_path, O_RDONLY);
        EMBER_TRY(fd, "working set " + in.working_set_path);
        auto set = read_working_set(fd->get(), identity);
        EMBER_TRY(set, "working set " + in.working_set_path);
        m.working_set = std::move(set->runs);
    }

    const std::vector<uint8_t>& state = snapshot->bytes;
    m.state.bytes = state.size();
    for (uint64_t at = 0; at < state.size(); at += m.chunk_size) {
        const auto piece = std::span(state).subspan(at, std::min(m.chunk_size, state.size() - at));
        auto id = take_chunk(piece, store, counts);
        EMBER_TRY(id, "state file");
        m.state.chunks.push_back(*id);
    }

    m.memory.bytes = identity.memory_bytes;
    std::vector<uint8_t> buffer(m.chunk_size);
    uint64_t data = 0;
    for (uint64_t at = 0; at < m.memory.bytes; at += m.chunk_size) {
        const uint64_t length = std::min(m.chunk_size, m.memory.bytes - at);
        if (data < at + length) data = next_data(memory->get(), std::max(data, at), m.memory.bytes);
        const auto piece = std::span(buffer).first(length);
        if (data >= at + length) {  // a hole
            ++counts.zero_chunks;
            m.memory.chunks.emplace_back();
            continue;
        }
        EMBER_TRY(pread_exact(memory->get(), piece, at), "memory file " + in.memory_path);
        if (all_zero(piece)) {
            ++counts.zero_chunks;
            m.memory.chunks.emplace_back();
            continue;
        }
        auto id = take_chunk(piece, store, counts);
        EMBER_TRY(id, "memory file");
        m.memory.chunks.push_back(*id);
    }
    if (out != nullptr) *out = counts;
    return m;
}

Result<PushCounts> push_snapshot(DirectoryStore& store, std::string_view name,
                                 const PushInput& input) {
    EMBER_TRY(check_snapshot_name(name));
    PushCounts counts;
    auto manifest = chunk_snapshot(input, &store, &counts);
    EMBER_TRY(manifest);
    EMBER_TRY(store.put_manifest(name, encode_manifest(*manifest)));
    return counts;
}

}  // namespace ember::snapshot
