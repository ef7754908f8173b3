// PATCH /drives and PATCH /network-interfaces bodies, and how an update's rate limits combine with
// the ones a device has.
#include <gtest/gtest.h>

#include "api/json/api_bodies.h"

namespace ember::json {
namespace {

TEST(DeviceUpdateBody, ADrivePatchCarriesItsPathAndLimits) {
    auto u = parse_drive_patch(R"({"drive_id": "scratch", "path_on_host": "/new.img",
        "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}})");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->drive_id, "scratch");
    EXPECT_EQ(u->path_on_host, "/new.img");
    ASSERT_TRUE(u->rate_limiter);
    EXPECT_FALSE(u->rate_limiter->bandwidth);
    ASSERT_TRUE(u->rate_limiter->ops);
    EXPECT_EQ(u->rate_limiter->ops->size, 100u);

    auto bare = parse_drive_patch(R"({"drive_id": "scratch"})");
    ASSERT_TRUE(bare);
    EXPECT_FALSE(bare->path_on_host);
    EXPECT_FALSE(bare->rate_limiter);

    auto bad =
        parse_drive_patch(R"({"drive_id": "scratch", "rate_limiter": {"ops": {"size": 1}}})");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("rate_limiter.ops.refill_time"), std::string::npos)
        << bad.error().message;
    EXPECT_FALSE(parse_drive_patch(R"({"drive_id": "scratch", "is_read_only": true})"))
        << "only the fields Firecracker lets a PATCH change";
}

TEST(DeviceUpdateBody, AnInterfacePatchCarriesEachDirectionsLimits) {
    auto u = parse_network_interface_patch(R"({"iface_id": "eth0",
        "tx_rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100}}})");
    ASSERT_TRUE(u) << u.error().message;
    EXPECT_EQ(u->iface_id, "eth0");
    EXPECT_FALSE(u->rx_rate_limiter);
    ASSERT_TRUE(u->tx_rate_limiter);
    EXPECT_EQ(u->tx_rate_limiter->bandwidth->size, 1000u);
    EXPECT_FALSE(parse_network_interface_patch(R"({"iface_id": "eth0", "guest_mac": "x"})"));
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

}  // namespace
}  // namespace ember::json
