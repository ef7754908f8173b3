#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/json/api_bodies.h"
#include "api/json/vm_config_json.h"

namespace ember::json {
namespace {

std::string error_of(const Result<VmConfig>& r) {
    return r ? "(parsed)" : r.error().message;
}

TEST(VmConfigJson, ParsesFirecrackersConfigFile) {
    auto config = parse_vm_config(R"({
      "boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0", "initrd_path": null},
      "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": false, "track_dirty_pages": true,
                         "huge_pages": "2M"},
      "drives": [{"drive_id": "rootfs", "path_on_host": "/r.ext4", "is_root_device": true,
                  "is_read_only": false, "cache_type": "Writeback", "io_engine": "Sync",
                  "rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 100},
                                   "ops": {"size": 10, "one_time_burst": 5, "refill_time": 1000}}}],
      "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}]
    })");
    ASSERT_TRUE(config) << error_of(config);
    EXPECT_EQ((*config)->boot_source->kernel_image_path, "/k");
    EXPECT_EQ((*config)->boot_source->boot_args, "console=ttyS0");
    EXPECT_FALSE((*config)->boot_source->initrd_path);
    EXPECT_EQ((*config)->machine.vcpu_count, 2u);
    EXPECT_EQ((*config)->machine.mem_size_mib, 256u);
    EXPECT_TRUE((*config)->machine.track_dirty_pages);
    EXPECT_EQ((*config)->machine.huge_pages, HugePages::Size2M);
    ASSERT_EQ((*config)->drives.size(), 1u);
    EXPECT_EQ((*config)->drives[0].cache_type, CacheType::Writeback);
    EXPECT_EQ((*config)->drives[0].io_engine, IoEngineType::Sync);
    EXPECT_EQ((*config)->drives[0].rate_limiter->ops->one_time_burst, 5u);
    ASSERT_EQ((*config)->network_interfaces.size(), 1u);
    EXPECT_EQ((*config)->network_interfaces[0].guest_mac, "06:00:ac:10:00:02");
}

TEST(VmConfigJson, EachErrorNamesTheField) {
    struct Case {
        const char* json;
        const char* expected;
    };
    const Case cases[] = {
        {R"([])", "expected a JSON object, got an array"},
        {R"({"x": 1})", "x: unknown field `x`"},
        {R"({"machine-config": {"vcpu_count": 1}})",
         "machine-config.mem_size_mib: missing field `mem_size_mib`"},
        {R"({"machine-config": {"vcpu_count": -1, "mem_size_mib": 1}})",
         "machine-config.vcpu_count: must not be negative"},
        {R"({"machine-config": {"vcpu_count": 1.5, "mem_size_mib": 1}})",
         "expected an unsigned integer, got a number"},
        {R"({"machine-config": {"vcpu_count": 0, "mem_size_mib": 64}})",
         "vcpu_count: must be between 1 and 32, got 0"},
        {R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 4294967296}})",
         "mem_size_mib: 4294967296 is too large"},
        {R"({"machine-config": {"vcpu_count": 3, "mem_size_mib": 64, "smt": true}})",
         "must be 1 or even when smt"},
        {R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "cpu_template": "T2"}})",
         "'T2' is not supported by ember, which ships none of Firecracker's static templates "
         "(deprecated there since v1.5): give the guest's CPU a custom template with PUT "
         "/cpu-config (the config file's \"cpu-config\"), or a fleet's template made by "
         "ember-cpu; only \"None\" is accepted here"},
        {R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "huge_pages": "1G"}})",
         "machine-config.huge_pages: unknown variant `1G`, expected `None` or `2M`"},
        {R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 63, "huge_pages": "2M"}})",
         "mem_size_mib: must be a multiple of 2 with huge_pages \"2M\", got 63"},
        {R"({"boot-source": {}})",
         "boot-source.kernel_image_path: missing field `kernel_image_path`"},
        {R"({"boot-source": {"kernel_image_path": 7}})",
         "boot-source.kernel_image_path: expected a string, got an integer"},
        {R"({"drives": {}})", "drives: expected an array, got an object"},
        {R"({"drives": [{"drive_id": "a-b", "path_on_host": "/x", "is_root_device": false}]})",
         "drive_id: 'a-b'"},
        {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "size": 1}]})",
         "drives[0].size: unknown field `size`"},
        {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": false, "io_engine": "Fast"}]})",
         "io_engine: unknown variant `Fast`, expected `Sync` or `Async`"},
        {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": true},
                        {"drive_id": "a", "path_on_host": "/y", "is_root_device": false}]})",
         "'a' appears twice"},
        {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": true},
                        {"drive_id": "b", "path_on_host": "/y", "is_root_device": true}]})",
         "more than one drive"},
        {R"({"drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": false,
                         "rate_limiter": {"bandwidth": {"size": 10}}}]})",
         "rate_limiter.bandwidth.refill_time: missing"},
        {R"({"network-interfaces": [{"iface_id": "e", "host_dev_name": "tap0", "guest_mac": "01:00:00:00:00"}]})",
         "not a MAC address"},
        {R"({"network-interfaces": [{"iface_id": "e", "host_dev_name": "a-very-long-tap-name"}]})",
         "1-15 characters"},
        // partuuid goes onto the kernel command line: no room for extra parameters.
        {R"({"drives": [{"drive_id": "r", "path_on_host": "/x", "is_root_device": true,
                         "partuuid": "0eaa91a0-01 init=/bin/sh"}]})",
         "partuuid: '0eaa91a0-01 init=/bin/sh' is not a partition UUID"},
        {R"({"drives": [{"drive_id": "r", "path_on_host": "/x", "is_root_device": true,
                         "partuuid": "0eaa91a0-01/PARTNROFF=x"}]})",
         "is not a partition UUID"},
        // A C string ends at the NUL: the path opened would not be the path given.
        {R"({"boot-source": {"kernel_image_path": "/k.elf\u0000/etc/shadow"}})",
         "boot-source.kernel_image_path: must not contain a NUL character"},
        {R"({"boot-source": {"kernel_image_path": "/k"},
             "drives": [{"drive_id": "r", "path_on_host": "/x\u0000y", "is_root_device": true}]})",
         "drives[0].path_on_host: must not contain a NUL character"},
        // Firecracker refuses a repeated key; a lookup alone would let the first copy win.
        {R"({"boot-source": {"kernel_image_path": "/k", "kernel_image_path": "/other"}})",
         "boot-source.kernel_image_path: duplicate field `kernel_image_path`"},
        {R"({"boot-source": {"kernel_image_path": "/k"}, "boot-source": {"kernel_image_path": "/j"}})",
         "boot-source: duplicate field `boot-source`"},
        {R"({"boot-source": {"kernel_image_path": "/k"},
             "drives": [{"drive_id": "a", "path_on_host": "/x", "is_root_device": false,
                         "rate_limiter": {"ops": {"size": 1, "refill_time": 1, "size": 2}}}]})",
         "drives[0].rate_limiter.ops.size: duplicate field `size`"},
        {R"({"vsock": {"guest_cid": 3}})", "vsock: not supported by ember"},
        {R"({"machine-config": )", "invalid JSON"},
        // Found by fuzz/json_fuzz: without it the document was taken, yet what GET /vm/config
        // writes for it did not parse back. Firecracker requires it too.
        {R"({})", "boot-source: missing field `boot-source`"},
        {R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}, "drives": []})",
         "boot-source: missing field `boot-source`"},
    };
    for (const auto& c : cases) {
        auto r = parse_vm_config(c.json);
        EXPECT_FALSE(r) << c.json;
        EXPECT_NE(error_of(r).find(c.expected), std::string::npos)
            << c.json << "\n  got: " << error_of(r);
    }
}

// Firecracker v1.7's config file names a custom CPU template's file; the template is read from it
// as PUT /cpu-config reads a body, and an error names the path and the field.
// A value that fails its check is quoted by its first 64 bytes and its length: an id of a
// megabyte (from a body, or a store's state file) makes an error line, not a megabyte of log.
TEST(VmConfigJson, AnErrorQuotesALongValueByItsHeadAlone) {
    const std::string id(1 << 20, '-');
    auto config = parse_vm_config(R"({"drives": [{"drive_id": ")" + id +
                                  R"(", "path_on_host": "/x", "is_root_device": false}]})");
    const std::string error = error_of(config);
    EXPECT_LT(error.size(), 256u) << error.substr(0, 300);
    EXPECT_NE(error.find("'" + id.substr(0, 64) + "...' (1048576 bytes) must be 1-64 characters"),
              std::string::npos)
        << error.substr(0, 300);
}

TEST(VmConfigJson, CpuConfigIsATemplateFileReadThroughTheCaller) {
    const std::string doc =
        R"({"boot-source": {"kernel_image_path": "/k"}, "cpu-config": "/t.json"})";
    std::vector<std::string> asked;
    auto reader = [&](std::string body) {
        return [&asked, body](const std::string& path) -> Result<std::string> {
            asked.push_back(path);
            if (body.empty()) return fail(path + ": No such file or directory");
            return body;
        };
    };
    auto config = parse_vm_config(
        doc, reader(R"({"msr_modifiers": [{"addr": "0x277", "bitmap": "0b0111"}]})"));
    ASSERT_TRUE(config) << error_of(config);
    EXPECT_EQ(asked, std::vector<std::string>{"/t.json"});
    ASSERT_TRUE((*config)->cpu_config);
    ASSERT_EQ((*config)->cpu_config->msr_modifiers.size(), 1u);
    EXPECT_EQ((*config)->cpu_config->msr_modifiers[0].addr, 0x277u);
    EXPECT_EQ((*config)->cpu_config->msr_modifiers[0].bitmap,
              (BitmapModifier{.mask = 0xf, .value = 7}));
    EXPECT_FALSE((*config)->cpu_config_file);

    EXPECT_EQ(error_of(parse_vm_config(doc, reader(""))),
              "cpu-config: /t.json: No such file or directory");
    EXPECT_EQ(error_of(parse_vm_config(
                  doc, reader(R"({"msr_modifiers": [{"addr": "631", "bitmap": "0b1"}]})"))),
              "cpu-config /t.json: msr_modifiers[0].addr: \"631\" is not a 0x (or 0b) number of at "
              "most 4294967295");
    EXPECT_EQ(error_of(parse_vm_config(doc)),
              "cpu-config /t.json: a template file is read only from --config-file");
    EXPECT_EQ(error_of(parse_vm_config(R"({"boot-source": {"kernel_image_path": "/k"},
                                           "cpu-config": {"msr_modifiers": []}})",
                                       reader("{}"))),
              "cpu-config: expected a string, got an object");
    // What GET /vm/config writes reads back, without a file.
    EXPECT_TRUE(
        parse_vm_config(R"({"boot-source": {"kernel_image_path": "/k"}, "cpu-config": null})"));
}

TEST(VmConfigJson, SingleObjectBodiesForTheApi) {
    auto m = parse_body<MachineConfig>(R"({"vcpu_count": 4, "mem_size_mib": 512})");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->vcpu_count, 4u);
    EXPECT_FALSE(parse_body<BootSourceConfig>(R"({"kernel_image_path": "/k", "initrd": "/i"})"));
}

TEST(VmConfigJson, BootArgsLongerThanFirecrackersLimitAreRefusedWithTheBootSource) {
    auto config = [](size_t n) {
        return R"({"boot-source": {"kernel_image_path": "/k", "boot_args": ")" +
               std::string(n, 'a') + "\"}}";
    };
    // Firecracker's CMDLINE_MAX_SIZE is 2048 with the NUL.
    EXPECT_TRUE(parse_vm_config(config(2047)));
    auto r = parse_vm_config(config(2048));
    ASSERT_FALSE(r);
    EXPECT_NE(error_of(r).find("boot-source.boot_args: 2048 bytes, more than the 2047"),
              std::string::npos)
        << error_of(r);
}

TEST(VmConfigJson, ApiBodiesRefuseRepeatedFieldsAndNuls) {
    auto load = parse_body<LoadSnapshot>(
        R"({"snapshot_path": "/s", "mem_file_path": "/m", "snapshot_path": "/t"})");
    ASSERT_FALSE(load);
    EXPECT_EQ(load.error().message, "snapshot_path: duplicate field `snapshot_path`");
    auto backend = parse_body<LoadSnapshot>(
        R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m\u0000"}})");
    ASSERT_FALSE(backend);
    EXPECT_EQ(backend.error().message,
              "mem_backend.backend_path: must not contain a NUL character (\\u0000)");
    EXPECT_FALSE(parse_body<PutMetrics>(R"({"metrics_path": "/m", "metrics_path": "/n"})"));
}

TEST(VmConfigJson, PartitionUuidsLinuxTakes) {
    for (const char* p :
         {"0eaa91a0-01", "0EAA91A0-01/PARTNROFF=2", "c2a3b4d5-1234-4e5f-8a9b-0123456789ab"}) {
        const std::string json = R"({"boot-source": {"kernel_image_path": "/k"},
                                     "drives": [{"drive_id": "r", "path_on_host": "/x",
                                     "is_root_device": true, "partuuid": ")" +
                                 std::string(p) + "\"}]}";
        EXPECT_TRUE(parse_vm_config(json)) << p;
    }
}

}  // namespace
// A ValidVmConfig is only ever one validate() passed: nothing configured yet is one, and check()
// refuses what validate() refuses, with its words.
TEST(ValidVmConfig, IsMadeOnlyFromWhatValidatePasses) {
    EXPECT_TRUE(validate(ValidVmConfig().get()));
    VmConfig two_roots;
    for (const char* id : {"a", "b"}) {
        DriveConfig d;
        d.drive_id = id;
        d.path_on_host = "/dev/null";
        d.is_root_device = true;
        two_roots.drives.push_back(d);
    }
    auto refused = ValidVmConfig::check(two_roots);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message, validate(two_roots).error().message);
    two_roots.drives.pop_back();
    auto taken = ValidVmConfig::check(two_roots);
    ASSERT_TRUE(taken) << taken.error().message;
    EXPECT_EQ(taken->get().drives.size(), 1u);
}

}  // namespace ember::json
