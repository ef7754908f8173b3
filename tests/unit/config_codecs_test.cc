// The configuration's three codecs (JSON in, JSON out, the state file's config section) walk one
// description of its fields (core/config/config_fields.h). The expected texts and bytes are what
// ember wrote before that description existed (04276fc): GET /vm/config keeps Firecracker's shape,
// and state files already written still read.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "api/json/api_bodies.h"
#include "api/json/vm_config_json.h"
#include "api/json/writer.h"
#include "core/base/state_sections.h"
#include "core/config/config_fields.h"
#include "snapshot/config_section.h"

namespace ember {
namespace {

VmConfig everything_set() {
    VmConfig c;
    c.boot_source = BootSourceConfig{"/k", std::string("/i"), std::nullopt};
    c.machine.vcpu_count = 2;
    c.machine.mem_size_mib = 256;
    c.machine.track_dirty_pages = true;
    c.machine.cpu_template = "None";
    c.drives.push_back(
        DriveConfig{.drive_id = "root",
                    .path_on_host = "/r",
                    .is_root_device = true,
                    .partuuid = "abc",
                    .cache_type = CacheType::Writeback,
                    .io_engine = IoEngineType::Sync,
                    .rate_limiter = RateLimiterConfig{TokenBucketConfig{100, 7, 10},
                                                      TokenBucketConfig{5, std::nullopt, 1}}});
    c.drives.push_back(DriveConfig{.drive_id = "data",
                                   .path_on_host = "/d",
                                   .is_root_device = false,
                                   .is_read_only = true,
                                   .partuuid = std::nullopt,
                                   .cache_type = CacheType::Unsafe,
                                   .io_engine = IoEngineType::Async,
                                   .rate_limiter = std::nullopt});
    c.network_interfaces.push_back(NetworkInterfaceConfig{
        .iface_id = "eth0",
        .host_dev_name = "tap0",
        .guest_mac = "02:00:00:00:00:01",
        .rx_rate_limiter = std::nullopt,
        .tx_rate_limiter = RateLimiterConfig{std::nullopt, TokenBucketConfig{9, 3, 2}}});
    return c;
}

std::string hex(const std::vector<uint8_t>& bytes) {
    std::string out;
    char b[3];
    for (uint8_t v : bytes) {
        std::snprintf(b, sizeof b, "%02x", v);
        out += b;
    }
    return out;
}

TEST(ConfigCodecs, JsonOutKeepsFirecrackersShapeAndOrder) {
    EXPECT_EQ(json::to_json(everything_set()),
              "{\"boot-source\":{\"kernel_image_path\":\"/k\",\"initrd_path\":\"/"
              "i\",\"boot_args\":null},\"cpu-config\":n"
              "ull,\"drives\":[{\"drive_id\":\"root\",\"partuuid\":\"abc\",\"is_root_device\":true,"
              "\"cache_type\":\"Writeb"
              "ack\",\"is_read_only\":false,\"path_on_host\":\"/"
              "r\",\"rate_limiter\":{\"bandwidth\":{\"size\":100,\"one_t"
              "ime_burst\":7,\"refill_time\":10},\"ops\":{\"size\":5,\"one_time_burst\":null,"
              "\"refill_time\":1}},\"io_e"
              "ngine\":\"Sync\",\"socket\":null},{\"drive_id\":\"data\",\"partuuid\":null,\"is_"
              "root_device\":false,\"cach"
              "e_type\":\"Unsafe\",\"is_read_only\":true,\"path_on_host\":\"/"
              "d\",\"rate_limiter\":null,\"io_engine\":\"As"
              "ync\",\"socket\":null}],\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":256,"
              "\"smt\":false,\"track_"
              "dirty_pages\":true,\"huge_pages\":\"None\",\"cpu_template\":\"None\"},\"network-"
              "interfaces\":[{\"iface_i"
              "d\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"02:00:00:00:00:01\",\"rx_"
              "rate_limiter\":null,\"tx_"
              "rate_limiter\":{\"bandwidth\":null,\"ops\":{\"size\":9,\"one_time_burst\":3,"
              "\"refill_time\":2}},\"io_engine\":\"Async\"}],\"ball"
              "oon\":null,\"vsock\":null,\"logger\":null,\"metrics\":null,\"mmds-config\":null,"
              "\"entropy\":null}");
    EXPECT_EQ(json::to_json(VmConfig{}),
              "{\"boot-source\":{\"kernel_image_path\":\"\",\"initrd_path\":null,\"boot_args\":"
              "null},\"cpu-config\":nul"
              "l,\"drives\":[],\"machine-config\":{\"vcpu_count\":1,\"mem_size_mib\":128,\"smt\":"
              "false,\"track_dirty_p"
              "ages\":false,\"huge_pages\":\"None\"},\"network-interfaces\":[],\"balloon\":null,"
              "\"vsock\":null,\"logger"
              "\":null,\"metrics\":null,\"mmds-config\":null,\"entropy\":null}");
}

TEST(ConfigCodecs, TheStateFilesConfigSectionKeepsItsBytes) {
    EXPECT_EQ(hex(snapshot::encode(everything_set())),
              "0200000000010000000101020000002f6b01020000002f69000200000004000000726f6f74020000002f"
              "72010001"
              "030000006162630900000057726974656261636b0400000053796e630101640000000000000001070000"
              "00000000"
              "000a00000000000000010500000000000000000000000000000000010000000000000004000000646174"
              "61020000"
              "002f6400010006000000556e73616665050000004173796e630001000000040000006574683004000000"
              "74617030"
              "011100000030323a30303a30303a30303a30303a30310001000109000000000000000103000000000000"
              "00020000"
              "0000000000");
    EXPECT_EQ(hex(snapshot::encode(VmConfig{})), "01000000800000000000000000000000000000");
}

TEST(ConfigCodecs, EachReadsBackWhatItWrote) {
    const VmConfig c = everything_set();
    auto from_json = json::parse_vm_config(json::to_json(c));
    ASSERT_TRUE(from_json) << from_json.error().message;
    EXPECT_EQ(json::to_json(*from_json), json::to_json(c));
    auto from_state = snapshot::decode_config(snapshot::encode(c), state_sections::kConfig.version);
    ASSERT_TRUE(from_state) << from_state.error().message;
    EXPECT_EQ(snapshot::encode(*from_state), snapshot::encode(c));
    // The machine's cpu_template and huge_pages are not kept: only their defaults are valid.
    EXPECT_FALSE((*from_state)->machine.cpu_template);
}

TEST(ConfigCodecs, RefusedFieldsAreRefusedByName) {
    auto socket = json::parse_body<DriveConfig>(
        R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "socket": "/s"})");
    ASSERT_FALSE(socket);
    EXPECT_EQ(socket.error().message,
              "socket: vhost-user block devices are not supported by ember");
    EXPECT_TRUE(json::parse_body<DriveConfig>(
        R"({"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "socket": null})"));
    auto vsock = json::parse_vm_config(R"({"vsock": {"guest_cid": 3}})");
    ASSERT_FALSE(vsock);
    EXPECT_EQ(vsock.error().message, "vsock: not supported by ember");
}

TEST(ConfigCodecs, AStateFileListingTooManyDrivesIsRefused) {
    std::vector<uint8_t> bytes = snapshot::encode(VmConfig{});
    // machine-config's 10 bytes, no boot source, then the drives' count.
    bytes[11] = 65;
    auto r = snapshot::decode_config(bytes, state_sections::kConfig.version);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "config section lists more than 64 drives");
}

// Each struct's places in the state file run 0..n-1, once each, and `required` marks only fields
// that can be absent from JSON and have no default to fall back on (not an optional or a list).
template <typename T>
void expect_well_formed(const char* what) {
    T t{};
    std::multiset<int> places;
    config::describe(
        t, config::Overloaded{[](const config::Refused&) {},
                              [&](const config::Field& f, const auto& member) {
                                  using M = std::decay_t<decltype(member)>;
                                  if (f.state != config::kNotInState) places.insert(f.state);
                                  if (config::IsOptional<M>::value || config::IsVector<M>::value) {
                                      EXPECT_FALSE(f.required) << what << "." << f.name;
                                  }
                              }});
    int expected = 0;
    for (int place : places) EXPECT_EQ(place, expected++) << what << ": places must run 0..n-1";
}

TEST(ConfigCodecs, EveryDescriptionPlacesItsFieldsOnceEachWithNoGap) {
    expect_well_formed<TokenBucketConfig>("TokenBucketConfig");
    expect_well_formed<RateLimiterConfig>("RateLimiterConfig");
    expect_well_formed<BootSourceConfig>("BootSourceConfig");
    expect_well_formed<MachineConfig>("MachineConfig");
    expect_well_formed<DriveConfig>("DriveConfig");
    expect_well_formed<NetworkInterfaceConfig>("NetworkInterfaceConfig");
    expect_well_formed<VmConfig>("VmConfig");
}

}  // namespace
}  // namespace ember
