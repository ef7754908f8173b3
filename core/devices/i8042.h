// The PS/2 controller at ports 0x60/0x64, with a keyboard behind it, enough for Linux's i8042 and
// atkbd drivers to bind: status, command byte, self-tests, output port, keyboard reset/ID/LEDs,
// IRQ 1. Its reset line (command 0xFE, or the output port's bit 0) is how the guest reboots:
// with `reboot=k` that is also how a panicking Linux ends the VM.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

#include "core/base/described.h"
#include "core/base/error.h"
#include "core/base/persistent.h"
#include "core/base/state_codec.h"
#include "core/devices/bus.h"
#include "core/devices/irq.h"

namespace ember {

inline constexpr uint64_t kI8042Base = 0x60;
inline constexpr uint64_t kI8042Length = 5;  // 0x60 data .. 0x64 status/command
inline constexpr uint32_t kKeyboardGsi = 1;

struct I8042State {
    uint8_t command_byte = 0x45;       // keyboard interrupt, system flag, scancode translation
    uint8_t output_port = 0x01;        // reset line deasserted
    uint8_t pending_command = 0;       // controller command waiting for its data byte
    uint8_t pending_keyboard_cmd = 0;  // keyboard command waiting for its argument
    bool last_write_was_command = false;
    bool keyboard_enabled = true;
    std::deque<uint8_t> output;
};

// What the guest did with the controller, for Firecracker's "i8042" metrics; not part of the state.
struct I8042Counters {
    uint64_t read_count = 0;          // bytes the guest took from the data port
    uint64_t write_count = 0;         // bytes the guest wrote to either port
    uint64_t reset_count = 0;         // times the guest pulsed the reset line
    uint64_t missed_write_count = 0;  // bytes for the guest lost to a full output buffer
};

class I8042 : public BusDevice, public PersistentState<I8042, state_sections::kI8042> {
  public:
    static constexpr size_t kOutputCapacity = 16;

    I8042(IrqTrigger& irq, std::function<void()> on_reset)
        : irq_(irq), on_reset_(std::move(on_reset)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Presses and releases Ctrl-Alt-Del (for the API's SendCtrlAltDel). Any thread.
    Result<void> send_ctrl_alt_del();

    I8042State state() const;
    // PersistentState: the section holds the state.
    void restore(const I8042State& state);
    using PersistentState::restore;
    I8042Counters counters() const;

  private:
    void controller_command(uint8_t command, bool& reset);
    void data_write(uint8_t value, bool& reset);
    void keyboard_command(uint8_t value);
    void push(std::initializer_list<uint8_t> bytes);
    uint8_t status() const;

    IrqTrigger& irq_;
    std::function<void()> on_reset_;
    mutable std::mutex mutex_;
    I8042State s_;
    I8042Counters counters_;
};

// The section's layout, which the files ember has written fix.
void describe_state(Is<I8042State> auto& s, auto&& v) {
    leaves(v, s.command_byte, s.output_port, s.pending_command, s.pending_keyboard_cmd,
           s.last_write_was_command, s.keyboard_enabled);
    v(StateField{.name = "output bytes", .max = I8042::kOutputCapacity}, s.output);
}

}  // namespace ember
