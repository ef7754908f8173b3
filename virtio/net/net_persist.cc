// virtio-net's own snapshot state beside its transport's: its rate limiters' buckets, RX then
// TX, so that tokens spent before a snapshot stay spent after it.
#include "core/base/bytes.h"
#include "virtio/net/net_device.h"
#include "virtio/rate_limiter/persist.h"

namespace ember::virtio {

std::vector<uint8_t> NetDevice::save_state() const {
    ByteWriter w;
    const Clock::time_point now = clock_();
    put_rate_limiter(w, rx_limiter_.state(now));
    put_rate_limiter(w, tx_limiter_.state(now));
    return w.bytes();
}

Result<void> NetDevice::restore_state(std::span<const uint8_t> state) {
    if (state.empty()) return {};
    const std::string what = "network interface '" + id() + "'";
    ByteReader r(state, what + " state");
    auto rx = get_rate_limiter(r);
    EMBER_TRY(rx, what + " RX rate limiter");
    auto tx = get_rate_limiter(r);
    EMBER_TRY(tx, what + " TX rate limiter");
    if (!r.done()) return fail(what + " state has trailing bytes");
    // A failure here fails the whole load, which discards the device: no need to undo RX.
    const Clock::time_point now = clock_();
    EMBER_TRY(rx_limiter_.restore(*rx, now), what + " RX rate limiter");
    EMBER_TRY(tx_limiter_.restore(*tx, now), what + " TX rate limiter");
    return {};
}

}  // namespace ember::virtio
