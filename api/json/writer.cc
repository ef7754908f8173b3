#include "api/json/writer.h"

#include <cstdio>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/config/config_fields.h"

namespace ember::json {
namespace {

template <config::Described T>
void write_struct(std::string& out, const T& s);

template <typename T>
void write_value(std::string& out, const T& v) {
    if constexpr (config::Described<T>) {
        write_struct(out, v);
    } else if constexpr (config::IsVector<T>::value) {
        out += '[';
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) out += ',';
            write_value(out, v[i]);
        }
        out += ']';
    } else if constexpr (std::is_same_v<T, std::string>) {
        out += quote(v);
    } else if constexpr (std::is_same_v<T, bool>) {
        out += v ? "true" : "false";
    } else if constexpr (std::is_enum_v<T>) {
        out += quote(name_of(v));
    } else {
        static_assert(std::is_integral_v<T>);
        out += std::to_string(v);
    }
}

// Every field in its description's order; an absent optional is null unless the field says
// otherwise, and a refused field is always null.
template <config::Described T>
void write_struct(std::string& out, const T& s) {
    out += '{';
    bool first = true;
    auto key = [&](const char* name) {
        out += first ? "" : ",";
        first = false;
        out += quote(name) + ":";
    };
    config::describe(s, config::Overloaded{[&](const config::Refused& refused) {
                                               key(refused.name);
                                               out += "null";
                                           },
                                           [&](const config::Field& field, const auto& value) {
                                               using V = std::decay_t<decltype(value)>;
                                               if constexpr (config::IsOptional<V>::value) {
                                                   if (!value && field.omit_when_absent) return;
                                                   key(field.name);
                                                   if (value)
                                                       write_value(out, *value);
                                                   else if (field.default_when_absent)
                                                       write_value(out, typename V::value_type{});
                                                   else
                                                       out += "null";
                                               } else {
                                                   key(field.name);
                                                   write_value(out, value);
                                               }
                                           }});
    out += '}';
}

}  // namespace

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    return out + "\"";
}

std::string to_json(const MachineConfig& m) {
    std::string out;
    write_struct(out, m);
    return out;
}

std::string to_json(const VmConfig& c) {
    std::string out;
    write_struct(out, c);
    return out;
}

}  // namespace ember::json
