#include "core/json/document.h"

#include <charconv>
#include <limits>

namespace ember::json {

const Value* Object::find(std::string_view key) const {
    for (const auto& m : members)
        if (m.key == key) return &m.value;
    return nullptr;
}

const std::string* Object::find_string(std::string_view key) const {
    const Value* v = find(key);
    return v ? v->string() : nullptr;
}

const Array* Object::find_array(std::string_view key) const {
    const Value* v = find(key);
    return v ? v->array() : nullptr;
}

const Object* Object::find_object(std::string_view key) const {
    const Value* v = find(key);
    return v ? v->object() : nullptr;
}

std::optional<uint64_t> Object::find_u64(std::string_view key) const {
    const Value* v = find(key);
    return v ? v->u64() : std::nullopt;
}

Type Value::type() const {
    switch (v_.index()) {
        case 0: return Type::Null;
        case 1: return Type::Boolean;
        case 2:
        case 3: return Type::Integer;
        case 4: return Type::Number;
        case 5: return Type::String;
        case 6: return Type::Array;
        default: return Type::Object;
    }
}

std::optional<uint64_t> Value::u64() const {
    if (const auto* u = std::get_if<uint64_t>(&v_)) return *u;
    if (const auto* i = std::get_if<int64_t>(&v_); i && *i >= 0) return static_cast<uint64_t>(*i);
    return std::nullopt;
}

bool Value::is_negative_integer() const {
    const auto* i = std::get_if<int64_t>(&v_);
    return i && *i < 0;
}

std::optional<bool> Value::boolean() const {
    if (const auto* b = std::get_if<bool>(&v_)) return *b;
    return std::nullopt;
}

const char* type_name(Type type) {
    switch (type) {
        case Type::Null: return "null";
        case Type::Boolean: return "a boolean";
        case Type::Integer: return "an integer";
        case Type::Number: return "a number";
        case Type::String: return "a string";
        case Type::Array: return "an array";
        case Type::Object: return "an object";
    }
    return "a value";
}

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

// Recursive descent over the text, one byte at a time; every loop moves forward, and nesting stops
// at kMaxDepth.
class Reader {
  public:
    Reader(std::string_view text, size_t max_tree_bytes) : s_(text), budget_(max_tree_bytes) {}

    Result<Value> document() {
        skip_space();
        auto v = value(0);
        EMBER_TRY(v);
        skip_space();
        if (i_ != s_.size()) return error("more text after the value");
        return v;
    }

  private:
    std::unexpected<Error> error(std::string_view what) const {
        return std::unexpected(
            Error{"invalid JSON: " + std::string(what) + " at byte " + std::to_string(i_)});
    }

    bool at_end() const { return i_ >= s_.size(); }

    // Counts `bytes` against the tree's budget.
    Result<void> take(size_t bytes) {
        if (bytes > budget_)
            return error("values taking more than " + std::to_string(taken_ + budget_) + " bytes");
        budget_ -= bytes;
        taken_ += bytes;
        return {};
    }
    char peek() const { return s_[i_]; }

    void skip_space() {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++i_;
    }

    Result<Value> value(size_t depth) {
        if (at_end()) return error("the text ends where a value should be");
        EMBER_TRY(take(sizeof(Value)));
        switch (peek()) {
            case '{': return object(depth + 1);
            case '[': return array(depth + 1);
            case '"': {
                auto s = string();
                EMBER_TRY(s);
                return Value(std::move(*s));
            }
            case 't': return word("true", Value(true));
            case 'f': return word("false", Value(false));
            case 'n': return word("null", Value());
            default: return number();
        }
    }

    Result<Value> word(std::string_view w, Value v) {
        if (s_.substr(i_, w.size()) != w) return error("not a JSON value");
        i_ += w.size();
        return v;
    }

    // Past the opening bracket: whether `close` follows at once (taken).
    bool opened_empty(char close) {
        ++i_;
        skip_space();
        if (at_end() || peek() != close) return false;
        ++i_;
        return true;
    }

    // After an entry: true at `close` (taken), false after a ',' and the space after it.
    Result<bool> closed(char close, std::string_view expected) {
        skip_space();
        if (!at_end() && peek() == close) {
            ++i_;
            return true;
        }
        if (at_end() || peek() != ',') return error(expected);
        ++i_;
        skip_space();
        return false;
    }

    Result<Value> object(size_t depth) {
        if (depth > kMaxDepth) return error("nested too deep");
        Object o;
        if (opened_empty('}')) return Value(std::move(o));
        while (true) {
            if (at_end() || peek() != '"') return error("expected a key");
            auto key = string();
            EMBER_TRY(key);
            EMBER_TRY(take(sizeof(Member) - sizeof(Value)));
            skip_space();
            if (at_end() || peek() != ':') return error("expected ':'");
            ++i_;
            skip_space();
            auto v = value(depth);
            EMBER_TRY(v);
            o.members.push_back({std::move(*key), std::move(*v)});
            auto end = closed('}', "expected ',' or '}'");
            EMBER_TRY(end);
            if (*end) return Value(std::move(o));
        }
    }

    Result<Value> array(size_t depth) {
        if (depth > kMaxDepth) return error("nested too deep");
        Array a;
        if (opened_empty(']')) return Value(std::move(a));
        while (true) {
            auto v = value(depth);
            EMBER_TRY(v);
            a.push_back(std::move(*v));
            auto end = closed(']', "expected ',' or ']'");
            EMBER_TRY(end);
            if (*end) return Value(std::move(a));
        }
    }

    // Four hex digits after "\u".
    std::optional<uint32_t> hex4() {
        if (s_.size() - i_ < 4) return std::nullopt;
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k) {
            const int d = hex_digit(s_[i_ + static_cast<size_t>(k)]);
            if (d < 0) return std::nullopt;
            v = v << 4 | static_cast<uint32_t>(d);
        }
        i_ += 4;
        return v;
    }

    Result<void> escape(std::string& out) {
        ++i_;  // the backslash
        if (at_end()) return error("the text ends inside a string");
        const char c = peek();
        ++i_;
        switch (c) {
            case '"': out.push_back('"'); return {};
            case '\\': out.push_back('\\'); return {};
            case '/': out.push_back('/'); return {};
            case 'b': out.push_back('\b'); return {};
            case 'f': out.push_back('\f'); return {};
            case 'n': out.push_back('\n'); return {};
            case 'r': out.push_back('\r'); return {};
            case 't': out.push_back('\t'); return {};
            case 'u': break;
            default: return error("an unknown escape");
        }
        auto cp = hex4();
        if (!cp) return error("\\u without four hex digits");
        if (*cp >= 0xdc00 && *cp <= 0xdfff) return error("a low surrogate without a high one");
        if (*cp >= 0xd800 && *cp <= 0xdbff) {
            if (s_.substr(i_, 2) != "\\u") return error("a high surrogate without a low one");
            i_ += 2;
            auto low = hex4();
            if (!low || *low < 0xdc00 || *low > 0xdfff)
                return error("a high surrogate without a low one");
            *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
        }
        append_utf8(out, *cp);
        return {};
    }

    // One UTF-8 sequence of two to four bytes, checked as RFC 3629 has it: no overlong form, no
    // surrogate, nothing past U+10FFFF.
    Result<void> multibyte(std::string& out) {
        const auto lead = static_cast<unsigned char>(peek());
        size_t n = 0;
        unsigned char low = 0x80, high = 0xbf;  // the second byte's range
        if (lead >= 0xc2 && lead <= 0xdf) {
            n = 2;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            n = 3;
            if (lead == 0xe0) low = 0xa0;
            if (lead == 0xed) high = 0x9f;
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            n = 4;
            if (lead == 0xf0) low = 0x90;
            if (lead == 0xf4) high = 0x8f;
        } else {
            return error("not UTF-8");
        }
        if (s_.size() - i_ < n) return error("not UTF-8");
        for (size_t k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s_[i_ + k]);
            const bool ok = k == 1 ? b >= low && b <= high : b >= 0x80 && b <= 0xbf;
            if (!ok) return error("not UTF-8");
        }
        out.append(s_.substr(i_, n));
        i_ += n;
        return {};
    }

    Result<std::string> string() {
        ++i_;  // the opening quote
        std::string out;
        while (true) {
            if (at_end()) return error("the text ends inside a string");
            const auto c = static_cast<unsigned char>(peek());
            if (c == '"') {
                ++i_;
                EMBER_TRY(take(out.size()));
                return out;
            }
            if (c == '\\') {
                EMBER_TRY(escape(out));
            } else if (c < 0x20) {
                return error("a control character inside a string");
            } else if (c < 0x80) {
                // A run of plain characters at once.
                const size_t start = i_;
                while (!at_end()) {
                    const auto d = static_cast<unsigned char>(peek());
                    if (d == '"' || d == '\\' || d < 0x20 || d >= 0x80) break;
                    ++i_;
                }
                out.append(s_.substr(start, i_ - start));
            } else {
                EMBER_TRY(multibyte(out));
            }
        }
    }

    // RFC 8259's number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    Result<Value> number() {
        const size_t start = i_;
        const bool negative = peek() == '-';
        if (negative) ++i_;
        if (at_end() || !is_digit(peek())) {
            i_ = start;
            return error("not a JSON value");
        }
        if (peek() == '0') {
            ++i_;
        } else {
            while (!at_end() && is_digit(peek())) ++i_;
        }
        const size_t integer_end = i_;
        bool whole = true;
        if (!at_end() && peek() == '.') {
            whole = false;
            ++i_;
            if (at_end() || !is_digit(peek())) return error("a malformed number");
            while (!at_end() && is_digit(peek())) ++i_;
        }
        if (!at_end() && (peek() == 'e' || peek() == 'E')) {
            whole = false;
            ++i_;
            if (!at_end() && (peek() == '+' || peek() == '-')) ++i_;
            if (at_end() || !is_digit(peek())) return error("a malformed number");
            while (!at_end() && is_digit(peek())) ++i_;
        }
        // A digit straight after "0" ("01"), as simdjson refuses it.
        if (!at_end() && is_digit(peek())) return error("a malformed number");
        if (whole) return integer(start, integer_end, negative);
        return real(start);
    }

    Result<Value> integer(size_t start, size_t end, bool negative) {
        uint64_t magnitude = 0;
        for (size_t k = start + (negative ? 1 : 0); k < end; ++k) {
            const auto d = static_cast<uint64_t>(s_[k] - '0');
            if (magnitude > (std::numeric_limits<uint64_t>::max() - d) / 10) {
                i_ = start;
                return error("an integer out of range");
            }
            magnitude = magnitude * 10 + d;
        }
        constexpr auto kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
        if (!negative) {
            if (magnitude <= kMaxInt64) return Value(static_cast<int64_t>(magnitude));
            return Value(magnitude);
        }
        if (magnitude > kMaxInt64 + 1) {
            i_ = start;
            return error("an integer out of range");
        }
        return Value(magnitude == kMaxInt64 + 1 ? std::numeric_limits<int64_t>::min()
                                                : -static_cast<int64_t>(magnitude));
    }

    // A number with a fraction or an exponent. One too small for a double is zero; one too large
    // is refused, as simdjson refuses it.
    Result<Value> real(size_t start) {
        double d = 0;
        const char* first = s_.data() + start;
        const char* last = s_.data() + i_;
        const auto [end, ec] = std::from_chars(first, last, d);
        if (ec == std::errc::result_out_of_range) {
            if (!too_large(start)) return Value(0.0);
            i_ = start;
            return error("a number out of range");
        }
        if (ec != std::errc() || end != last) {
            i_ = start;
            return error("a malformed number");
        }
        return Value(d);
    }

    // Whether the number at `start`, out of a double's range, is so by being large rather than
    // small: its first significant digit's power of ten is not negative.
    bool too_large(size_t start) const {
        long long power = 0;
        size_t k = start;
        if (s_[k] == '-') ++k;
        bool significant = false;
        for (; k < i_ && is_digit(s_[k]); ++k) {
            if (s_[k] != '0') significant = true;
            if (significant) ++power;
        }
        if (k < i_ && s_[k] == '.') {
            for (++k; k < i_ && is_digit(s_[k]); ++k) {
                if (significant) continue;
                --power;
                if (s_[k] != '0') significant = true;
            }
        }
        // `power` is now one more than the power of ten of the first significant digit, when
        // the integer part has one; the exponent moves it.
        long long exponent = 0;
        if (k < i_ && (s_[k] == 'e' || s_[k] == 'E')) {
            ++k;
            const bool minus = s_[k] == '-';
            if (s_[k] == '-' || s_[k] == '+') ++k;
            for (; k < i_; ++k) exponent = std::min(exponent * 10 + (s_[k] - '0'), 1LL << 40);
            if (minus) exponent = -exponent;
        }
        return power + exponent > 0;
    }

    std::string_view s_;
    size_t i_ = 0;
    size_t budget_;
    size_t taken_ = 0;
};

}  // namespace

Result<Value> parse(std::string_view text, size_t max_tree_bytes) {
    return Reader(text, max_tree_bytes).document();
}

}  // namespace ember::json
