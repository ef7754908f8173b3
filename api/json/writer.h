// JSON out, by walking each struct's description (core/config/config_fields.h,
// core/action_fields.h, core/answer_fields.h): the config sections as Firecracker's
// GET /vm/config and GET /machine-config show them, the answers of GET / and GET /version, and
// the bodies of requests as a client sends them. What the server writes, a client reads with the
// same description, and the reverse.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "core/action_fields.h"
#include "core/answer_fields.h"
#include "core/config/config_fields.h"
#include "core/config/vm_config.h"

namespace ember::json {

std::string quote(std::string_view s);

// What an absent optional becomes: null, as GET /vm/config shows it (and a refused field), or
// nothing, as a request body leaves out what it does not set.
enum class Absent { Null, Omitted };

namespace writer {

template <config::Described T>
void write_struct(std::string& out, const T& s, Absent absent);

template <typename T>
void write_value(std::string& out, const T& v, Absent absent) {
    if constexpr (config::Described<T>) {
        write_struct(out, v, absent);
    } else if constexpr (config::IsVector<T>::value) {
        out += '[';
        for (size_t i = 0; i < v.size(); ++i) {
            if (i) out += ',';
            write_value(out, v[i], absent);
        }
        out += ']';
    } else if constexpr (std::is_same_v<T, std::string>) {
        out += quote(v);
    } else if constexpr (std::is_same_v<T, bool>) {
        out += v ? "true" : "false";
    } else if constexpr (config::Named<T>) {
        out += quote(name_of(v));
    } else if constexpr (std::is_integral_v<T>) {
        out += std::to_string(v);
    } else {
        static_assert(config::Textual<T>,
                      "a leaf JSON cannot hold");  // written by its field's Text
    }
}

// Every field in its description's order; an absent optional is null (or left out) unless the
// field says otherwise, and a refused field is null (or left out).
template <config::Described T>
void write_struct(std::string& out, const T& s, Absent absent) {
    out += '{';
    bool first = true;
    auto key = [&](const char* name) {
        out += first ? "" : ",";
        first = false;
        out += quote(name) + ":";
    };
    config::describe(
        s, config::Overloaded{[&](const config::Refused& refused) {
                                  if (absent == Absent::Omitted) return;
                                  key(refused.name);
                                  out += "null";
                              },
                              [&](const config::Field& field, const auto& value) {
                                  using V = std::decay_t<decltype(value)>;
                                  if constexpr (config::IsOptional<V>::value) {
                                      if (!value &&
                                          (field.omit_when_absent || absent == Absent::Omitted))
                                          return;
                                      key(field.name);
                                      if (value)
                                          write_value(out, *value, absent);
                                      else if (field.default_when_absent)
                                          write_value(out, typename V::value_type{}, absent);
                                      else
                                          out += "null";
                                  } else {
                                      key(field.name);
                                      if constexpr (config::Textual<V>)
                                          if (config::as_text<V>(field)) {
                                              out += quote(config::to_text(value, field.text));
                                              return;
                                          }
                                      write_value(out, value, absent);
                                  }
                              }});
    out += '}';
}

}  // namespace writer

template <config::Described T>
std::string to_json(const T& s, Absent absent = Absent::Null) {
    std::string out;
    writer::write_struct(out, s, absent);
    return out;
}

inline std::string to_json(const ValidVmConfig& c, Absent absent = Absent::Null) {
    return to_json(c.get(), absent);
}

}  // namespace ember::json
