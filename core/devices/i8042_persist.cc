#include "core/devices/i8042_persist.h"

#include "core/base/bytes.h"

namespace ember {

std::vector<uint8_t> encode(const I8042State& s) {
    ByteWriter w;
    for (uint8_t b : {s.command_byte, s.output_port, s.pending_command, s.pending_keyboard_cmd})
        w.put(b);
    w.put<uint8_t>(s.last_write_was_command);
    w.put<uint8_t>(s.keyboard_enabled);
    w.put_bytes(std::vector<uint8_t>(s.output.begin(), s.output.end()));
    return w.bytes();
}

Result<I8042State> decode_i8042(std::span<const uint8_t> payload) {
    ByteReader r(payload, "i8042 section");
    I8042State s;
    for (uint8_t* b :
         {&s.command_byte, &s.output_port, &s.pending_command, &s.pending_keyboard_cmd})
        EMBER_TRY(read_into(r, *b));
    EMBER_TRY(read_into(r, s.last_write_was_command));
    EMBER_TRY(read_into(r, s.keyboard_enabled));
    auto out = r.get_bytes();
    EMBER_TRY(out);
    if (out->size() > I8042::kOutputCapacity) return fail("i8042 section: output buffer too long");
    s.output.assign(out->begin(), out->end());
    if (!r.done()) return fail("i8042 section has trailing bytes");
    return s;
}

StateSection I8042::section() const {
    return kI8042Section;
}

std::vector<uint8_t> I8042::save() const {
    return encode(state());
}

// Every version so far is 1.
Result<void> I8042::restore(std::span<const uint8_t> payload, uint32_t /*version*/) {
    auto s = decode_i8042(payload);
    EMBER_TRY(s);
    restore(*s);
    return {};
}

}  // namespace ember
