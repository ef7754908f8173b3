// The client writes each request with the description the server reads it by, and reads each
// answer with the description the server writes it by: every body survives the trip.
#include <gtest/gtest.h>

#include "api/json/api_bodies.h"
#include "api/json/config_codec.h"
#include "api/json/vm_config_json.h"
#include "api/json/writer.h"

namespace ember {
namespace {

using json::Absent;
using json::to_json;

TEST(ClientBodies, ALoadWithEveryFieldReadsBackAsTheServerReadsIt) {
    LoadSnapshot l;
    l.snapshot_path = "/s/fn.state";
    l.mem_backend = MemBackend{MemBackendType::File, "/s/fn.mem"};
    l.resume_vm = true;
    l.track_dirty_pages = true;
    l.network_overrides = {{"eth0", "tap7"}};
    l.working_set_path = "/s/fn.ws";
    const std::string body = to_json(l, Absent::Omitted);
    EXPECT_EQ(body.find("mem_file_path"), std::string::npos) << body;
    auto back = json::parse_body<LoadSnapshot>(body);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_FALSE(back->deprecated_fields());
    EXPECT_FALSE(back->uffd());
    EXPECT_EQ(back->memory().backend_path, "/s/fn.mem");
    EXPECT_EQ(to_json(*back, Absent::Omitted), body);
}

TEST(ClientBodies, RequestsLeaveOutWhatTheyDoNotSet) {
    MachineConfigPatch p;
    p.mem_size_mib = 256;
    EXPECT_EQ(to_json(p, Absent::Omitted), R"({"mem_size_mib":256})");
    auto back = json::parse_body<MachineConfigPatch>(to_json(p, Absent::Omitted));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->mem_size_mib, 256u);
    EXPECT_FALSE(back->vcpu_count);

    DriveUpdate u;
    u.drive_id = "rootfs";
    u.path_on_host = "/img/new.ext4";
    EXPECT_EQ(to_json(u, Absent::Omitted),
              R"({"drive_id":"rootfs","path_on_host":"/img/new.ext4"})");
}

TEST(ClientBodies, EnumerationsGoOutByFirecrackersNames) {
    EXPECT_EQ(to_json(PutAction{ActionType::SendCtrlAltDel}),
              R"({"action_type":"SendCtrlAltDel"})");
    EXPECT_EQ(to_json(SetVmState{VmStateChange::Paused}), R"({"state":"Paused"})");
    CreateSnapshot c;
    c.snapshot_type = SnapshotType::Diff;
    c.snapshot_path = "a";
    c.mem_file_path = "b";
    auto back = json::parse_body<CreateSnapshot>(to_json(c, Absent::Omitted));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_TRUE(back->diff());

    LoggerConfig l;
    l.level = log::Level::Warn;
    l.show_level = false;
    auto logger = json::parse_body<LoggerConfig>(to_json(l, Absent::Omitted));
    ASSERT_TRUE(logger) << logger.error().message;
    EXPECT_EQ(logger->level, log::Level::Warn);
    EXPECT_EQ(logger->show_level, false);
    EXPECT_FALSE(logger->log_path);
}

TEST(ClientBodies, AConfigPutSectionBySectionReadsBackWhole) {
    DriveConfig d;
    d.drive_id = "rootfs";
    d.path_on_host = "/img/root.ext4";
    d.is_root_device = true;
    d.rate_limiter = RateLimiterConfig{
        .bandwidth = TokenBucketConfig{.size = 1000, .one_time_burst = 10, .refill_time = 100},
        .ops = std::nullopt};
    auto back = json::parse_body<DriveConfig>(to_json(d, Absent::Omitted));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(to_json(*back), to_json(d));
}

TEST(ClientBodies, TheInstanceAnswerReadsBackWithItsState) {
    const InstanceInfo info{
        .id = "fn-1", .state = VmState::Paused, .vmm_version = "0.1.0", .app_name = "ember"};
    const std::string body = to_json(info);
    EXPECT_EQ(body, R"({"id":"fn-1","state":"Paused","vmm_version":"0.1.0","app_name":"ember"})");
    auto back = json::read_body<InstanceInfo>(body);
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->state, VmState::Paused);
    EXPECT_EQ(back->id, "fn-1");
    auto strange = json::read_body<InstanceInfo>(
        R"({"id":"x","state":"Dancing","vmm_version":"1","app_name":"ember"})");
    ASSERT_FALSE(strange);
    EXPECT_NE(strange.error().message.find("state"), std::string::npos) << strange.error().message;
}

}  // namespace
}  // namespace ember
