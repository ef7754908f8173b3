// Whether this host's kernel can move a tap's frames through io_uring, as virtio-net's Async
// engine needs (virtio/net/net_engine.h): Debian 12's 6.1 tap takes no RWF_NOWAIT read that way,
// and there a device asked for Async runs on Sync. Tests that check which engine runs expect what
// the kernel allows, found by the engine's own probe on `tap`, which is opened and closed again.
#pragma once

#include <string>

#include "virtio/net/net_engine.h"
#include "virtio/net/tap.h"

namespace ember::testing {

inline bool taps_take_io_uring(const std::string& tap) {
    auto opened = virtio::Tap::open(tap);
    return opened && virtio::make_uring_net_engine(*opened).has_value();
}

}  // namespace ember::testing
