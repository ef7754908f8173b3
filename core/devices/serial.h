// An 8250/16550A UART at 0x3f8 (COM1) on IRQ 4, as much as Linux's 8250 driver uses in interrupt
// mode: divisor latch, IER/IIR with received-data and THR-empty interrupts, LCR, MCR with loopback,
// LSR, MSR, scratch. The transmitter is infinitely fast: THR is always empty, bytes go to an
// OutputBuffer. Register accesses come from vCPU threads, input from the VMM thread: one mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "core/base/described.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "core/devices/bus.h"
#include "core/devices/irq.h"
#include "core/devices/output_buffer.h"

namespace ember {

inline constexpr uint64_t kCom1Base = 0x3f8;
inline constexpr uint64_t kCom1Length = 8;
inline constexpr uint32_t kCom1Gsi = 4;

// Everything the guest can observe; enough to rebuild the device.
struct SerialState {
    uint8_t divisor_low = 0x0c;  // 9600 baud, as firmware leaves it
    uint8_t divisor_high = 0;
    uint8_t ier = 0;
    uint8_t lcr = 0x03;  // 8N1
    uint8_t mcr = 0x08;  // OUT2: the PC routes the IRQ only with it set
    uint8_t lsr = 0x60;  // THR empty, transmitter empty
    uint8_t msr = 0xb0;  // DCD, DSR, CTS
    uint8_t scr = 0;
    bool thr_empty_pending = false;
    std::deque<uint8_t> rx;
};

// What the guest did with the port, for Firecracker's "uart" metrics; not part of the state.
struct SerialCounters {
    uint64_t read_count = 0;   // bytes the guest took from the receive FIFO
    uint64_t write_count = 0;  // bytes the guest sent
};

class Serial : public BusDevice, public PersistentState<Serial, state_sections::kSerial> {
  public:
    static constexpr size_t kRxFifoSize = 64;

    Serial(IrqTrigger& irq, OutputBuffer& out) : irq_(irq), out_(out) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // From the VMM thread: queues host input for the guest; returns how many bytes fit.
    size_t enqueue_input(std::span<const uint8_t> bytes);
    size_t rx_space() const;
    // Called (on a vCPU thread) when the guest empties the receive FIFO, so the host can refill it.
    void set_rx_drained_callback(std::function<void()> callback);

    SerialState state() const;
    // PersistentState: the section holds the state.
    void restore(const SerialState& state);
    using PersistentState::restore;
    SerialCounters counters() const;

  private:
    uint8_t read_register(uint64_t offset, bool& drained);
    void write_register(uint64_t offset, uint8_t value);
    uint8_t interrupt_identification();
    void update_interrupt();
    void receive(uint8_t byte);

    IrqTrigger& irq_;
    OutputBuffer& out_;
    std::function<void()> on_rx_drained_;
    mutable std::mutex mutex_;
    SerialState s_;
    SerialCounters counters_;
};

// The section's layout, which the files ember has written fix.
void describe_state(Is<SerialState> auto& s, auto&& v) {
    leaves(v, s.divisor_low, s.divisor_high, s.ier, s.lcr, s.mcr, s.lsr, s.msr, s.scr,
           s.thr_empty_pending);
    v(StateField{.name = "receive FIFO bytes", .max = Serial::kRxFifoSize}, s.rx);
}

}  // namespace ember
