#include "snapshot/store/chunk_codec.h"

#include <zstd.h>

#include <memory>
#include <string>

#include "snapshot/store/chunk_store.h"

namespace ember::snapshot {

namespace {

struct FreeCctx {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct FreeDctx {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

}  // namespace

std::optional<std::vector<uint8_t>> compress_chunk(std::span<const uint8_t> bytes, int level) {
    if (level <= 0 || bytes.empty()) return std::nullopt;
    // One context a thread: making one for each chunk costs more than compressing it.
    thread_local std::unique_ptr<ZSTD_CCtx, FreeCctx> context;
    if (!context) context.reset(ZSTD_createCCtx());
    if (!context) return std::nullopt;
    std::vector<uint8_t> frame(ZSTD_compressBound(bytes.size()));
    const size_t n = ZSTD_compressCCtx(context.get(), frame.data(), frame.size(), bytes.data(),
                                       bytes.size(), level);
    if (ZSTD_isError(n) != 0 || n > bytes.size() - bytes.size() / 8) return std::nullopt;
    frame.resize(n);
    return frame;
}

Result<std::vector<uint8_t>> decode_chunk(const ChunkId& id, uint64_t length,
                                          std::vector<uint8_t> stored) {
    if (stored.size() != length) return decode_chunk(id, length, std::span<const uint8_t>(stored));
    EMBER_TRY(check_chunk(id, length, stored));
    return stored;
}

namespace {

// The chunk's bytes from its zstd frame `stored`, shorter than `length`, unchecked.
Result<std::vector<uint8_t>> decompress(const ChunkId& id, uint64_t length,
                                        std::span<const uint8_t> stored) {
    if (stored.size() > length)
        return fail("chunk " + id.hex() + ": " + std::to_string(stored.size()) +
                    " bytes in the store, where the manifest says at most " +
                    std::to_string(length));
    auto no_frame = [&](const std::string& why) {
        return fail("chunk " + id.hex() + " is corrupt: its " + std::to_string(stored.size()) +
                    " stored bytes are no zstd frame of " + std::to_string(length) + " bytes (" +
                    why + ")");
    };
    // One frame of the chunk's length as it says, with no dictionary: concatenated or
    // skippable frames, or one of unknown length, are not what push writes.
    const unsigned long long says = ZSTD_getFrameContentSize(stored.data(), stored.size());
    if (ZSTD_findFrameCompressedSize(stored.data(), stored.size()) != stored.size() ||
        says != length || ZSTD_getDictID_fromFrame(stored.data(), stored.size()) != 0)
        return no_frame(says == ZSTD_CONTENTSIZE_ERROR     ? "not a frame"
                        : says == ZSTD_CONTENTSIZE_UNKNOWN ? "its length unsaid"
                        : says != length ? "it says " + std::to_string(says) + " bytes"
                                         : "more than one frame, or a dictionary's");
    // One context a thread (made again where making it failed): about 95 KiB, which a
    // handler's threads that live as long as its VM keep.
    thread_local std::unique_ptr<ZSTD_DCtx, FreeDctx> context;
    if (!context) context.reset(ZSTD_createDCtx());
    if (!context) return fail("chunk " + id.hex() + ": no memory to decompress it");
    // Exactly `length` bytes of room: a frame that says more, or holds more, is an error here,
    // never a larger buffer.
    std::vector<uint8_t> bytes(length);
    const size_t n = ZSTD_decompressDCtx(context.get(), bytes.data(), bytes.size(), stored.data(),
                                         stored.size());
    if (ZSTD_isError(n) != 0) return no_frame(ZSTD_getErrorName(n));
    if (n != length)
        return fail("chunk " + id.hex() + " is corrupt: its zstd frame holds " + std::to_string(n) +
                    " bytes, where the manifest says " + std::to_string(length));
    return bytes;
}

}  // namespace

Result<std::vector<uint8_t>> decode_chunk(const ChunkId& id, uint64_t length,
                                          std::span<const uint8_t> stored) {
    std::vector<uint8_t> bytes;
    if (stored.size() == length) {
        bytes.assign(stored.begin(), stored.end());
    } else {
        auto frame = decompress(id, length, stored);
        EMBER_TRY(frame);
        bytes = std::move(*frame);
    }
    EMBER_TRY(check_chunk(id, length, bytes));
    return bytes;
}

Result<std::vector<uint8_t>> decode_packed(const PackedChunk& entry,
                                           std::span<const uint8_t> stored, bool& by_sum) {
    by_sum = false;
    // Stored as it is, its sum is its name (the manifest's rule), checked as such: one hash
    // either way.
    if (!entry.sum || stored.size() == entry.length)
        return decode_chunk(entry.id, entry.length, stored);
    if (const ChunkId got = chunk_id_of(stored); got != *entry.sum)
        return fail("chunk " + entry.id.hex() + " is corrupt: its " +
                    std::to_string(stored.size()) + " stored bytes hash to " + got.hex() +
                    ", where the manifest's sum is " + entry.sum->hex());
    by_sum = true;
    return decompress(entry.id, entry.length, stored);
}

}  // namespace ember::snapshot
