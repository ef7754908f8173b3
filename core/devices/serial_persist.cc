#include "core/devices/serial_persist.h"

#include "core/base/bytes.h"

namespace ember {

std::vector<uint8_t> encode(const SerialState& s) {
    ByteWriter w;
    for (uint8_t b : {s.divisor_low, s.divisor_high, s.ier, s.lcr, s.mcr, s.lsr, s.msr, s.scr})
        w.put(b);
    w.put<uint8_t>(s.thr_empty_pending);
    w.put_bytes(std::vector<uint8_t>(s.rx.begin(), s.rx.end()));
    return w.bytes();
}

Result<SerialState> decode_serial(std::span<const uint8_t> payload) {
    ByteReader r(payload, "serial section");
    SerialState s;
    for (uint8_t* b :
         {&s.divisor_low, &s.divisor_high, &s.ier, &s.lcr, &s.mcr, &s.lsr, &s.msr, &s.scr})
        EMBER_TRY(read_into(r, *b));
    EMBER_TRY(read_into(r, s.thr_empty_pending));
    auto rx = r.get_bytes();
    EMBER_TRY(rx);
    if (rx->size() > Serial::kRxFifoSize) return fail("serial section: receive FIFO too long");
    s.rx.assign(rx->begin(), rx->end());
    if (!r.done()) return fail("serial section has trailing bytes");
    return s;
}

StateSection Serial::section() const {
    return kSerialSection;
}

std::vector<uint8_t> Serial::save() const {
    return encode(state());
}

// Every version so far is 1.
Result<void> Serial::restore(std::span<const uint8_t> payload, uint32_t /*version*/) {
    auto s = decode_serial(payload);
    EMBER_TRY(s);
    restore(*s);
    return {};
}

}  // namespace ember
