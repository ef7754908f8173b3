#include <gtest/gtest.h>

#include "core/devices/sleep_control.h"

namespace ember {
namespace {

struct PowerOff {
    int count = 0;
    SleepControl device{5, [this] { ++count; }};
    void write(uint64_t offset, uint8_t value) { device.write(offset, std::span(&value, 1)); }
};

TEST(SleepControl, SleepTypeFiveWithEnablePowersOff) {
    PowerOff p;
    p.write(0, (5 << 2) | 0x20);  // what Linux's acpi_hw_extended_sleep writes for S5
    EXPECT_EQ(p.count, 1);
}

TEST(SleepControl, AnythingElseIsIgnored) {
    PowerOff p;
    p.write(0, 5 << 2);           // the type without SLP_EN
    p.write(0, (3 << 2) | 0x20);  // S3, which the DSDT does not offer
    p.write(1, (5 << 2) | 0x20);  // the status register
    uint8_t wide[2] = {(5 << 2) | 0x20, 0};
    p.device.write(0, wide);  // a word write
    EXPECT_EQ(p.count, 0);
}

TEST(SleepControl, StatusReadsZero) {
    PowerOff p;
    uint8_t status = 0xff;
    p.device.read(1, std::span(&status, 1));
    EXPECT_EQ(status, 0);
}

}  // namespace
}  // namespace ember
