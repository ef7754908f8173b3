// A kind of section in a snapshot's state file: the id it is stored under and the name tools
// print. snapshot/ declares the machine-wide kinds; each device declares its own beside it, and
// vmm/machine/sections.h lists them all.
#pragma once

#include <cstdint>
#include <string_view>

namespace ember {

struct StateSection {
    uint32_t id;
    std::string_view name;
};

}  // namespace ember
