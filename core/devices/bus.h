// core/devices: the legacy devices (8250 UART, i8042, boot timer) and the address bus that routes
// a vCPU's PIO or MMIO exit to the device owning that range. A bus is filled before the vCPUs
// start and never changes after, so lookups take no lock; each device guards its own state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/error.h"

namespace ember {

class BusDevice {
  public:
    virtual ~BusDevice() = default;
    // `offset` is relative to the base the device was inserted at. Called on vCPU threads.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
  public:
    // Non-owning: the device must outlive the bus's users (the vCPU threads).
    Result<void> insert(BusDevice& device, uint64_t base, uint64_t length);

    // False when no device owns every byte of the access.
    bool read(uint64_t addr, std::span<uint8_t> data) const;
    bool write(uint64_t addr, std::span<const uint8_t> data) const;

  private:
    struct Range {
        uint64_t base;
        uint64_t length;
        BusDevice* device;
    };
    const Range* find(uint64_t addr, uint64_t length) const;
    std::vector<Range> ranges_;  // sorted by base, non-overlapping
};

}  // namespace ember
