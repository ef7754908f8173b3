// ACPI's hardware-reduced sleep registers (ACPI 6.5, 4.8.3.7): the guest powers off by writing
// SLP_TYP 5 (its \_S5) with SLP_EN to the control register. The status register reads 0: no wake
// event is ever pending, and a guest that polls it after entering S5 is gone by then.
#pragma once

#include <cstdint>
#include <functional>

#include "core/devices/bus.h"

namespace ember {

inline constexpr uint64_t kSleepRegistersLength = 2;  // control, then status

class SleepControl : public BusDevice {
  public:
    // `power_off_type` is the SLP_TYP the DSDT's \_S5 names.
    SleepControl(uint8_t power_off_type, std::function<void()> on_power_off)
        : power_off_type_(power_off_type), on_power_off_(std::move(on_power_off)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    uint8_t power_off_type_;
    std::function<void()> on_power_off_;
};

}  // namespace ember
