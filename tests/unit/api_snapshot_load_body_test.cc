// PUT /snapshot/load bodies as api/json reads them: Firecracker's fields, its deprecated
// mem_file_path, network overrides, ember's working set, the Uffd backend, and bad bodies named.
#include <gtest/gtest.h>

#include "api/json/api_bodies.h"

namespace ember::json {
namespace {

std::string error_of(const Result<LoadSnapshot>& r) {
    return r ? "(parsed)" : r.error().message;
}

TEST(SnapshotLoadBody, ParsesFirecrackersBodyWithNetworkOverrides) {
    auto l = parse_body<LoadSnapshot>(R"({
      "snapshot_path": "/s/vm.state",
      "mem_backend": {"backend_type": "File", "backend_path": "/s/vm.mem"},
      "track_dirty_pages": true, "resume_vm": true,
      "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"},
                            {"iface_id": "eth1", "host_dev_name": "tap8"}]})");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->snapshot_path, "/s/vm.state");
    EXPECT_EQ(l->memory().backend_path, "/s/vm.mem");
    EXPECT_FALSE(l->uffd());
    EXPECT_TRUE(l->resume_vm);
    EXPECT_TRUE(l->track_dirty_pages);
    ASSERT_EQ(l->network_overrides.size(), 2u);
    EXPECT_EQ(l->network_overrides[0], (NetworkOverride{"eth0", "tap7"}));
    EXPECT_EQ(l->network_overrides[1], (NetworkOverride{"eth1", "tap8"}));
}

TEST(SnapshotLoadBody, TheOlderMemFilePathAndNoOverridesStillParse) {
    auto l = parse_body<LoadSnapshot>(R"({"snapshot_path": "/a", "mem_file_path": "/b"})");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->memory().backend_path, "/b");
    EXPECT_FALSE(l->uffd());
    EXPECT_TRUE(l->deprecated_fields());
    EXPECT_FALSE(l->resume_vm);
    EXPECT_TRUE(l->network_overrides.empty());
}

TEST(SnapshotLoadBody, BadNetworkOverridesNameTheField) {
    const std::string head =
        R"({"snapshot_path": "/a", "mem_file_path": "/b", "network_overrides": )";
    EXPECT_EQ(error_of(parse_body<LoadSnapshot>(head + R"("tap0"})")),
              "network_overrides: expected an array, got a string");
    EXPECT_EQ(error_of(parse_body<LoadSnapshot>(head + R"([7]})")),
              "network_overrides[0]: expected an object, got an integer");
    EXPECT_EQ(error_of(parse_body<LoadSnapshot>(head + R"([{"iface_id": "eth0"}]})")),
              "network_overrides[0].host_dev_name: missing field `host_dev_name`");
    EXPECT_EQ(error_of(parse_body<LoadSnapshot>(
                  head + R"([{"iface_id": "eth0", "host_dev_name": "t", "guest_mac": "x"}]})")),
              "network_overrides[0].guest_mac: unknown field `guest_mac`");
    EXPECT_EQ(
        error_of(parse_body<LoadSnapshot>(head + R"([{"iface_id": "eth0", "host_dev_name": "a"},
                                                       {"iface_id": "eth0", "host_dev_name": "b"}]})")),
        "network_overrides[1].iface_id: 'eth0' is overridden twice");
}

TEST(SnapshotLoadBody, AWorkingSetIsEmbersOwnOptionalField) {
    auto l = parse_body<LoadSnapshot>(
        R"({"snapshot_path": "/a", "mem_file_path": "/b", "working_set_path": "/w"})");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_EQ(l->working_set_path, "/w");
    EXPECT_FALSE(parse_body<LoadSnapshot>(R"({"snapshot_path": "/a", "mem_file_path": "/b"})")
                     ->working_set_path);
    EXPECT_EQ(error_of(parse_body<LoadSnapshot>(
                  R"({"snapshot_path": "/a", "mem_file_path": "/b", "working_set_path": ""})")),
              "working_set_path: empty path");
    EXPECT_EQ(parse_body<RecordWorkingSet>(R"({"working_set_path": "/w"})")->working_set_path,
              "/w");
    EXPECT_FALSE(parse_body<RecordWorkingSet>(R"({"working_set_path": "/w", "x": 1})"));
    EXPECT_FALSE(parse_body<RecordWorkingSet>(R"({})"));
}

TEST(SnapshotLoadBody, TheUffdBackendNamesTheHandlersSocket) {
    auto l = parse_body<LoadSnapshot>(
        R"({"snapshot_path": "/a", "mem_backend": {"backend_type": "Uffd", "backend_path": "/h.sock"}})");
    ASSERT_TRUE(l) << l.error().message;
    EXPECT_TRUE(l->uffd());
    EXPECT_EQ(l->memory().backend_path, "/h.sock");
    EXPECT_EQ(
        error_of(parse_body<LoadSnapshot>(
            R"({"snapshot_path": "/a", "mem_backend": {"backend_type": "Uffd", "backend_path": ""}})")),
        "mem_backend.backend_path: empty path");
    // The handler installs a working set's pages; ember maps them for the guest before it runs.
    auto with_set = parse_body<LoadSnapshot>(
        R"({"snapshot_path": "/a", "mem_backend": {"backend_type": "Uffd", )"
        R"("backend_path": "/h"}, "working_set_path": "/w"})");
    ASSERT_TRUE(with_set) << with_set.error().message;
    EXPECT_EQ(with_set->working_set_path, "/w");
}

}  // namespace
}  // namespace ember::json
