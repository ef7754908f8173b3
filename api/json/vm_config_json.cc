#include "api/json/vm_config_json.h"

#include "api/json/config_codec.h"
#include "api/json/cpu_config_json.h"

namespace ember::json {
namespace {

Result<void> read_cpu_config_file(VmConfig& c, const ReadFile& read_file) {
    if (!c.cpu_config_file) return {};
    const std::string where = "cpu-config " + *c.cpu_config_file;
    if (!read_file) return fail(where + ": a template file is read only from --config-file");
    auto text = read_file(*c.cpu_config_file);
    EMBER_TRY(text, "cpu-config");
    auto t = parse_cpu_config(*text);
    EMBER_TRY(t, where);
    c.cpu_config = std::move(*t);
    c.cpu_config_file.reset();
    return {};
}

}  // namespace

Result<ValidVmConfig> parse_vm_config(std::string_view text, const ReadFile& read_file) {
    auto parsed = read_body<VmConfig>(text);
    EMBER_TRY(parsed);
    EMBER_TRY(read_cpu_config_file(*parsed, read_file));
    auto config = ValidVmConfig::check(std::move(*parsed));
    EMBER_TRY(config);
    // Checked last, so a document with a worse problem is told about that one first.
    if (!(*config)->boot_source) return fail("boot-source: missing field `boot-source`");
    return config;
}

}  // namespace ember::json
