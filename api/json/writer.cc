#include "api/json/writer.h"

#include <cstdio>

namespace ember::json {
namespace {

std::string opt(const std::optional<std::string>& s) {
    return s ? quote(*s) : "null";
}
std::string b(bool v) {
    return v ? "true" : "false";
}

std::string bucket(const std::optional<TokenBucketConfig>& t) {
    if (!t) return "null";
    return "{\"size\":" + std::to_string(t->size) + ",\"one_time_burst\":" +
           (t->one_time_burst ? std::to_string(*t->one_time_burst) : "null") +
           ",\"refill_time\":" + std::to_string(t->refill_time) + "}";
}

std::string limiter(const std::optional<RateLimiterConfig>& r) {
    if (!r) return "null";
    return "{\"bandwidth\":" + bucket(r->bandwidth) + ",\"ops\":" + bucket(r->ops) + "}";
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
    return "{\"vcpu_count\":" + std::to_string(m.vcpu_count) +
           ",\"mem_size_mib\":" + std::to_string(m.mem_size_mib) + ",\"smt\":" + b(m.smt) +
           ",\"track_dirty_pages\":" + b(m.track_dirty_pages) +
           ",\"huge_pages\":" + quote(m.huge_pages) +
           (m.cpu_template ? ",\"cpu_template\":" + quote(*m.cpu_template) : "") + "}";
}

std::string to_json(const VmConfig& c) {
    std::string out = "{\"boot-source\":";
    if (c.boot_source)
        out += "{\"kernel_image_path\":" + quote(c.boot_source->kernel_image_path) +
               ",\"initrd_path\":" + opt(c.boot_source->initrd_path) +
               ",\"boot_args\":" + opt(c.boot_source->boot_args) + "}";
    else  // Firecracker's shape before a boot source is set
        out += "{\"kernel_image_path\":\"\",\"initrd_path\":null,\"boot_args\":null}";
    out += ",\"cpu-config\":null,\"drives\":[";
    for (size_t i = 0; i < c.drives.size(); ++i) {
        const auto& d = c.drives[i];
        out += std::string(i ? "," : "") + "{\"drive_id\":" + quote(d.drive_id) +
               ",\"partuuid\":" + opt(d.partuuid) + ",\"is_root_device\":" + b(d.is_root_device) +
               ",\"cache_type\":" + quote(std::string(name_of(d.cache_type))) +
               ",\"is_read_only\":" + b(d.is_read_only) +
               ",\"path_on_host\":" + quote(d.path_on_host) +
               ",\"rate_limiter\":" + limiter(d.rate_limiter) +
               ",\"io_engine\":" + quote(std::string(name_of(d.io_engine))) + ",\"socket\":null}";
    }
    out += "],\"machine-config\":" + to_json(c.machine) + ",\"network-interfaces\":[";
    for (size_t i = 0; i < c.network_interfaces.size(); ++i) {
        const auto& n = c.network_interfaces[i];
        out += std::string(i ? "," : "") + "{\"iface_id\":" + quote(n.iface_id) +
               ",\"host_dev_name\":" + quote(n.host_dev_name) +
               ",\"guest_mac\":" + opt(n.guest_mac) +
               ",\"rx_rate_limiter\":" + limiter(n.rx_rate_limiter) +
               ",\"tx_rate_limiter\":" + limiter(n.tx_rate_limiter) + "}";
    }
    out +=
        "],\"balloon\":null,\"vsock\":null,\"logger\":null,\"metrics\":null,\"mmds-config\":null,"
        "\"entropy\":null}";
    return out;
}

}  // namespace ember::json
