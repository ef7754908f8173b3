#include "api/server/router.h"

#include <array>
#include <cctype>
#include <concepts>
#include <string_view>
#include <type_traits>

#include "api/json/api_bodies.h"
#include "api/json/writer.h"
#include "core/base/log.h"
#include "core/endpoints.h"

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
HttpResponse deprecated(HttpResponse response, const std::string& message) {
    log::warn(message);
    response.deprecated = true;
    return response;
}

HttpResponse id_mismatch(const std::string& path_id, const std::string& body_id) {
    return fault("The id from the path [" + path_id + "] does not match the id from the body [" +
                 body_id + "]!");
}

// What a body asks the VMM for: its endpoint's action holding it, or the body itself where it is
// the action.
PutMachineConfig action_of(const endpoints::Row&, MachineConfig c, const std::string&) {
    return {std::move(c)};
}
PatchMachineConfig action_of(const endpoints::Row&, MachineConfigPatch p, const std::string&) {
    return {std::move(p)};
}
PutCpuConfig action_of(const endpoints::Row&, CpuTemplate t, const std::string&) {
    return {std::move(t)};
}
PutBootSource action_of(const endpoints::Row&, BootSourceConfig b, const std::string&) {
    return {std::move(b)};
}
PutDrive action_of(const endpoints::Row&, DriveConfig d, const std::string&) {
    return {std::move(d)};
}
PutNetworkInterface action_of(const endpoints::Row&, NetworkInterfaceConfig n, const std::string&) {
    return {std::move(n)};
}
PutLogger action_of(const endpoints::Row&, LoggerConfig l, const std::string&) {
    return {std::move(l)};
}
Action action_of(const endpoints::Row&, PutAction a, const std::string&) {
    switch (a.action_type) {
        case ActionType::InstanceStart: return InstanceStart{};
        case ActionType::SendCtrlAltDel: return SendCtrlAltDel{};
        case ActionType::FlushMetrics: return FlushMetrics{};
    }
    return InstanceStart{};
}
template <typename Update>
    requires std::same_as<Update, DriveUpdate> || std::same_as<Update, NetworkInterfaceUpdate>
UpdateDevice action_of(const endpoints::Row& e, Update u, const std::string& id) {
    return {std::string(e.device_kind), id, std::move(u)};
}
template <typename Body>
Body action_of(const endpoints::Row&, Body b, const std::string&) {
    return b;
}

// A deprecated field a body holds, for the warning Firecracker logs; null when none.
const char* deprecation(const MachineConfig& c) {
    return c.cpu_template ? "cpu_template field is deprecated." : nullptr;
}
const char* deprecation(const MachineConfigPatch& p) {
    return p.cpu_template ? "cpu_template field is deprecated." : nullptr;
}
const char* deprecation(const LoadSnapshot& l) {
    return l.deprecated_fields() ? "mem_file_path and enable_diff_snapshots fields are deprecated."
                                 : nullptr;
}
template <typename Body>
const char* deprecation(const Body&) {
    return nullptr;
}

// The type of an endpoint's body (PUT, PATCH) or answer (GET).
template <const auto& E>
using BodyOf = typename std::remove_cvref_t<decltype(E)>::Type;

// A PUT or PATCH: its body read as its endpoint's type, its id checked against the path's, and
// the action it asks for submitted.
template <const auto& E>
HttpResponse submit(ActionSink& vmm, const HttpRequest& r, const std::string& id) {
    auto body = json::parse_body<BodyOf<E>>(r.body);
    if (!body) return fault(body.error());
    if constexpr (requires { endpoints::id_in(*body); })
        if (endpoints::id_in(*body) != id) return id_mismatch(id, endpoints::id_in(*body));
    const char* warning = deprecation(*body);
    HttpResponse done = from(vmm.submit(action_of(E, std::move(*body), id)));
    if (!warning) return done;
    return deprecated(std::move(done), std::string(endpoints::name_of(E.method)) + " " +
                                           std::string(E.path) + ": " + warning);
}

// What a GET answers, by its endpoint's type.
InstanceInfo answer_of(ActionSink& vmm, std::type_identity<InstanceInfo>) {
    return {.id = vmm.instance_id(),
            .state = vmm.state(),
            .vmm_version = EMBER_VERSION,
            .app_name = "ember"};
}
VersionInfo answer_of(ActionSink&, std::type_identity<VersionInfo>) {
    return {kPinnedFirecrackerVersion};
}
VmConfig answer_of(ActionSink& vmm, std::type_identity<VmConfig>) {
    return vmm.config();
}
MachineConfig answer_of(ActionSink& vmm, std::type_identity<MachineConfig>) {
    return vmm.config().machine;
}

template <const auto& E>
HttpResponse answer(ActionSink& vmm, const HttpRequest&, const std::string&) {
    return ok_json(json::to_json(answer_of(vmm, std::type_identity<BodyOf<E>>{})));
}

struct Route {
    const endpoints::Row* endpoint;
    // Null for an endpoint ember does not serve.
    HttpResponse (*serve)(ActionSink&, const HttpRequest&, const std::string& id);
};

template <const auto& E>
constexpr Route route_of() {
    if constexpr (std::same_as<BodyOf<E>, endpoints::NotServed>)
        return {&E, nullptr};
    else if constexpr (E.method == endpoints::Method::Get)
        return {&E, answer<E>};
    else
        return {&E, submit<E>};
}

template <const auto&... E>
constexpr std::array<Route, sizeof...(E)> routes(endpoints::List<E...>) {
    return {route_of<E>()...};
}

constexpr auto kRoutes = routes(endpoints::All{});

}  // namespace

HttpResponse Router::handle(const HttpRequest& request) {
    log_received(request);
    HttpResponse response = checked_route(request);
    log_outcome(response);
    count(request, response);
    return response;
}

namespace {

std::string group_of(endpoints::Method method) {
    std::string g;
    for (char c : endpoints::name_of(method))
        g += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return g + "_api_requests";
}

bool counts(const endpoints::Row& e, const HttpRequest& r) {
    if (e.metric.empty() || r.method != endpoints::name_of(e.method)) return false;
    if (e.takes_id()) return r.path.size() > e.path.size() && r.path.starts_with(e.path);
    return r.path == e.path;
}

}  // namespace

void Router::count(const HttpRequest& request, const HttpResponse& response) {
    std::lock_guard lock(counts_mutex_);
    if (response.deprecated) ++counts_["deprecated_api.deprecated_http_api_calls"];
    for (const auto& e : endpoints::kAll) {
        if (!counts(e, request)) continue;
        const std::string field = group_of(e.method) + "." + std::string(e.metric);
        ++counts_[field + "_count"];
        if (response.status >= 400 && e.method != endpoints::Method::Get)
            ++counts_[field + "_fails"];
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
    using endpoints::Method;
    for (Method method : {Method::Get, Method::Put, Method::Patch}) {
        metrics::Group g{group_of(method), {}};
        for (const auto& e : endpoints::kAll) {
            if (e.method != method || e.metric.empty()) continue;
            const std::string name(e.metric);
            g.fields.push_back({name + "_count", value(g.name + "." + name + "_count")});
            if (method != Method::Get)
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
    for (const auto& route : kRoutes) {
        const endpoints::Row& e = *route.endpoint;
        if (route.serve == nullptr || r.method != endpoints::name_of(e.method)) continue;
        if (!e.takes_id()) {
            if (r.path == e.path) return route.serve(vmm_, r, {});
        } else if (auto id = id_after(r.path, e.path)) {
            return route.serve(vmm_, r, *id);
        }
    }
    return fault("Invalid request method and/or path: " + r.method + " " + r.path + ".");
}

}  // namespace ember::api
