#include <gtest/gtest.h>

#include "core/devices/serial.h"
#include "tests/unit/fake_irq.h"

namespace ember {
namespace {

class SerialTest : public ::testing::Test {
  protected:
    uint8_t in(uint64_t reg) {
        uint8_t v = 0;
        serial.read(reg, std::span(&v, 1));
        return v;
    }
    void out(uint64_t reg, uint8_t v) { serial.write(reg, std::span(&v, 1)); }
    std::string output() {
        auto all = sink.take_all();
        return std::string(all.begin(), all.end());
    }

    testing::CountingIrq irq;
    OutputBuffer sink{1024, *EventFd::create()};
    Serial serial{irq, sink};
};

TEST_F(SerialTest, TransmitterIsAlwaysReadyAndBytesReachTheOutput) {
    EXPECT_EQ(in(5) & 0x60, 0x60);  // THR empty, transmitter empty
    out(0, 'h');
    out(0, 'i');
    EXPECT_EQ(output(), "hi");
    EXPECT_EQ(irq.count, 0) << "no interrupt while IER is 0";
}

TEST_F(SerialTest, ThrEmptyInterruptIsRaisedAndAcknowledgedByReadingIir) {
    EXPECT_EQ(in(2), 0xc1);  // nothing pending, FIFOs reported
    out(1, 0x02);            // enable THR-empty
    EXPECT_EQ(irq.count, 1);
    EXPECT_EQ(in(2), 0xc2);
    EXPECT_EQ(in(2), 0xc1) << "reading IIR acknowledged it";
    out(0, 'x');
    EXPECT_EQ(irq.count, 2);
    EXPECT_EQ(in(2), 0xc2);
}

TEST_F(SerialTest, ReceivedDataRaisesItsInterruptAndSetsDataReady) {
    out(1, 0x01);
    const uint8_t input[] = {'o', 'k'};
    EXPECT_EQ(serial.enqueue_input(input), 2u);
    EXPECT_GE(irq.count, 1);
    EXPECT_EQ(in(5) & 0x01, 0x01);
    EXPECT_EQ(in(2), 0xc4);
    EXPECT_EQ(in(0), 'o');
    EXPECT_EQ(in(0), 'k');
    EXPECT_EQ(in(5) & 0x01, 0);
    EXPECT_EQ(in(2), 0xc1);
}

TEST_F(SerialTest, ReceiveFifoIsBoundedAndDrainingIsReported) {
    int drained = 0;
    serial.set_rx_drained_callback([&] { ++drained; });
    std::vector<uint8_t> lots(100, 'z');
    EXPECT_EQ(serial.enqueue_input(lots), Serial::kRxFifoSize);
    EXPECT_EQ(serial.rx_space(), 0u);
    EXPECT_EQ(serial.enqueue_input(lots), 0u);
    for (size_t i = 0; i < Serial::kRxFifoSize; ++i) in(0);
    EXPECT_EQ(drained, 1);
    EXPECT_EQ(serial.rx_space(), Serial::kRxFifoSize);
}

TEST_F(SerialTest, DivisorLatchShadowsDataAndIer) {
    out(3, 0x83);  // DLAB on, 8N1
    out(0, 0x01);
    out(1, 0x00);
    EXPECT_EQ(in(0), 0x01);
    out(3, 0x03);
    EXPECT_EQ(output(), "") << "divisor writes are not transmitted";
    EXPECT_EQ(serial.state().divisor_low, 0x01);
    EXPECT_EQ(in(3), 0x03);
    out(7, 0x42);
    EXPECT_EQ(in(7), 0x42);
}

TEST_F(SerialTest, LoopbackEchoesTransmitAndMapsModemLines) {
    out(4, 0x10 | 0x0f);  // loopback with DTR, RTS, OUT1, OUT2
    EXPECT_EQ(in(6), 0xf0);
    out(0, 'L');
    EXPECT_EQ(output(), "") << "loopback bytes do not leave the UART";
    EXPECT_EQ(in(0), 'L');
    out(4, 0x00);
    EXPECT_EQ(in(6), 0xb0);
}

TEST_F(SerialTest, WideAccessesAreIgnored) {
    uint8_t wide[2] = {1, 2};
    serial.write(0, wide);
    EXPECT_EQ(output(), "");
    serial.read(5, wide);
    EXPECT_EQ(wide[0], 0xff);
}

}  // namespace
}  // namespace ember
