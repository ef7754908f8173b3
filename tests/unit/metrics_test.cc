#include "core/base/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "core/base/metrics_groups.h"

namespace ember::metrics {
namespace {

TEST(Metrics, CountersShowWhatTheyGainedSinceTheLastLineAndValuesWhatTheyAre) {
    Reporter r;
    std::vector<Group> g{
        {"block", {{"read_count", 5}, {"vmm_load_snapshot", 700, Field::Kind::Value}}}};
    EXPECT_EQ(r.line(1, g),
              "{\"utc_timestamp_ms\":1,\"block\":{\"read_count\":5,\"vmm_load_snapshot\":700}}\n");
    g[0].fields[0].value = 8;
    EXPECT_EQ(r.line(2, g),
              "{\"utc_timestamp_ms\":2,\"block\":{\"read_count\":3,\"vmm_load_snapshot\":700}}\n");
    EXPECT_EQ(r.line(3, g),
              "{\"utc_timestamp_ms\":3,\"block\":{\"read_count\":0,\"vmm_load_snapshot\":700}}\n");
}

TEST(Metrics, EachGroupKeepsItsOwnCountsAndATotalThatWentDownStartsAgain) {
    Reporter r;
    std::vector<Group> g{{"net_a", {{"tx_fails", 4}}}, {"net_b", {{"tx_fails", 4}}}};
    (void)r.line(1, g);
    g[0].fields[0].value = 6;
    g[1].fields[0].value = 1;  // a new device under the same name
    EXPECT_EQ(r.line(2, g),
              "{\"utc_timestamp_ms\":2,\"net_a\":{\"tx_fails\":2},\"net_b\":{\"tx_fails\":1}}\n");
}

TEST(Metrics, AddIntoSumsFieldByField) {
    Group total{"net", {}};
    add_into(total, {"net_a", {{"rx_packets_count", 2}, {"tx_packets_count", 3}}});
    add_into(total, {"net_b", {{"rx_packets_count", 10}, {"tx_packets_count", 20}}});
    ASSERT_EQ(total.fields.size(), 2u);
    EXPECT_EQ(total.name, "net");
    EXPECT_EQ(total.fields[0].name, "rx_packets_count");
    EXPECT_EQ(total.fields[0].value, 12u);
    EXPECT_EQ(total.fields[1].value, 23u);
}

TEST(Metrics, FirecrackersGroupsKeepWhatWasCountedAndFillTheRestWithZeros) {
    std::vector<Group> counted{
        {"ember_only", {{"x", 1}}},
        {"block_rootfs", {{"read_count", 4}}},
        {"block", {{"read_count", 4}}},
        {"uart", {{"missed_write_count", 9}, {"ember_extra", 2}}},
    };
    auto all = with_firecracker_groups(counted);
    auto find = [&](const std::string& name) {
        auto it = std::ranges::find(all, name, &Group::name);
        return it == all.end() ? -1 : static_cast<int>(it - all.begin());
    };
    ASSERT_EQ(find("api_server"), 0);
    for (const char* g : {"balloon", "vsock", "mmds", "entropy", "signals", "seccomp", "vmm"})
        EXPECT_GE(find(g), 0) << g;
    // A drive's group follows the aggregate and has its fields; a group Firecracker lacks is last.
    ASSERT_EQ(find("block_rootfs"), find("block") + 1);
    EXPECT_EQ(find("ember_only"), static_cast<int>(all.size()) - 1);
    const auto& drive = all[static_cast<size_t>(find("block_rootfs"))];
    const auto& total = all[static_cast<size_t>(find("block"))];
    ASSERT_EQ(drive.fields.size(), total.fields.size());
    EXPECT_EQ(total.fields.front().name, "activate_fails");
    EXPECT_EQ(total.fields.front().value, 0u);
    auto value = [](const Group& g, const std::string& f) {
        auto it = std::ranges::find(g.fields, f, &Field::name);
        return it == g.fields.end() ? uint64_t{99} : it->value;
    };
    EXPECT_EQ(value(drive, "read_count"), 4u);
    const auto& uart = all[static_cast<size_t>(find("uart"))];
    EXPECT_EQ(value(uart, "missed_write_count"), 9u);
    EXPECT_EQ(value(uart, "write_count"), 0u);
    EXPECT_EQ(uart.fields.back().name, "ember_extra");
}

}  // namespace
}  // namespace ember::metrics
