#include <gtest/gtest.h>

#include <vector>

#include "core/devices/i8042.h"
#include "tests/unit/fake_irq.h"

namespace ember {
namespace {

class I8042Test : public ::testing::Test {
  protected:
    uint8_t in(uint64_t port) {
        uint8_t v = 0;
        dev.read(port - kI8042Base, std::span(&v, 1));
        return v;
    }
    void out(uint64_t port, uint8_t v) { dev.write(port - kI8042Base, std::span(&v, 1)); }
    std::vector<uint8_t> drain() {
        std::vector<uint8_t> bytes;
        while (in(0x64) & 0x01) bytes.push_back(in(0x60));
        return bytes;
    }

    testing::CountingIrq irq;
    int resets = 0;
    I8042 dev{irq, [this] { ++resets; }};
};

TEST_F(I8042Test, ControllerSelfTestsPass) {
    EXPECT_EQ(in(0x64) & 0x01, 0);
    out(0x64, 0xaa);
    EXPECT_EQ(in(0x64) & 0x01, 0x01);
    EXPECT_EQ(in(0x60), 0x55);
    out(0x64, 0xab);
    EXPECT_EQ(drain(), std::vector<uint8_t>{0x00});
}

TEST_F(I8042Test, CommandByteReadsBackWhatWasWritten) {
    out(0x64, 0x20);
    EXPECT_EQ(drain(), std::vector<uint8_t>{0x45});
    out(0x64, 0x60);
    out(0x60, 0x47);
    out(0x64, 0x20);
    EXPECT_EQ(drain(), std::vector<uint8_t>{0x47});
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, KeyboardIdentifiesAsMf2AndInterruptsPerByte) {
    out(0x60, 0xf2);
    EXPECT_EQ(irq.count, 1);
    EXPECT_EQ(in(0x60), 0xfa);
    EXPECT_EQ(irq.count, 2) << "next byte raises the next edge";
    EXPECT_EQ(drain(), (std::vector<uint8_t>{0xab, 0x83}));
    out(0x60, 0xff);
    EXPECT_EQ(drain(), (std::vector<uint8_t>{0xfa, 0xaa}));
    out(0x60, 0xed);  // set LEDs: ack, then ack the argument
    out(0x60, 0x07);
    EXPECT_EQ(drain(), (std::vector<uint8_t>{0xfa, 0xfa}));
}

TEST_F(I8042Test, NoInterruptWhenTheCommandByteDisablesIt) {
    out(0x64, 0x60);
    out(0x60, 0x44);
    int before = irq.count;
    out(0x64, 0xaa);
    EXPECT_EQ(irq.count, before);
    EXPECT_EQ(in(0x60), 0x55) << "polling still works";
}

TEST_F(I8042Test, ResetLineEndsTheVm) {
    out(0x64, 0xfe);
    EXPECT_EQ(resets, 1);
    out(0x64, 0xd1);  // write output port with the reset bit cleared
    out(0x60, 0x00);
    EXPECT_EQ(resets, 2);
    out(0x64, 0xd1);
    out(0x60, 0x01);
    EXPECT_EQ(resets, 2);
}

TEST_F(I8042Test, CtrlAltDelUsesTheScancodeSetTheGuestReads) {
    ASSERT_TRUE(dev.send_ctrl_alt_del());
    EXPECT_EQ(drain(), (std::vector<uint8_t>{0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d}));
    out(0x64, 0x60);
    out(0x60, 0x05);  // translation off: raw set 2
    ASSERT_TRUE(dev.send_ctrl_alt_del());
    EXPECT_EQ(drain(), (std::vector<uint8_t>{0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11,
                                             0xf0, 0x14}));
}

TEST_F(I8042Test, CtrlAltDelFailsClearlyWhenTheGuestIsNotReading) {
    // Two 8-byte set-1 sequences fill the 16-byte buffer; the third has no room.
    ASSERT_TRUE(dev.send_ctrl_alt_del());
    ASSERT_TRUE(dev.send_ctrl_alt_del());
    auto third = dev.send_ctrl_alt_del();
    ASSERT_FALSE(third);
    EXPECT_NE(third.error().message.find("not reading"), std::string::npos);
    EXPECT_EQ(drain().size(), 16u) << "nothing of the refused sequence was queued";
}

}  // namespace
}  // namespace ember
