#include "core/config/cpu_template.h"

#include <charconv>

namespace ember {

Result<BitmapModifier> parse_bitmap(std::string_view text, unsigned bits,
                                    const std::string& where) {
    const auto bad = [&](const std::string& why) {
        return fail(where + ": " + why + " (a bitmap is \"0b\" and at most " +
                    std::to_string(bits) + " of 0, 1 and x, as in \"0bxxxx0001\")");
    };
    if (!text.starts_with("0b")) {
        std::string why = "\"";
        why.append(text.substr(0, 40)).append("\" does not begin with 0b");
        return bad(why);
    }
    text.remove_prefix(2);
    BitmapModifier m;
    unsigned count = 0;
    for (auto it = text.rbegin(); it != text.rend(); ++it) {
        const char c = *it;
        if (c == '_') continue;
        if (c != '0' && c != '1' && c != 'x') {
            std::string why = "'";
            why.append(1, c).append("' is not 0, 1 or x");
            return bad(why);
        }
        if (count == bits) return bad("more than " + std::to_string(bits) + " bits");
        const uint64_t bit = uint64_t{1} << count++;
        if (c == 'x') continue;
        m.mask |= bit;
        if (c == '1') m.value |= bit;
    }
    if (count == 0) return bad("no bits");
    return m;
}

Result<uint64_t> parse_template_integer(std::string_view text, uint64_t max,
                                        const std::string& where) {
    int base = 10;
    std::string_view digits = text;
    if (text.starts_with("0x") || text.starts_with("0X")) {
        base = 16;
        digits.remove_prefix(2);
    } else if (text.starts_with("0b")) {
        base = 2;
        digits.remove_prefix(2);
    }
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || v > max) {
        std::string why = where;
        why.append(": \"").append(text.substr(0, 40)).append("\" is not an integer of at most ");
        return fail(why + std::to_string(max));
    }
    return v;
}

std::string_view name_of(CpuidRegister reg) {
    switch (reg) {
        case CpuidRegister::Eax: return "eax";
        case CpuidRegister::Ebx: return "ebx";
        case CpuidRegister::Ecx: return "ecx";
        case CpuidRegister::Edx: return "edx";
    }
    return "?";
}

}  // namespace ember
