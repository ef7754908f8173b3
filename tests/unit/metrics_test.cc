#include "vmm/base/metrics.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ember::metrics
