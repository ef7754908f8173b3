// PATCH /machine-config: any subset of the machine config's fields (config::patched() applies one).
#pragma once

#include <optional>
#include <string>

#include "core/base/log.h"
#include "core/config/vm_config.h"

namespace ember {

struct MachineConfigPatch {
    std::optional<uint32_t> vcpu_count;
    std::optional<uint32_t> mem_size_mib;
    std::optional<bool> smt;
    std::optional<bool> track_dirty_pages;
    std::optional<std::string> cpu_template;
    std::optional<HugePages> huge_pages;
};

struct LoggerConfig {
    std::optional<std::string> log_path;  // absent: lines keep going where they go
    std::optional<log::Level> level;
    std::optional<bool> show_level;       // absent: as before (shown unless turned off)
    std::optional<bool> show_log_origin;  // absent: as before (not shown)
    std::optional<std::string> module;
};

}  // namespace ember
