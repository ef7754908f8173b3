#include <gtest/gtest.h>

#include "core/devices/bus.h"

namespace ember {
namespace {

struct Recorder : BusDevice {
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_offset = offset;
        for (auto& b : data) b = 0x5a;
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        last_offset = offset;
        last_len = data.size();
    }
    uint64_t last_offset = ~0ull;
    size_t last_len = 0;
};

TEST(Bus, DispatchesByRangeWithOffsetsRelativeToTheBase) {
    Bus bus;
    Recorder a, b;
    ASSERT_TRUE(bus.insert(a, 0x3f8, 8));
    ASSERT_TRUE(bus.insert(b, 0x60, 5));
    uint8_t v = 1;
    EXPECT_TRUE(bus.write(0x3fd, std::span(&v, 1)));
    EXPECT_EQ(a.last_offset, 5u);
    uint8_t r[2];
    EXPECT_TRUE(bus.read(0x63, r));
    EXPECT_EQ(b.last_offset, 3u);
    EXPECT_EQ(r[0], 0x5a);
}

TEST(Bus, NoDeviceOrAStraddlingAccessIsNotHandled) {
    Bus bus;
    Recorder a;
    ASSERT_TRUE(bus.insert(a, 0x1000, 0x10));
    uint8_t r[4];
    EXPECT_FALSE(bus.read(0x0fff, std::span(r, 1)));
    EXPECT_FALSE(bus.read(0x1010, std::span(r, 1)));
    EXPECT_FALSE(bus.read(0x100e, std::span(r, 4)));  // runs past the device's end
    EXPECT_EQ(a.last_offset, ~0ull);
}

TEST(Bus, RejectsOverlaps) {
    Bus bus;
    Recorder a, b;
    ASSERT_TRUE(bus.insert(a, 0x1000, 0x10));
    EXPECT_FALSE(bus.insert(b, 0x100f, 1));
    EXPECT_FALSE(bus.insert(b, 0xff0, 0x11));
    EXPECT_FALSE(bus.insert(b, 0x2000, 0));
    EXPECT_TRUE(bus.insert(b, 0x1010, 1));
}

}  // namespace
}  // namespace ember
