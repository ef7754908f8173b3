// virtio-blk's own snapshot state beside its transport's: its rate limiter's buckets, so that
// tokens spent before a snapshot stay spent after it.
#include "core/base/bytes.h"
#include "virtio/block/block_device.h"
#include "virtio/rate_limiter/persist.h"

namespace ember::virtio {

std::vector<uint8_t> BlockDevice::save_state() const {
    ByteWriter w;
    put_rate_limiter(w, limiter_.state(clock_()));
    return w.bytes();
}

Result<void> BlockDevice::restore_state(std::span<const uint8_t> state) {
    if (state.empty()) return {};
    ByteReader r(state, "drive '" + id() + "' state");
    auto limiter = get_rate_limiter(r);
    EMBER_TRY(limiter, "drive '" + id() + "' rate limiter");
    if (!r.done()) return fail("drive '" + id() + "' state has trailing bytes");
    EMBER_TRY(limiter_.restore(*limiter, clock_()), "drive '" + id() + "' rate limiter");
    return {};
}

}  // namespace ember::virtio
