#include "api/routes/router.h"

#include <cctype>
#include <string_view>

#include "api/json/api_bodies.h"
#include "api/json/cpu_config_json.h"
#include "api/json/vm_config_json.h"
#include "api/json/writer.h"
#include "core/base/log.h"

namespace ember::api {
namespace {

// Every error the API answers becomes Firecracker's 400 here.
HttpResponse fault(const std::string& message) {
    return {400, "{\"fault_message\":" + json::quote(message) + "}"};
}
HttpResponse fault(const Error& error) {
    return fault(error.message);
}
HttpResponse ok_json(std::string body) {
    return {200, std::move(body)};
}
HttpResponse from(const Outcome& outcome) {
    return outcome ? HttpResponse{204, {}} : fault(outcome.error());
}

template <typename T>
bool failed(const Result<T>& r, HttpResponse& out) {
    if (r) return false;
    out = fault(r.error());
    return true;
}

// "/drives/rootfs" with prefix "/drives/" gives "rootfs"; nothing for other paths.
std::optional<std::string> id_after(const std::string& path, std::string_view prefix) {
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0)
        return std::nullopt;
    std::string id = path.substr(prefix.size());
    if (id.find('/') != std::string::npos) return std::nullopt;
    return id;
}

// "PUT" as Firecracker's logs spell it: "Put".
std::string method_name(const std::string& method) {
    std::string name;
    for (char c : method)
        name += static_cast<char>(name.empty() ? c : std::tolower(static_cast<unsigned char>(c)));
    return name;
}

// Firecracker logs a warning and answers with "Deprecation: true" for a deprecated field.
HttpResponse deprecated(HttpResponse response, const char* message) {
    log::warn(message);
    response.deprecated = true;
    return response;
}

HttpResponse id_mismatch(const std::string& path_id, const std::string& body_id) {
    return fault("The id from the path [" + path_id + "] does not match the id from the body [" +
                 body_id + "]!");
}

}  // namespace

HttpResponse Router::handle(const HttpRequest& request) {
    log_received(request);
    HttpResponse response = checked_route(request);
    log_outcome(response);
    count(request, response);
    return response;
}

namespace {

// The endpoints Firecracker's metrics count, by the name their fields take: PUT /drives/x is
// put_api_requests.drive_count, and drive_fails when it failed.
struct CountedEndpoint {
    std::string_view method, path;  // a path ending in '/' takes an id after it
    std::string_view name;
};
constexpr CountedEndpoint kCounted[] = {
    {"GET", "/", "instance_info"},
    {"GET", "/machine-config", "machine_cfg"},
    {"GET", "/mmds", "mmds"},
    {"GET", "/version", "vmm_version"},
    {"PUT", "/actions", "actions"},
    {"PUT", "/boot-source", "boot_source"},
    {"PUT", "/drives/", "drive"},
    {"PUT", "/logger", "logger"},
    {"PUT", "/machine-config", "machine_cfg"},
    {"PUT", "/cpu-config", "cpu_cfg"},
    {"PUT", "/metrics", "metrics"},
    {"PUT", "/network-interfaces/", "network"},
    {"PUT", "/mmds", "mmds"},
    {"PUT", "/vsock", "vsock"},
    {"PATCH", "/drives/", "drive"},
    {"PATCH", "/network-interfaces/", "network"},
    {"PATCH", "/machine-config", "machine_cfg"},
    {"PATCH", "/mmds", "mmds"},
};

std::string group_of(std::string_view method) {
    std::string g;
    for (char c : method) g += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return g + "_api_requests";
}

bool matches(const CountedEndpoint& e, const HttpRequest& r) {
    if (r.method != e.method) return false;
    if (e.path.size() > 1 && e.path.back() == '/')
        return r.path.size() > e.path.size() && r.path.starts_with(e.path);
    return r.path == e.path;
}

}  // namespace

void Router::count(const HttpRequest& request, const HttpResponse& response) {
    std::lock_guard lock(counts_mutex_);
    if (response.deprecated) ++counts_["deprecated_api.deprecated_http_api_calls"];
    for (const auto& e : kCounted) {
        if (!matches(e, request)) continue;
        const std::string field = group_of(e.method) + "." + std::string(e.name);
        ++counts_[field + "_count"];
        if (response.status >= 400 && e.method != "GET") ++counts_[field + "_fails"];
        return;
    }
}

std::vector<metrics::Group> Router::metrics() const {
    std::lock_guard lock(counts_mutex_);
    auto value = [&](const std::string& key) {
        auto it = counts_.find(key);
        return it == counts_.end() ? uint64_t{0} : it->second;
    };
    std::vector<metrics::Group> groups;
    for (std::string_view method : {"GET", "PUT", "PATCH"}) {
        metrics::Group g{group_of(method), {}};
        for (const auto& e : kCounted) {
            if (e.method != method) continue;
            const std::string name(e.name);
            g.fields.push_back({name + "_count", value(g.name + "." + name + "_count")});
            if (method != "GET")
                g.fields.push_back({name + "_fails", value(g.name + "." + name + "_fails")});
        }
        groups.push_back(std::move(g));
    }
    groups.push_back(
        {"deprecated_api",
         {{"deprecated_http_api_calls", value("deprecated_api.deprecated_http_api_calls")}}});
    return groups;
}

// Firecracker's log line for each request, body included.
void Router::log_received(const HttpRequest& r) {
    std::string line =
        "The API server received a " + method_name(r.method) + " request on " + json::quote(r.path);
    if (!r.body.empty()) line += " with body " + json::quote(r.body);
    log::info(line + ".");
}

void Router::log_outcome(const HttpResponse& response) {
    if (response.status == 204)
        log::info("The request was executed successfully. Status code: 204 No Content.");
    else if (response.status == 200)
        log::info("The request was executed successfully. Status code: 200 OK.");
    else
        log::error("Received Error. Status code: " + std::to_string(response.status) +
                   " Bad Request. Message: " + response.body);
}

// Firecracker's rule on bodies comes before any route: a PUT or PATCH has one. (A GET with a
// body never gets here: the HTTP server refuses it from its headers.)
HttpResponse Router::checked_route(const HttpRequest& r) {
    if (r.method == "PUT" && r.body.empty()) return fault("Empty PUT request.");
    if (r.method == "PATCH" && r.body.empty()) return fault("Empty PATCH request.");
    return route(r);
}

HttpResponse Router::route(const HttpRequest& r) {
    const std::string& m = r.method;
    const std::string& p = r.path;
    HttpResponse bad;
    if (m == "GET") {
        if (p == "/")
            return ok_json(json::to_json(InstanceInfo{.id = vmm_.instance_id(),
                                                      .state = vmm_.state(),
                                                      .vmm_version = EMBER_VERSION,
                                                      .app_name = "ember"}));
        if (p == "/version") return ok_json(json::to_json(VersionInfo{kPinnedFirecrackerVersion}));
        if (p == "/vm/config") return ok_json(json::to_json(vmm_.config()));
        if (p == "/machine-config") return ok_json(json::to_json(vmm_.config().machine));
    } else if (m == "PUT") {
        if (p == "/machine-config") {
            auto c = json::parse_machine_config(r.body);
            if (failed(c, bad)) return bad;
            auto done = from(vmm_.submit(PutMachineConfig{*c}));
            return c->cpu_template
                       ? deprecated(done, "PUT /machine-config: cpu_template field is deprecated.")
                       : done;
        }
        if (p == "/cpu-config") {
            auto c = json::parse_cpu_config(r.body);
            return failed(c, bad) ? bad : from(vmm_.submit(PutCpuConfig{std::move(*c)}));
        }
        if (p == "/boot-source") {
            auto c = json::parse_boot_source(r.body);
            return failed(c, bad) ? bad : from(vmm_.submit(PutBootSource{*c}));
        }
        if (auto id = id_after(p, "/drives/")) {
            auto c = json::parse_drive(r.body);
            if (failed(c, bad)) return bad;
            if (c->drive_id != *id) return id_mismatch(*id, c->drive_id);
            return from(vmm_.submit(PutDrive{*c}));
        }
        if (auto id = id_after(p, "/network-interfaces/")) {
            auto c = json::parse_network_interface(r.body);
            if (failed(c, bad)) return bad;
            if (c->iface_id != *id) return id_mismatch(*id, c->iface_id);
            return from(vmm_.submit(PutNetworkInterface{*c}));
        }
        if (p == "/actions") {
            auto a = json::parse_action(r.body);
            if (failed(a, bad)) return bad;
            switch (a->action_type) {
                case ActionType::InstanceStart: return from(vmm_.submit(InstanceStart{}));
                case ActionType::SendCtrlAltDel: return from(vmm_.submit(SendCtrlAltDel{}));
                case ActionType::FlushMetrics: return from(vmm_.submit(FlushMetrics{}));
            }
        }
        if (p == "/logger") {
            auto l = json::parse_logger(r.body);
            return failed(l, bad) ? bad : from(vmm_.submit(PutLogger{*l}));
        }
        if (p == "/snapshot/create") {
            auto c = json::parse_snapshot_create(r.body);
            return failed(c, bad) ? bad : from(vmm_.submit(std::move(*c)));
        }
        if (p == "/snapshot/load") {
            auto l = json::parse_snapshot_load(r.body);
            if (failed(l, bad)) return bad;
            const bool deprecated_fields = l->deprecated_fields();
            auto done = from(vmm_.submit(std::move(*l)));
            return deprecated_fields
                       ? deprecated(done,
                                    "PUT /snapshot/load: mem_file_path and enable_diff_snapshots "
                                    "fields are deprecated.")
                       : done;
        }
        if (p == "/snapshot/working-set") {
            auto w = json::parse_working_set(r.body);
            return failed(w, bad) ? bad : from(vmm_.submit(std::move(*w)));
        }
        if (p == "/metrics") {
            auto m = json::parse_metrics(r.body);
            return failed(m, bad) ? bad : from(vmm_.submit(std::move(*m)));
        }
    } else if (m == "PATCH") {
        if (p == "/machine-config") {
            auto c = json::parse_machine_config_patch(r.body);
            if (failed(c, bad)) return bad;
            auto done = from(vmm_.submit(PatchMachineConfig{*c}));
            return c->cpu_template
                       ? deprecated(done,
                                    "PATCH /machine-config: cpu_template field is deprecated.")
                       : done;
        }
        if (p == "/vm") {
            auto s = json::parse_vm_state(r.body);
            return failed(s, bad) ? bad : from(vmm_.submit(*s));
        }
        if (auto id = id_after(p, "/drives/")) {
            auto c = json::parse_drive_patch(r.body);
            if (failed(c, bad)) return bad;
            if (c->drive_id != *id) return id_mismatch(*id, c->drive_id);
            return from(vmm_.submit(UpdateDevice{"block", *id, std::move(*c)}));
        }
        if (auto id = id_after(p, "/network-interfaces/")) {
            auto c = json::parse_network_interface_patch(r.body);
            if (failed(c, bad)) return bad;
            if (c->iface_id != *id) return id_mismatch(*id, c->iface_id);
            return from(vmm_.submit(UpdateDevice{"net", *id, std::move(*c)}));
        }
    }
    return fault("Invalid request method and/or path: " + m + " " + p + ".");
}

}  // namespace ember::api
