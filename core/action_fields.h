// The bodies of the API's action requests (PUT /actions, PATCH /vm, PUT /metrics, the snapshot
// requests), described field by field as the configuration is (core/config/config_fields.h), so
// that one JSON reader walks them all with the same rules. A field added here is read from JSON.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "core/actions.h"
#include "core/base/described.h"
#include "core/config/config_fields.h"

namespace ember::config {

void describe(Is<PutAction> auto& a, auto&& v) {
    v(Field{.name = "action_type", .required = true}, a.action_type);
}

void describe(Is<SetVmState> auto& s, auto&& v) {
    v(Field{.name = "state", .required = true}, s.state);
}

void describe(Is<PutMetrics> auto& m, auto&& v) {
    v(Field{.name = "metrics_path", .required = true}, m.metrics_path);
}

void describe(Is<RecordWorkingSet> auto& w, auto&& v) {
    v(Field{.name = "working_set_path", .required = true}, w.working_set_path);
}

void describe(Is<CreateSnapshot> auto& c, auto&& v) {
    v(Field{.name = "snapshot_type"}, c.snapshot_type);
    v(Field{.name = "snapshot_path", .required = true}, c.snapshot_path);
    v(Field{.name = "mem_file_path", .required = true}, c.mem_file_path);
    v(Field{.name = "version"}, c.version);
}

void describe(Is<MemBackend> auto& b, auto&& v) {
    v(Field{.name = "backend_type", .required = true}, b.backend_type);
    v(Field{.name = "backend_path", .required = true}, b.backend_path);
}

void describe(Is<LoadSnapshot> auto& l, auto&& v) {
    v(Field{.name = "snapshot_path", .required = true}, l.snapshot_path);
    v(Field{.name = "mem_file_path"}, l.mem_file_path);
    v(Field{.name = "mem_backend"}, l.mem_backend);
    v(Field{.name = "resume_vm"}, l.resume_vm);
    v(Field{.name = "working_set_path"}, l.working_set_path);
    v(Field{.name = "enable_diff_snapshots"}, l.enable_diff_snapshots);
    v(Field{.name = "track_dirty_pages"}, l.track_dirty_pages);
    v(Field{.name = "network_overrides"}, l.network_overrides);
}

// Each enumeration by Firecracker's names for it; unknown_variant() under `key`.
template <typename E, size_t N>
Result<void> from_names(std::string_view name, const std::string& key, E& out,
                        const std::pair<const char*, E> (&names)[N]) {
    for (const auto& [n, value] : names)
        if (name == n) {
            out = value;
            return {};
        }
    if constexpr (N == 2)
        return std::unexpected(
            unknown_variant(key, std::string(name), {names[0].first, names[1].first}));
    else
        return std::unexpected(unknown_variant(key, std::string(name),
                                               {names[0].first, names[1].first, names[2].first}));
}

// Firecracker's names for each enumeration of the requests, read by from_name and written by
// name_of.
inline constexpr std::pair<const char*, ActionType> kActionTypeNames[] = {
    {"InstanceStart", ActionType::InstanceStart},
    {"SendCtrlAltDel", ActionType::SendCtrlAltDel},
    {"FlushMetrics", ActionType::FlushMetrics}};
inline constexpr std::pair<const char*, VmStateChange> kVmStateChangeNames[] = {
    {"Paused", VmStateChange::Paused}, {"Resumed", VmStateChange::Resumed}};
inline constexpr std::pair<const char*, SnapshotType> kSnapshotTypeNames[] = {
    {"Full", SnapshotType::Full}, {"Diff", SnapshotType::Diff}};
inline constexpr std::pair<const char*, MemBackendType> kMemBackendTypeNames[] = {
    {"File", MemBackendType::File}, {"Uffd", MemBackendType::Uffd}};

inline Result<void> from_name(std::string_view name, const std::string& key, ActionType& out) {
    return from_names(name, key, out, kActionTypeNames);
}
inline Result<void> from_name(std::string_view name, const std::string& key, VmStateChange& out) {
    return from_names(name, key, out, kVmStateChangeNames);
}
inline Result<void> from_name(std::string_view name, const std::string& key, SnapshotType& out) {
    return from_names(name, key, out, kSnapshotTypeNames);
}
inline Result<void> from_name(std::string_view name, const std::string& key, MemBackendType& out) {
    return from_names(name, key, out, kMemBackendTypeNames);
}

template <typename E, size_t N>
constexpr std::string_view name_in(E value, const std::pair<const char*, E> (&names)[N]) {
    for (const auto& [n, v] : names)
        if (v == value) return n;
    return "";
}

}  // namespace ember::config

namespace ember {

constexpr std::string_view name_of(ActionType t) {
    return config::name_in(t, config::kActionTypeNames);
}
constexpr std::string_view name_of(VmStateChange s) {
    return config::name_in(s, config::kVmStateChangeNames);
}
constexpr std::string_view name_of(SnapshotType t) {
    return config::name_in(t, config::kSnapshotTypeNames);
}
constexpr std::string_view name_of(MemBackendType t) {
    return config::name_in(t, config::kMemBackendTypeNames);
}

}  // namespace ember
