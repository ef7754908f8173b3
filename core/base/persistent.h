// What the snapshot code asks of a device whose guest-visible state a snapshot keeps. Each device
// kind has its section's line in core/base/state_sections.h, with the version it writes, and
// implements these in its own *_persist.cc, or describes its state for PersistentState.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/error.h"
#include "core/base/state_codec.h"
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

// A device whose section is one described struct (core/base/state_codec.h), which the device gives
// as state() and takes back with restore(const State&): its section, save and restore.
template <typename Device, const StateSection& kSection>
class PersistentState : public Persistent {
  public:
    StateSection section() const final { return kSection; }
    std::vector<uint8_t> save() const final {
        return encode_state(device().state(), kSection.version);
    }
    Result<void> restore(std::span<const uint8_t> payload, uint32_t version) final {
        using State = decltype(device().state());
        auto s = decode_state<State>(payload, version, std::string(kSection.name) + " section");
        EMBER_TRY(s);
        static_cast<Device&>(*this).restore(*s);
        return {};
    }

  private:
    friend Device;
    PersistentState() = default;
    const Device& device() const { return static_cast<const Device&>(*this); }
};

}  // namespace ember
