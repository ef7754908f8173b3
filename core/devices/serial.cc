#include "core/devices/serial.h"

namespace ember {
namespace {

enum Register : uint64_t {
    kData = 0,
    kIer = 1,
    kIirFcr = 2,
    kLcr = 3,
    kMcr = 4,
    kLsr = 5,
    kMsr = 6,
    kScr = 7
};

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerMask = 0x0f;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirRxData = 0x04;
// Always report FIFOs enabled: Linux then identifies a 16550A and moves 16 bytes per interrupt.
constexpr uint8_t kIirFifoBits = 0xc0;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;

}  // namespace

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
    if (data.size() != 1) {
        std::fill(data.begin(), data.end(), uint8_t{0xff});
        return;
    }
    bool drained = false;
    {
        std::lock_guard lock(mutex_);
        data[0] = read_register(offset, drained);
    }
    if (drained && on_rx_drained_) on_rx_drained_();
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
    if (data.size() != 1) return;
    std::lock_guard lock(mutex_);
    write_register(offset, data[0]);
}

uint8_t Serial::read_register(uint64_t offset, bool& drained) {
    const bool dlab = s_.lcr & kLcrDlab;
    switch (offset) {
        case kData: {
            if (dlab) return s_.divisor_low;
            if (s_.rx.empty()) return 0;
            uint8_t byte = s_.rx.front();
            s_.rx.pop_front();
            ++counters_.read_count;
            if (s_.rx.empty()) {
                s_.lsr &= ~kLsrDataReady;
                drained = true;
            }
            update_interrupt();
            return byte;
        }
        case kIer: return dlab ? s_.divisor_high : s_.ier;
        case kIirFcr: return interrupt_identification();
        case kLcr: return s_.lcr;
        case kMcr: return s_.mcr;
        case kLsr: {
            uint8_t lsr = s_.lsr;
            s_.lsr &= ~kLsrOverrun;  // error bits clear on read
            return lsr;
        }
        case kMsr:
            if (s_.mcr & kMcrLoop) {
                // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
                uint8_t m = s_.mcr;
                return static_cast<uint8_t>(((m & 0x01) << 5) | ((m & 0x02) << 3) |
                                            ((m & 0x04) << 4) | ((m & 0x08) << 4));
            }
            return s_.msr;
        case kScr: return s_.scr;
    }
    return 0xff;
}

void Serial::write_register(uint64_t offset, uint8_t value) {
    const bool dlab = s_.lcr & kLcrDlab;
    switch (offset) {
        case kData:
            if (dlab) {
                s_.divisor_low = value;
            } else if (s_.mcr & kMcrLoop) {
                receive(value);
            } else {
                out_.push(std::span(&value, 1));
                ++counters_.write_count;
                s_.thr_empty_pending = true;
                update_interrupt();
            }
            break;
        case kIer:
            if (dlab) {
                s_.divisor_high = value;
            } else {
                bool thr_newly_enabled = !(s_.ier & kIerThrEmpty) && (value & kIerThrEmpty);
                s_.ier = value & kIerMask;
                // Enabling the THR-empty interrupt while THR is empty raises it at once.
                if (thr_newly_enabled) s_.thr_empty_pending = true;
                update_interrupt();
            }
            break;
        case kIirFcr:
            if (value & 0x02) {  // clear receive FIFO
                s_.rx.clear();
                s_.lsr &= ~kLsrDataReady;
            }
            break;
        case kLcr: s_.lcr = value; break;
        case kMcr: s_.mcr = value & 0x1f; break;
        case kScr: s_.scr = value; break;
        default: break;  // LSR and MSR are read-only
    }
}

uint8_t Serial::interrupt_identification() {
    uint8_t iir = kIirNone;
    if ((s_.ier & kIerRxData) && !s_.rx.empty()) {
        iir = kIirRxData;
    } else if ((s_.ier & kIerThrEmpty) && s_.thr_empty_pending) {
        iir = kIirThrEmpty;
        // Reading IIR with THR-empty as its reason acknowledges it.
        s_.thr_empty_pending = false;
    }
    return iir | kIirFifoBits;
}

void Serial::update_interrupt() {
    bool rx = (s_.ier & kIerRxData) && !s_.rx.empty();
    bool thr = (s_.ier & kIerThrEmpty) && s_.thr_empty_pending;
    if (rx || thr) irq_.trigger();
}

void Serial::receive(uint8_t byte) {
    if (s_.rx.size() >= kRxFifoSize) {
        s_.lsr |= kLsrOverrun;
        return;
    }
    s_.rx.push_back(byte);
    s_.lsr |= kLsrDataReady;
    update_interrupt();
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    size_t n = std::min(bytes.size(), kRxFifoSize - s_.rx.size());
    for (size_t i = 0; i < n; ++i) receive(bytes[i]);
    return n;
}

size_t Serial::rx_space() const {
    std::lock_guard lock(mutex_);
    return kRxFifoSize - s_.rx.size();
}

void Serial::set_rx_drained_callback(std::function<void()> callback) {
    std::lock_guard lock(mutex_);
    on_rx_drained_ = std::move(callback);
}

void Serial::restore(const SerialState& state) {
    std::lock_guard lock(mutex_);
    s_ = state;
}

SerialState Serial::state() const {
    std::lock_guard lock(mutex_);
    return s_;
}

SerialCounters Serial::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

}  // namespace ember
