// What the snapshot code asks of a device whose guest-visible state a snapshot keeps. Each device
// kind has its section's line in core/base/state_sections.h, with the version it writes, and
// implements these in its own *_persist.cc.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/state_sections.h"

namespace ember {

class Persistent {
  public:
    virtual ~Persistent() = default;
    virtual StateSection section() const = 0;
    // With the VM paused, before anything is captured: finishes work in flight (a block request,
    // say), so the snapshot holds nothing half done; or says why it could not, in bounded time.
    virtual Result<void> quiesce() { return {}; }
    // With the VM paused: the device's section payload, at section().version.
    virtual std::vector<uint8_t> save() const = 0;
    // Before the vCPUs exist: puts back what save() wrote, or says why it cannot. The payload
    // comes from a file and is checked as hostile input; its version, from 1 up to
    // section().version, has been checked.
    virtual Result<void> restore(std::span<const uint8_t> payload, uint32_t version) = 0;
};

}  // namespace ember
