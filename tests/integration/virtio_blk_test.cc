// virtio-blk end to end: the freestanding guest's driver writes, flushes and reads back through a
// real ember process; the host then checks the image file.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

std::string drive_config(const std::string& image, const std::string& engine,
                         const std::string& extra = "") {
    return R"({"boot-source": {"kernel_image_path": ")" + std::string(EMBER_GUEST_DIR) +
           R"(/virtio_blk.elf"}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
              "drives": [{"drive_id": "data", "path_on_host": ")" +
           image + R"(", "is_root_device": false, "cache_type": "Writeback", "io_engine": ")" +
           engine + "\"" + extra + "}]}";
}

std::string read_range(const std::string& path, size_t offset, size_t len) {
    std::ifstream in(path, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    std::string s(len, '\0');
    in.read(s.data(), static_cast<std::streamsize>(len));
    return s;
}

// The value of "field" in the object "group" of a metrics line, or -1.
long long metric(const std::string& line, const std::string& group, const std::string& field) {
    auto g = line.find("\"" + group + "\":{");
    if (g == std::string::npos) return -1;
    auto end = line.find('}', g);
    auto f = line.find("\"" + field + "\":", g);
    if (f == std::string::npos || f > end) return -1;
    return std::stoll(line.substr(f + field.size() + 3));
}

class VirtioBlk : public ::testing::TestWithParam<std::string> {};

TEST_P(VirtioBlk, GuestWritesFlushesAndReadsBackAndTheImageHoldsIt) {
    TempDir dir;
    auto image = dir.write("disk.img", std::string(1 << 20, '\0'));
    auto config = dir.write("vm.json", drive_config(image, GetParam()));
    const std::string metrics = dir.path() + "/metrics.json";
    auto r = run_process(
        {EMBER_BINARY, "--no-api", "--config-file", config, "--metrics-path", metrics}, kFailsafe);
    ASSERT_FALSE(r.timed_out) << r.out << r.err;
    EXPECT_EQ(r.out,
              "virtio-blk: capacity 2048 sectors\n"
              "virtio-blk: pattern written, flushed and read back\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string expected(4096, '\0');
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<char>(i * 7 + 3);
    EXPECT_EQ(read_range(image, 8 * 512, 4096), expected);
    EXPECT_EQ(read_range(image, 0, 4096), std::string(4096, '\0')) << "nothing else was written";

    // Firecracker's names: the drive's own group and the aggregate, as the exit flush wrote them.
    std::ifstream m(metrics);
    std::string line;
    ASSERT_TRUE(std::getline(m, line)) << "metrics are written at exit";
    EXPECT_EQ(metric(line, "block_data", "write_bytes"), 4096) << line;
    EXPECT_EQ(metric(line, "block_data", "write_count"), 1) << line;
    EXPECT_EQ(metric(line, "block_data", "flush_count"), 1) << line;
    EXPECT_GE(metric(line, "block_data", "read_bytes"), 4096) << line;
    EXPECT_EQ(metric(line, "block_data", "invalid_reqs_count"), 1) << "the read past the end";
    EXPECT_EQ(metric(line, "block", "write_bytes"), 4096) << "the aggregate: " << line;
}

INSTANTIATE_TEST_SUITE_P(Engines, VirtioBlk, ::testing::Values("Async", "Sync"));

// Where io_uring is missing or forbidden (ENOSYS, EPERM: an old kernel, io_uring_disabled, a
// container's seccomp profile), an Async drive falls back to Sync with a log line, and works.
TEST(VirtioBlkFallback, AsyncFallsBackToSyncWhereIoUringIsUnavailable) {
    for (const char* err : {"38", "1"}) {
        TempDir dir;
        auto image = dir.write("disk.img", std::string(1 << 20, '\0'));
        auto config = dir.write("vm.json", drive_config(image, "Async"));
        auto r = run_process(
            {EMBER_WITHOUT_IO_URING, err, EMBER_BINARY, "--no-api", "--config-file", config},
            kFailsafe);
        ASSERT_FALSE(r.timed_out) << r.out << r.err;
        EXPECT_EQ(r.out,
                  "virtio-blk: capacity 2048 sectors\n"
                  "virtio-blk: pattern written, flushed and read back\n")
            << r.err;
        EXPECT_EQ(r.exit_code, 0) << r.err;
        EXPECT_NE(r.err.find("drive 'data': io_uring is unavailable (io_uring_queue_init: "),
                  std::string::npos)
            << r.err;
        EXPECT_NE(r.err.find("using io_engine Sync"), std::string::npos) << r.err;
    }
}

TEST(VirtioBlkSlots, BootTimerTakesTheFirstSlot) {
    TempDir dir;
    auto image = dir.write("disk.img", std::string(1 << 20, '\0'));
    auto config = dir.write("vm.json", drive_config(image, "Async"));
    // The guest looks for its disk at 0xd0000000; with the boot timer there, it finds none.
    auto r =
        run_process({EMBER_BINARY, "--no-api", "--boot-timer", "--config-file", config}, kFailsafe);
    EXPECT_EQ(r.out, "virtio-blk: FAIL: no virtio-blk device at 0xd0000000\n");
}

TEST(VirtioBlkConfig, MissingImageIsAClearError) {
    TempDir dir;
    auto config = dir.write("vm.json", drive_config(dir.path() + "/nope.img", "Async"));
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines_containing(r.err, ":ERROR] No such file or directory (os error 2) " +
                                                dir.path() + "/nope.img (drive 'data')"),
              1)
        << r.err;
}

TEST(VirtioBlkConfig, ImageNotAMultipleOfASector) {
    TempDir dir;
    auto image = dir.write("odd.img", std::string(1000, '\0'));
    auto config = dir.write("vm.json", drive_config(image, "Async"));
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_EQ(count_lines_containing(r.err, "is not a multiple of 512"), 1) << r.err;
}

}  // namespace
}  // namespace ember::testing
