// Every endpoint of ember's API, once: its method, its path, the type of its body (PUT, PATCH) or
// its answer (GET), and the name Firecracker's metrics count it under. The router serves, counts
// and reads the bodies of these rows (api/server/router.cc); the client calls them
// (api/client/client.h). A new endpoint is a row here and in All, its body's field description
// (core/action_fields.h, core/config/config_fields.h), and in the router what it does: for a GET,
// the answer_of() its type; for a PUT or PATCH whose body is not itself an action, an action_of().
#pragma once

#include <string_view>

#include "core/actions.h"
#include "core/answer_fields.h"
#include "core/config/machine_config_patch.h"
#include "core/config/vm_config.h"

namespace ember::endpoints {

enum class Method { Get, Put, Patch };
constexpr std::string_view name_of(Method m) {
    switch (m) {
        case Method::Get: return "GET";
        case Method::Put: return "PUT";
        case Method::Patch: return "PATCH";
    }
    return "";
}

struct Row {
    Method method;
    std::string_view path;  // one ending in '/' takes an id after it: "/drives/rootfs"
    // Firecracker's name in its metrics: PUT /drives/x counts as put_api_requests.drive_count,
    // and drive_fails when it failed. Empty: not counted.
    std::string_view metric = {};
    // It writes or maps a VM's memory: the client gives it its longer bound.
    bool slow = false;
    // A PATCH of a device: the kind (VirtioDevice::kind()) its update goes to.
    std::string_view device_kind = {};

    constexpr bool takes_id() const { return path.size() > 1 && path.back() == '/'; }
};

template <typename T>
struct Endpoint : Row {
    using Type = T;
};

inline constexpr Endpoint<InstanceInfo> kInstanceInfo{{Method::Get, "/", "instance_info"}};
inline constexpr Endpoint<MachineConfig> kGetMachineConfig{
    {Method::Get, "/machine-config", "machine_cfg"}};
inline constexpr Endpoint<VersionInfo> kVersion{{Method::Get, "/version", "vmm_version"}};
inline constexpr Endpoint<VmConfig> kVmConfig{{Method::Get, "/vm/config"}};
inline constexpr Endpoint<PutAction> kActions{{Method::Put, "/actions", "actions"}};
inline constexpr Endpoint<BootSourceConfig> kBootSource{
    {Method::Put, "/boot-source", "boot_source"}};
inline constexpr Endpoint<DriveConfig> kPutDrive{{Method::Put, "/drives/", "drive"}};
inline constexpr Endpoint<LoggerConfig> kLogger{{Method::Put, "/logger", "logger"}};
inline constexpr Endpoint<MachineConfig> kPutMachineConfig{
    {Method::Put, "/machine-config", "machine_cfg"}};
inline constexpr Endpoint<CpuTemplate> kCpuConfig{{Method::Put, "/cpu-config", "cpu_cfg"}};
inline constexpr Endpoint<PutMetrics> kMetrics{{Method::Put, "/metrics", "metrics"}};
inline constexpr Endpoint<NetworkInterfaceConfig> kPutNetworkInterface{
    {Method::Put, "/network-interfaces/", "network"}};
inline constexpr Endpoint<CreateSnapshot> kCreateSnapshot{
    {Method::Put, "/snapshot/create", {}, true}};
inline constexpr Endpoint<LoadSnapshot> kLoadSnapshot{{Method::Put, "/snapshot/load", {}, true}};
// ember's own: PUT /snapshot/working-set.
inline constexpr Endpoint<RecordWorkingSet> kRecordWorkingSet{
    {Method::Put, "/snapshot/working-set", {}, true}};
inline constexpr Endpoint<DriveUpdate> kPatchDrive{
    {Method::Patch, "/drives/", "drive", false, "block"}};
inline constexpr Endpoint<NetworkInterfaceUpdate> kPatchNetworkInterface{
    {Method::Patch, "/network-interfaces/", "network", false, "net"}};
inline constexpr Endpoint<MachineConfigPatch> kPatchMachineConfig{
    {Method::Patch, "/machine-config", "machine_cfg"}};
inline constexpr Endpoint<SetVmState> kVmState{{Method::Patch, "/vm"}};

// The endpoints ember does not serve (MMDS, vsock) but whose requests its metrics count still.
struct NotServed {};
inline constexpr Endpoint<NotServed> kGetMmds{{Method::Get, "/mmds", "mmds"}};
inline constexpr Endpoint<NotServed> kPutMmds{{Method::Put, "/mmds", "mmds"}};
inline constexpr Endpoint<NotServed> kPutVsock{{Method::Put, "/vsock", "vsock"}};
inline constexpr Endpoint<NotServed> kPatchMmds{{Method::Patch, "/mmds", "mmds"}};

template <const auto&... E>
struct List {
    static constexpr Row rows[] = {E...};
};

// Every endpoint, in the order Firecracker's metrics list them: the router serves each (but those
// not served), and the metrics count each.
using All =
    List<kInstanceInfo, kGetMachineConfig, kGetMmds, kVersion, kVmConfig, kActions, kBootSource,
         kPutDrive, kLogger, kPutMachineConfig, kCpuConfig, kMetrics, kPutNetworkInterface,
         kPutMmds, kPutVsock, kCreateSnapshot, kLoadSnapshot, kRecordWorkingSet, kPatchDrive,
         kPatchNetworkInterface, kPatchMachineConfig, kPatchMmds, kVmState>;
inline constexpr const auto& kAll = All::rows;

// The id a body of an endpoint that takes one names, which its path must name too.
inline const std::string& id_in(const DriveConfig& d) {
    return d.drive_id;
}
inline const std::string& id_in(const DriveUpdate& u) {
    return u.drive_id;
}
inline const std::string& id_in(const NetworkInterfaceConfig& n) {
    return n.iface_id;
}
inline const std::string& id_in(const NetworkInterfaceUpdate& u) {
    return u.iface_id;
}

}  // namespace ember::endpoints
