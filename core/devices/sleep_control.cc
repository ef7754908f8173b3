#include "core/devices/sleep_control.h"

#include <algorithm>

namespace ember {
namespace {

constexpr uint8_t kSleepTypeShift = 2;
constexpr uint8_t kSleepTypeMask = 0x07;
constexpr uint8_t kSleepEnable = 0x20;

}  // namespace

void SleepControl::read(uint64_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0});
}

void SleepControl::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.size() != 1) return;  // the status register and wider writes: ignored
    const uint8_t value = data[0];
    // Other sleep states are not offered (the DSDT names only \_S5), so a write of another type is
    // a guest's mistake: ignored, as a hardware register would.
    if ((value & kSleepEnable) && ((value >> kSleepTypeShift) & kSleepTypeMask) == power_off_type_)
        on_power_off_();
}

}  // namespace ember
