#include "api/json/api_bodies.h"

#include "api/json/fields.h"
#include "api/json/rate_limiter_json.h"
#include "api/json/vm_config_json.h"
#include "core/base/log.h"
#include "core/config/vm_config.h"

namespace ember::json {
namespace {

using simdjson::dom::object;

template <typename T, typename F>
Result<T> with_object(std::string_view text, F&& from) {
    auto o = parse_object(text);
    EMBER_TRY(o);
    Fields f(*o, "");
    auto value = from(f);
    EMBER_TRY(value);
    EMBER_TRY(f.finish());
    return value;
}

Result<std::string> one_of(Fields& f, const char* key, std::initializer_list<const char*> allowed) {
    auto v = f.required(f.string(key), key);
    EMBER_TRY(v);
    for (const char* a : allowed)
        if (*v == a) return v;
    return std::unexpected(unknown_variant(f.path_of(key), *v, allowed));
}

// One entry of network_overrides: iface_id, host_dev_name.
Result<std::pair<std::string, std::string>> network_override_from(object o,
                                                                  const std::string& path) {
    Fields f(o, path);
    auto id = f.required(f.string("iface_id"), "iface_id");
    EMBER_TRY(id);
    auto tap = f.required(f.string("host_dev_name"), "host_dev_name");
    EMBER_TRY(tap);
    EMBER_TRY(f.finish());
    return std::pair{*id, *tap};
}

}  // namespace

Result<MachineConfigPatch> parse_machine_config_patch(std::string_view text) {
    return with_object<MachineConfigPatch>(text, [](Fields& f) -> Result<MachineConfigPatch> {
        MachineConfigPatch p;
        EMBER_TRY(take(f.u32("vcpu_count"), p.vcpu_count));
        EMBER_TRY(take(f.u32("mem_size_mib"), p.mem_size_mib));
        EMBER_TRY(take(f.boolean("smt"), p.smt));
        EMBER_TRY(take(f.boolean("track_dirty_pages"), p.track_dirty_pages));
        EMBER_TRY(take(f.string("cpu_template"), p.cpu_template));
        auto huge_pages = f.string("huge_pages");
        EMBER_TRY(huge_pages);
        if (*huge_pages) {
            auto named = huge_pages_named(**huge_pages, f.path_of("huge_pages"));
            EMBER_TRY(named);
            p.huge_pages = *named;
        }
        if (!p.vcpu_count && !p.mem_size_mib && !p.smt && !p.track_dirty_pages && !p.cpu_template &&
            !p.huge_pages)
            return fail("Empty PATCH request.");
        return p;
    });
}

Result<DriveUpdate> parse_drive_patch(std::string_view text) {
    return with_object<DriveUpdate>(text, [](Fields& f) -> Result<DriveUpdate> {
        DriveUpdate u;
        auto id = f.required(f.string("drive_id"), "drive_id");
        EMBER_TRY(id);
        u.drive_id = *id;
        EMBER_TRY(take(f.string("path_on_host"), u.path_on_host));
        EMBER_TRY(take(rate_limiter_from(f, "rate_limiter"), u.rate_limiter));
        return u;
    });
}

Result<NetworkInterfaceUpdate> parse_network_interface_patch(std::string_view text) {
    return with_object<NetworkInterfaceUpdate>(
        text, [](Fields& f) -> Result<NetworkInterfaceUpdate> {
            NetworkInterfaceUpdate u;
            auto id = f.required(f.string("iface_id"), "iface_id");
            EMBER_TRY(id);
            u.iface_id = *id;
            EMBER_TRY(take(rate_limiter_from(f, "rx_rate_limiter"), u.rx_rate_limiter));
            EMBER_TRY(take(rate_limiter_from(f, "tx_rate_limiter"), u.tx_rate_limiter));
            return u;
        });
}

Result<std::string> parse_action_type(std::string_view text) {
    return with_object<std::string>(text, [](Fields& f) {
        return one_of(f, "action_type", {"InstanceStart", "SendCtrlAltDel", "FlushMetrics"});
    });
}

Result<bool> parse_vm_state(std::string_view text) {
    return with_object<bool>(text, [](Fields& f) -> Result<bool> {
        auto s = one_of(f, "state", {"Paused", "Resumed"});
        EMBER_TRY(s);
        return *s == "Paused";
    });
}

Result<LoggerConfig> parse_logger(std::string_view text) {
    return with_object<LoggerConfig>(text, [](Fields& f) -> Result<LoggerConfig> {
        LoggerConfig l;
        EMBER_TRY(take(f.string("log_path"), l.log_path));
        std::optional<std::string> level;
        EMBER_TRY(take(f.string("level"), level));
        if (level) {
            auto parsed = log::parse_level(*level);
            if (!parsed) return fail("level: " + parsed.error().message);
            l.level = *parsed;
        }
        EMBER_TRY(take(f.boolean("show_level"), l.show_level));
        EMBER_TRY(take(f.boolean("show_log_origin"), l.show_log_origin));
        EMBER_TRY(take(f.string("module"), l.module));
        return l;
    });
}

Result<std::string> parse_metrics_path(std::string_view text) {
    return with_object<std::string>(
        text, [](Fields& f) { return f.required(f.string("metrics_path"), "metrics_path"); });
}

Result<SnapshotCreate> parse_snapshot_create(std::string_view text) {
    return with_object<SnapshotCreate>(text, [](Fields& f) -> Result<SnapshotCreate> {
        SnapshotCreate c;
        auto type = f.string("snapshot_type");
        EMBER_TRY(type);
        if (*type) {
            if (**type != "Full" && **type != "Diff")
                return std::unexpected(unknown_variant("snapshot_type", **type, {"Full", "Diff"}));
            c.snapshot_type = **type;
        }
        auto path = f.required(f.string("snapshot_path"), "snapshot_path");
        EMBER_TRY(path);
        c.snapshot_path = *path;
        auto mem = f.required(f.string("mem_file_path"), "mem_file_path");
        EMBER_TRY(mem);
        c.mem_file_path = *mem;
        EMBER_TRY(f.string("version"));
        return c;
    });
}

Result<SnapshotLoad> parse_snapshot_load(std::string_view text) {
    return with_object<SnapshotLoad>(text, [](Fields& f) -> Result<SnapshotLoad> {
        SnapshotLoad l;
        auto path = f.required(f.string("snapshot_path"), "snapshot_path");
        EMBER_TRY(path);
        l.snapshot_path = *path;
        auto mem_file = f.string("mem_file_path");
        EMBER_TRY(mem_file);
        auto backend = f.object("mem_backend");
        EMBER_TRY(backend);
        if (*mem_file && *backend) return fail("mem_file_path and mem_backend: give one, not both");
        if (*backend) {
            Fields b(**backend, "mem_backend");
            auto type = b.required(b.string("backend_type"), "backend_type");
            EMBER_TRY(type);
            if (*type != "File" && *type != "Uffd")
                return std::unexpected(
                    unknown_variant("mem_backend.backend_type", *type, {"File", "Uffd"}));
            auto bp = b.required(b.string("backend_path"), "backend_path");
            EMBER_TRY(bp);
            if (bp->empty()) return fail("mem_backend.backend_path: empty path");
            (*type == "File" ? l.mem_file_path : l.uffd_socket_path) = *bp;
            EMBER_TRY(b.finish());
        } else if (*mem_file) {
            l.mem_file_path = **mem_file;
        } else {
            return fail("mem_backend: missing field `mem_backend`");
        }
        EMBER_TRY(take(f.boolean("resume_vm"), l.resume_vm));
        auto working_set = f.string("working_set_path");
        EMBER_TRY(working_set);
        if (*working_set) {
            if ((*working_set)->empty()) return fail("working_set_path: empty path");
            if (!l.uffd_socket_path.empty())
                return fail(
                    "working_set_path: with the Uffd backend the page-fault handler "
                    "installs the working set (ember-uffd --working-set)");
            l.working_set_path = **working_set;
        }
        bool diff = false;
        EMBER_TRY(take(f.boolean("enable_diff_snapshots"), diff));
        EMBER_TRY(take(f.boolean("track_dirty_pages"), l.track_dirty_pages));
        l.track_dirty_pages = l.track_dirty_pages || diff;
        auto diff_given = f.present("enable_diff_snapshots");
        EMBER_TRY(diff_given);
        l.deprecated_fields = mem_file->has_value() || *diff_given;
        auto overrides = list_from(f, "network_overrides", network_override_from);
        EMBER_TRY(overrides);
        for (size_t i = 0; i < overrides->size(); ++i)
            for (size_t j = 0; j < i; ++j)
                if ((*overrides)[j].first == (*overrides)[i].first)
                    return fail("network_overrides[" + std::to_string(i) + "].iface_id: '" +
                                (*overrides)[i].first + "' is overridden twice");
        l.network_overrides = std::move(*overrides);
        return l;
    });
}

Result<std::string> parse_working_set(std::string_view text) {
    return with_object<std::string>(text, [](Fields& f) -> Result<std::string> {
        auto path = f.required(f.string("working_set_path"), "working_set_path");
        EMBER_TRY(path);
        if (path->empty()) return fail("working_set_path: empty path");
        return *path;
    });
}

}  // namespace ember::json
