// api/json: a configuration struct read from JSON by walking its description (core/config/
// config_fields.h), so every struct gets the same rules: a required field's absence, a wrong type,
// an unknown or repeated field and a refused one each name the field by its path.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "api/json/fields.h"
#include "core/action_fields.h"
#include "core/answer_fields.h"
#include "core/config/config_fields.h"

namespace ember::json {

// What a field the description lacks is: an error, as the server takes requests (a misspelt field
// must not be silently ignored), or nothing, as a client takes answers (a newer ember may add one).
enum class Unknown { Refused, Ignored };

template <config::Described T, Unknown unknown = Unknown::Refused>
Result<T> read_struct(const Object& o, const std::string& path);

namespace codec {

inline Result<void> required_absent(const Fields& f, const config::Field& field) {
    if (!field.required) return {};
    return fail(f.path_of(field.name) + ": missing field `" + field.name + "`");
}

inline Result<void> refuse(Fields& f, const config::Refused& refused) {
    auto present = f.present(refused.name);
    EMBER_TRY(present);
    if (*present) return fail(f.path_of(refused.name) + ": " + refused.why);
    return {};
}

// The field as the string its Text describes, read into a V, when it is present.
template <typename V>
Result<std::optional<V>> get_text(Fields& f, const config::Field& field) {
    auto text = f.string(field.name);
    EMBER_TRY(text);
    if (!*text) return std::optional<V>{};
    V value{};
    EMBER_TRY(config::from_text(**text, field.text, f.path_of(field.name), value));
    return std::optional<V>(value);
}

// The field as a V when it is present: a scalar as itself (or as the string its field's Text
// describes), a named value by its name, a struct by its description, a leaf that is only text (a
// bitmap) as that string.
template <typename V, Unknown unknown>
Result<std::optional<V>> get(Fields& f, const config::Field& field) {
    const char* key = field.name;
    if constexpr (std::is_arithmetic_v<V> && config::Textual<V>)
        if (config::as_text<V>(field)) return get_text<V>(f, field);
    if constexpr (std::is_same_v<V, std::string>) {
        return f.string(key);
    } else if constexpr (std::is_same_v<V, bool>) {
        return f.boolean(key);
    } else if constexpr (std::is_same_v<V, uint32_t>) {
        return f.u32(key);
    } else if constexpr (std::is_same_v<V, uint64_t>) {
        return f.u64(key);
    } else if constexpr (config::Named<V>) {
        auto name = f.string(key);
        EMBER_TRY(name);
        if (!*name) return std::optional<V>{};
        V value{};
        EMBER_TRY(config::from_name(**name, f.path_of(key), value));
        return std::optional<V>(value);
    } else if constexpr (config::Described<V>) {
        auto o = f.object(key);
        EMBER_TRY(o);
        if (!*o) return std::optional<V>{};
        auto value = read_struct<V, unknown>(**o, f.path_of(key));
        EMBER_TRY(value);
        return std::optional<V>(std::move(*value));
    } else {
        static_assert(config::Textual<V>, "a leaf JSON cannot hold");
        return get_text<V>(f, field);
    }
}

// An entry of a list: a struct as an object, a named value as a string.
template <typename V, Unknown unknown>
Result<V> entry(const Value& element, const std::string& path) {
    if constexpr (config::Described<V>) {
        const Object* o = element.object();
        if (!o) return fail(path + ": expected an object, got " + type_name(element.type()));
        return read_struct<V, unknown>(*o, path);
    } else {
        static_assert(config::Named<V>);
        const std::string* text = element.string();
        if (!text) return fail(path + ": expected a string, got " + type_name(element.type()));
        V value{};
        EMBER_TRY(config::from_name(*text, path, value));
        return value;
    }
}

// Empty when absent, unless the field is required; never more than the field's `max`.
template <typename V, Unknown unknown>
Result<void> read_list(Fields& f, const config::Field& field, std::vector<V>& out) {
    out.clear();
    auto a = f.array(field.name);
    EMBER_TRY(a);
    if (!*a) return required_absent(f, field);
    if (field.max && (*a)->size() > field.max)
        return fail(f.path_of(field.name) + ": more than " + std::to_string(field.max) +
                    " entries");
    size_t index = 0;
    for (const Value& element : **a) {
        auto value =
            entry<V, unknown>(element, f.path_of(field.name) + "[" + std::to_string(index++) + "]");
        EMBER_TRY(value);
        out.push_back(std::move(*value));
    }
    return {};
}

// A value other than a list keeps its default when absent, or is reported missing when the field
// is required.
template <Unknown unknown = Unknown::Refused, typename T>
Result<void> read_value(Fields& f, const config::Field& field, T& out) {
    if constexpr (config::IsVector<T>::value) {
        return read_list<typename T::value_type, unknown>(f, field, out);
    } else {
        using V = config::ValueOf<T>;
        auto value = get<V, unknown>(f, field);
        EMBER_TRY(value);
        if (!*value) return required_absent(f, field);
        if constexpr (config::IsOptional<T>::value)
            out = std::move(*value);
        else
            out = std::move(**value);
        return {};
    }
}

}  // namespace codec

// Every field of `out` from `f`, then nothing else: finish() refuses what the description lacks.
// Refused fields go first, since one explains why the rest may not fit (a vhost-user drive has a
// socket and no path_on_host).
template <Unknown unknown = Unknown::Refused, config::Described T>
Result<void> read_fields(Fields& f, T& out) {
    Result<void> status;
    config::describe(out, config::Overloaded{[&](const config::Refused& refused) {
                                                 if (status) status = codec::refuse(f, refused);
                                             },
                                             [](const config::Field&, auto&) {}});
    config::describe(out, config::Overloaded{[](const config::Refused&) {},
                                             [&](const config::Field& field, auto& member) {
                                                 if (status)
                                                     status = codec::read_value<unknown>(f, field,
                                                                                         member);
                                             }});
    EMBER_TRY(status);
    if constexpr (unknown == Unknown::Ignored)
        return {};
    else
        return f.finish();
}

template <config::Described T, Unknown unknown>
Result<T> read_struct(const Object& o, const std::string& path) {
    Fields f(o, path);
    T out;
    EMBER_TRY(read_fields<unknown>(f, out));
    return out;
}

// A body that must be one JSON object, read as a T by T's description.
template <config::Described T, Unknown unknown = Unknown::Refused>
Result<T> read_body(std::string_view text) {
    auto o = parse_object(text);
    EMBER_TRY(o);
    return read_struct<T, unknown>(*o, "");
}

}  // namespace ember::json
