// The tools' command lines (ember-uffd, ember-store-mount, ember-snapshot): each option takes one
// value ("--name value"), kept as text, read as a whole number in a range, or handed to the
// option's own reader; at most one argument stands alone.
#pragma once

#include <charconv>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <variant>

#include "core/base/error.h"

namespace ember::tools {

struct WholeNumber {
    uint64_t* out;
    bool* given = nullptr;  // set where the option is given
    uint64_t min = 1;
    uint64_t max = std::numeric_limits<uint64_t>::max();
    std::string what = "a whole number";  // as the refusal ends: "--n 'x' is not <what>"
};

struct Option {
    const char* name;
    std::variant<std::string*, WholeNumber, std::function<void(const std::string&)>> into;
};

// argv from `first` on: false when it is not the tool's usage (an option it lacks, one without
// its value, a second argument alone, or one where `alone` is null); an error naming the option
// for a value it does not take.
inline Result<bool> parse_options(int argc, char** argv, int first,
                                  std::initializer_list<Option> options,
                                  std::string* alone = nullptr) {
    for (int i = first; i < argc; ++i) {
        const std::string_view name = argv[i];
        if (!name.starts_with("--")) {
            if (alone == nullptr || !alone->empty()) return false;
            *alone = name;
            continue;
        }
        const Option* option = nullptr;
        for (const auto& o : options)
            if (name == o.name) option = &o;
        if (option == nullptr || i + 1 >= argc) return false;
        const std::string value = argv[++i];
        if (auto* text = std::get_if<std::string*>(&option->into)) {
            **text = value;
        } else if (auto* number = std::get_if<WholeNumber>(&option->into)) {
            uint64_t n = 0;
            const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc() || end != value.data() + value.size() || n < number->min ||
                n > number->max)
                return fail(std::string(name) + " '" + value + "' is not " + number->what);
            *number->out = n;
            if (number->given != nullptr) *number->given = true;
        } else {
            std::get<2>(option->into)(value);
        }
    }
    return true;
}

}  // namespace ember::tools
