// PATCH /machine-config, /drives and /network-interfaces bodies, read from their field lists, and
// how an update's rate limits combine with the ones a device has.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <type_traits>

#include "api/json/api_bodies.h"
#include "core/config/config_fields.h"

namespace ember::json {
namespace {

TEST(DeviceUpdateBody, ADrivePatchCarriesItsPathAndLimits) {
    auto u = parse_body<DriveUpdate>(R"({"drive_id": "scratch", "path_on_host": "/new.img",
        "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}})");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->drive_id, "scratch");
    EXPECT_EQ(u->path_on_host, "/new.img");
    ASSERT_TRUE(u->rate_limiter);
    EXPECT_FALSE(u->rate_limiter->bandwidth);
    ASSERT_TRUE(u->rate_limiter->ops);
    EXPECT_EQ(u->rate_limiter->ops->size, 100u);

    auto bare = parse_body<DriveUpdate>(R"({"drive_id": "scratch"})");
    ASSERT_TRUE(bare);
    EXPECT_FALSE(bare->path_on_host);
    EXPECT_FALSE(bare->rate_limiter);

    auto bad =
        parse_body<DriveUpdate>(R"({"drive_id": "scratch", "rate_limiter": {"ops": {"size": 1}}})");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("rate_limiter.ops.refill_time"), std::string::npos)
        << bad.error().message;
    EXPECT_FALSE(parse_body<DriveUpdate>(R"({"drive_id": "scratch", "is_read_only": true})"))
        << "only the fields Firecracker lets a PATCH change";
}

TEST(DeviceUpdateBody, AnInterfacePatchCarriesEachDirectionsLimits) {
    auto u = parse_body<NetworkInterfaceUpdate>(R"({"iface_id": "eth0",
        "tx_rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->iface_id, "eth0");
    EXPECT_FALSE(u->rx_rate_limiter);
    ASSERT_TRUE(u->tx_rate_limiter);
    EXPECT_EQ(u->tx_rate_limiter->bandwidth->size, 1000u);
    EXPECT_FALSE(parse_body<NetworkInterfaceUpdate>(R"({"iface_id": "eth0", "guest_mac": "x"})"));
}

TEST(DeviceUpdateBody, ABucketLeftOutStaysAndOneOfSizeZeroIsTurnedOff) {
    const RateLimiterConfig old{TokenBucketConfig{1000, std::nullopt, 100},
                                TokenBucketConfig{10, std::nullopt, 100}};
    auto bw_only = updated_rate_limiter(old, {TokenBucketConfig{5000, 50, 10}, std::nullopt});
    ASSERT_TRUE(bw_only.bandwidth && bw_only.ops);
    EXPECT_EQ(bw_only.bandwidth->size, 5000u);
    EXPECT_EQ(bw_only.ops->size, 10u) << "left out: as it was";

    auto ops_off = updated_rate_limiter(old, {std::nullopt, TokenBucketConfig{0, std::nullopt, 0}});
    EXPECT_EQ(ops_off.bandwidth->size, 1000u);
    EXPECT_EQ(ops_off.ops->size, 0u) << "size 0: no ops limit";

    auto from_none =
        updated_rate_limiter(std::nullopt, {std::nullopt, TokenBucketConfig{1, {}, 1}});
    EXPECT_FALSE(from_none.bandwidth);
    EXPECT_EQ(from_none.ops->size, 1u);
}

// A JSON value of the type a member holds, for the test below.
template <typename T>
std::string sample() {
    using V = config::ValueOf<T>;
    if constexpr (std::is_same_v<V, std::string>) return R"("x")";
    if constexpr (std::is_same_v<V, bool>) return "true";
    if constexpr (std::is_integral_v<V>) return "1";
    if constexpr (std::is_same_v<V, HugePages>) return R"("2M")";
    if constexpr (config::Described<V>) return "{}";
    return "unknown";
}

template <typename T>
bool is_set(const T& member) {
    if constexpr (config::IsOptional<T>::value)
        return member.has_value();
    else
        return member == T{"x"};
}

// A PATCH body's fields are its struct's description: each field described is read from JSON
// into its member, with nothing listed anywhere else. A field added to the description (of
// MachineConfigPatch, DriveUpdate or NetworkInterfaceUpdate, in core/config/config_fields.h) is
// read from the body with no other change.
template <typename Patch, typename Parse>
void expect_every_described_field_read(Parse parse) {
    std::set<std::string> fields;
    Patch described{};
    config::describe(described, config::Overloaded{[&](const config::Field& f, const auto&) {
                                                       fields.insert(f.name);
                                                   },
                                                   [](const config::Refused&) {}});
    ASSERT_FALSE(fields.empty());
    for (const std::string& field : fields) {
        std::string body = "{";
        config::describe(
            described, config::Overloaded{[&](const config::Field& f, const auto& member) {
                                              if (f.name != field && !f.required) return;
                                              if (body.size() > 1) body.append(", ");
                                              body.append("\"").append(f.name).append("\": ");
                                              body.append(sample<std::decay_t<decltype(member)>>());
                                          },
                                          [](const config::Refused&) {}});
        body += "}";
        auto parsed = parse(body);
        ASSERT_TRUE(parsed) << body << ": " << parsed.error().message;
        config::describe(*parsed, config::Overloaded{[&](const config::Field& f, const auto& m) {
                                                         if (f.name == field) {
                                                             EXPECT_TRUE(is_set(m)) << body;
                                                         }
                                                     },
                                                     [](const config::Refused&) {}});
    }
}

// config::patched() matches a PATCH's fields to the machine config's by name: each field the
// patch gives must land, and nothing else change.
TEST(PatchBodies, EveryFieldAMachineConfigPatchGivesReplacesItsNamesake) {
    const MachineConfig before{};
    MachineConfigPatch all;
    all.vcpu_count = before.vcpu_count + 1;
    all.mem_size_mib = before.mem_size_mib + 1;
    all.smt = !before.smt;
    all.track_dirty_pages = !before.track_dirty_pages;
    all.cpu_template = "None";
    all.huge_pages = HugePages::Size2M;
    const MachineConfig after = config::patched(before, all);
    EXPECT_EQ(after.vcpu_count, *all.vcpu_count);
    EXPECT_EQ(after.mem_size_mib, *all.mem_size_mib);
    EXPECT_EQ(after.smt, *all.smt);
    EXPECT_EQ(after.track_dirty_pages, *all.track_dirty_pages);
    EXPECT_EQ(after.cpu_template, all.cpu_template);
    EXPECT_EQ(after.huge_pages, *all.huge_pages);
    int described = 0;
    config::describe(all, [&](const config::Field&, const auto&) { ++described; });
    EXPECT_EQ(described, 6) << "a field added to the patch is checked here too";

    MachineConfigPatch one;
    one.smt = true;
    MachineConfig expected = before;
    expected.smt = true;
    const MachineConfig only = config::patched(before, one);
    EXPECT_EQ(only.vcpu_count, expected.vcpu_count);
    EXPECT_EQ(only.mem_size_mib, expected.mem_size_mib);
    EXPECT_EQ(only.smt, expected.smt);
    EXPECT_EQ(only.huge_pages, expected.huge_pages);
    EXPECT_FALSE(config::gives_any(MachineConfigPatch{}));
    EXPECT_TRUE(config::gives_any(one));
}

TEST(PatchBodies, EveryFieldTheirDescriptionsListIsReadFromJson) {
    expect_every_described_field_read<MachineConfigPatch>(parse_body<MachineConfigPatch>);
    expect_every_described_field_read<DriveUpdate>(parse_body<DriveUpdate>);
    expect_every_described_field_read<NetworkInterfaceUpdate>(parse_body<NetworkInterfaceUpdate>);
}

}  // namespace
}  // namespace ember::json
