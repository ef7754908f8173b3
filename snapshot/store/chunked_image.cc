#include "snapshot/store/chunked_image.h"

#include <algorithm>
#include <cstring>

namespace ember::snapshot {

Result<ChunkBytes> ChunkedImage::chunk(uint64_t index) {
    {
        const std::lock_guard lock(mutex_);
        for (auto it = kept_.begin(); it != kept_.end(); ++it) {
            if (it->index != index) continue;
            Kept hit = std::move(*it);
            kept_.erase(it);
            kept_.push_back(hit);
            return hit.bytes;
        }
    }
    const uint64_t length = manifest_.chunk_length(file_.bytes, index);
    auto bytes = store_.get(*file_.chunks[index], length);
    EMBER_TRY(bytes, "chunk " + std::to_string(index));
    const std::lock_guard lock(mutex_);
    ++counts_.fetched;
    counts_.fetched_bytes += length;
    if (kept_.size() == kKept) kept_.erase(kept_.begin());
    kept_.push_back({index, *bytes});
    return bytes;
}

Result<size_t> ChunkedImage::read(uint64_t offset, std::span<uint8_t> out) {
    if (offset >= file_.bytes) return 0;
    const uint64_t end = offset + std::min<uint64_t>(out.size(), file_.bytes - offset);
    size_t done = 0;
    for (uint64_t at = offset; at < end;) {
        const uint64_t size = manifest_.chunk_size;
        const uint64_t index = at / size;
        const uint64_t within = at - index * size;
        const uint64_t n = std::min(end - at, size - within);
        if (!file_.chunks[index]) {
            std::memset(out.data() + done, 0, n);
        } else {
            auto bytes = chunk(index);
            if (!bytes) {
                const std::lock_guard lock(mutex_);
                ++counts_.failed;
                return std::unexpected(std::move(bytes.error()));
            }
            std::memcpy(out.data() + done, (*bytes)->data() + within, n);
        }
        at += n;
        done += n;
    }
    const std::lock_guard lock(mutex_);
    ++counts_.reads;
    return done;
}

ImageCounts ChunkedImage::counts() const {
    const std::lock_guard lock(mutex_);
    return counts_;
}

}  // namespace ember::snapshot
