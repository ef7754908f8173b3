#include "core/devices/i8042.h"

namespace ember {
namespace {

constexpr uint64_t kDataPort = 0;    // 0x60
constexpr uint64_t kStatusPort = 4;  // 0x64

constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystem = 0x04;
constexpr uint8_t kStatusCommand = 0x08;
constexpr uint8_t kStatusNotInhibited = 0x10;

constexpr uint8_t kCbKeyboardInterrupt = 0x01;
constexpr uint8_t kCbSystem = 0x04;
constexpr uint8_t kCbKeyboardDisabled = 0x10;
constexpr uint8_t kCbTranslate = 0x40;

constexpr uint8_t kAck = 0xfa;

}  // namespace

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), uint8_t{0xff});
    if (data.size() != 1) return;
    std::lock_guard lock(mutex_);
    if (offset == kStatusPort) {
        data[0] = status();
    } else if (offset == kDataPort) {
        if (s_.output.empty()) {
            data[0] = 0;
            return;
        }
        data[0] = s_.output.front();
        s_.output.pop_front();
        ++counters_.read_count;
        // One byte per interrupt: raise the next edge only after the guest took this one.
        if (!s_.output.empty() && (s_.command_byte & kCbKeyboardInterrupt)) irq_.trigger();
    }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() != 1) return;
    bool reset = false;
    {
        std::lock_guard lock(mutex_);
        ++counters_.write_count;
        if (offset == kStatusPort) {
            s_.last_write_was_command = true;
            controller_command(data[0], reset);
        } else if (offset == kDataPort) {
            s_.last_write_was_command = false;
            data_write(data[0], reset);
        }
        if (reset) ++counters_.reset_count;
    }
    if (reset) on_reset_();
}

uint8_t I8042::status() const {
    uint8_t st = kStatusNotInhibited;
    if (!s_.output.empty()) st |= kStatusOutputFull;
    if (s_.command_byte & kCbSystem) st |= kStatusSystem;
    if (s_.last_write_was_command) st |= kStatusCommand;
    return st;
}

void I8042::controller_command(uint8_t command, bool& reset) {
    switch (command) {
        case 0x20: push({s_.command_byte}); break;  // read command byte
        case 0x60:
        case 0xd1:
        case 0xd2: s_.pending_command = command; break;  // take a data byte
        case 0xa7: s_.command_byte |= 0x20; break;       // disable aux
        case 0xa8: s_.command_byte &= ~0x20; break;      // enable aux
        case 0xaa: push({0x55}); break;                  // controller self-test passed
        case 0xab: push({0x00}); break;                  // keyboard interface test passed
        case 0xad: s_.command_byte |= kCbKeyboardDisabled; break;
        case 0xae: s_.command_byte &= ~kCbKeyboardDisabled; break;
        case 0xd0: push({s_.output_port}); break;  // read output port
        default:
            // 0xf0-0xff pulse output lines for 6 us; a cleared bit 0 pulses the reset line.
            if (command >= 0xf0 && !(command & 0x01)) reset = true;
            break;
    }
}

void I8042::data_write(uint8_t value, bool& reset) {
    uint8_t command = s_.pending_command;
    s_.pending_command = 0;
    switch (command) {
        case 0x60: s_.command_byte = value; return;
        case 0xd1:
            s_.output_port = value;
            if (!(value & 0x01)) reset = true;
            return;
        case 0xd2: push({value}); return;
        default: keyboard_command(value); return;
    }
}

void I8042::keyboard_command(uint8_t value) {
    if (s_.pending_keyboard_cmd != 0) {
        uint8_t command = s_.pending_keyboard_cmd;
        s_.pending_keyboard_cmd = 0;
        if (command == 0xf0 && value == 0)
            push({kAck, 0x02});  // query: scancode set 2
        else
            push({kAck});
        return;
    }
    switch (value) {
        case 0xed:
        case 0xf3:
        case 0xf0:  // LEDs, typematic rate, scancode set: argument follows
            s_.pending_keyboard_cmd = value;
            push({kAck});
            break;
        case 0xee: push({0xee}); break;              // echo
        case 0xf2: push({kAck, 0xab, 0x83}); break;  // identify: MF2 keyboard
        case 0xf4:
            s_.keyboard_enabled = true;
            push({kAck});
            break;
        case 0xf5:
            s_.keyboard_enabled = false;
            push({kAck});
            break;
        case 0xff:
            s_.keyboard_enabled = true;
            push({kAck, 0xaa});
            break;  // reset, self-test passed
        default: push({kAck}); break;
    }
}

void I8042::push(std::initializer_list<uint8_t> bytes) {
    bool was_empty = s_.output.empty();
    for (uint8_t b : bytes) {
        if (s_.output.size() >= kOutputCapacity) {
            ++counters_.missed_write_count;
            continue;
        }
        s_.output.push_back(b);
    }
    if (was_empty && !s_.output.empty() && (s_.command_byte & kCbKeyboardInterrupt)) irq_.trigger();
}

Result<void> I8042::send_ctrl_alt_del() {
    std::lock_guard lock(mutex_);
    // With translation on, the guest reads set 1; without it, the keyboard's own set 2.
    const bool translated = s_.command_byte & kCbTranslate;
    const size_t needed = translated ? 8 : 11;
    if (s_.output.size() + needed > kOutputCapacity)
        return fail("keyboard buffer is full: the guest is not reading its keyboard");
    if (translated)
        push({0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d});
    else
        push({0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71, 0xf0, 0x11, 0xf0, 0x14});
    return {};
}

void I8042::restore(const I8042State& state) {
    std::lock_guard lock(mutex_);
    s_ = state;
}

I8042State I8042::state() const {
    std::lock_guard lock(mutex_);
    return s_;
}

I8042Counters I8042::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

}  // namespace ember
