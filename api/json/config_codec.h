// api/json: a configuration struct read from JSON by walking its description (core/config/
// config_fields.h), so every struct gets the same rules: a required field's absence, a wrong type,
// an unknown or repeated field and a refused one each name the field by its path.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <vector>

#include "api/json/fields.h"
#include "core/config/config_fields.h"

namespace ember::json {

template <config::Described T>
Result<T> read_struct(simdjson::dom::object o, const std::string& path);

namespace codec {

inline Result<std::optional<std::string>> get(Fields& f, const char* key, std::string*) {
    return f.string(key);
}
inline Result<std::optional<bool>> get(Fields& f, const char* key, bool*) {
    return f.boolean(key);
}
inline Result<std::optional<uint32_t>> get(Fields& f, const char* key, uint32_t*) {
    return f.u32(key);
}
inline Result<std::optional<uint64_t>> get(Fields& f, const char* key, uint64_t*) {
    return f.u64(key);
}

inline Result<void> from_name(std::string_view name, const std::string& key, CacheType& out) {
    return assign(cache_type_named(name, key), out);
}
inline Result<void> from_name(std::string_view name, const std::string& key, IoEngineType& out) {
    return assign(io_engine_named(name, key), out);
}

inline Result<void> required_absent(const Fields& f, const config::Field& field) {
    if (!field.required) return {};
    return fail(f.path_of(field.name) + ": missing field `" + field.name + "`");
}

inline Result<void> refuse(Fields& f, const config::Refused& refused) {
    auto present = f.present(refused.name);
    if (!present) return std::unexpected(present.error());
    if (*present) return fail(f.path_of(refused.name) + ": " + refused.why);
    return {};
}

// A value that is present, or absent: required fields say so, others keep their default.
template <typename T>
Result<void> read_value(Fields& f, const config::Field& field, T& out) {
    if constexpr (std::is_enum_v<T>) {
        std::optional<std::string> name;
        EMBER_TRY(take(f.string(field.name), name));
        if (!name) return required_absent(f, field);
        return from_name(*name, f.path_of(field.name), out);
    } else if constexpr (config::Described<T>) {
        auto o = f.object(field.name);
        if (!o) return std::unexpected(o.error());
        if (!*o) return required_absent(f, field);
        return assign(read_struct<T>(**o, f.path_of(field.name)), out);
    } else if constexpr (config::IsVector<T>::value) {
        return assign(
            list_from<typename T::value_type>(f, field.name, read_struct<typename T::value_type>),
            out);
    } else if constexpr (config::IsOptional<T>::value) {
        using V = typename T::value_type;
        if constexpr (config::Described<V>) {
            auto o = f.object(field.name);
            if (!o) return std::unexpected(o.error());
            if (!*o) return {};
            return assign(read_struct<V>(**o, f.path_of(field.name)), out);
        } else {
            return take(get(f, field.name, static_cast<V*>(nullptr)), out);
        }
    } else if (field.required) {
        return assign(f.required(get(f, field.name, static_cast<T*>(nullptr)), field.name), out);
    } else {
        return take(get(f, field.name, static_cast<T*>(nullptr)), out);
    }
}

}  // namespace codec

// Every field of `out` from `f`, then nothing else: finish() refuses what the description lacks.
// Refused fields go first, since one explains why the rest may not fit (a vhost-user drive has a
// socket and no path_on_host).
template <config::Described T>
Result<void> read_fields(Fields& f, T& out) {
    Result<void> status;
    config::describe(out, config::Overloaded{[&](const config::Refused& refused) {
                                                 if (status) status = codec::refuse(f, refused);
                                             },
                                             [](const config::Field&, auto&) {}});
    config::describe(out, config::Overloaded{[](const config::Refused&) {},
                                             [&](const config::Field& field, auto& member) {
                                                 if (status)
                                                     status = codec::read_value(f, field, member);
                                             }});
    EMBER_TRY(status);
    return f.finish();
}

template <config::Described T>
Result<T> read_struct(simdjson::dom::object o, const std::string& path) {
    Fields f(o, path);
    T out;
    EMBER_TRY(read_fields(f, out));
    return out;
}

}  // namespace ember::json
