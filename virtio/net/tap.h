// virtio/net: the virtio-net device and its tap back-end.
//
// Tap: an existing host tap interface, attached by name with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, so
// each frame crosses with the 12-byte virtio 1.x net header in front and checksum/segmentation
// offloads pass straight between guest and host. Non-blocking; the VMM loop watches it.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::virtio {

inline constexpr size_t kVnetHeaderSize = 12;

// TUN_F_* offload bits the tap can take (TUNSETOFFLOAD).
struct TapOffloads {
    bool csum = false, tso4 = false, tso6 = false, ufo = false;
};

class Tap {
  public:
    // Errors name the tap and say what is wrong: it does not exist, it is busy, it is not a tap.
    static Result<Tap> open(const std::string& name);
    // A datagram socket standing in for a tap (tests, fuzzing): frames cross the same way, one per
    // datagram; there are no offloads to set, so setting none succeeds and any other fails.
    static Tap from_socket(UniqueFd socket, std::string name);

    // Which offloads this tap accepts, probed once at open.
    const TapOffloads& supported() const { return supported_; }
    // Whether a write can ever say EAGAIN: a tap's only when its send buffer has a limit (by
    // default it has none), a socket's always.
    bool writes_can_wait() const { return writes_can_wait_; }
    Result<void> set_offloads(const TapOffloads& offloads) const;

    // Frames, vnet header first. -errno on failure; -EAGAIN when it would block.
    ssize_t read(std::span<uint8_t> frame) const;
    ssize_t write(std::span<const iovec> frame) const;

    int fd() const { return fd_.get(); }
    const std::string& name() const { return name_; }
    // The interface's MTU, for VIRTIO_NET_F_MTU.
    Result<uint16_t> mtu() const;

  private:
    Tap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
    UniqueFd fd_;
    std::string name_;
    TapOffloads supported_;
    bool is_socket_ = false;
    bool writes_can_wait_ = true;
};

}  // namespace ember::virtio
