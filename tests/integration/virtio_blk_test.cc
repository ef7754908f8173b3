// virtio-blk end to end: the freestanding guest's driver writes, flushes and reads back through a
// real ember process; the host then checks the image file.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <optional>

#include "tests/support/api_ember.h"
#include "tests/support/ember_process.h"
#include "tests/support/fuse_file.h"

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
    EXPECT_EQ(r.out, "virtio-blk: FAIL: no virtio-blk device at 0x00000000d0000000\n");
}

// A guest (blk_stall) with two drives, each a FUSE file: the first's image one whose reads and
// writes the test holds unanswered, as a hung network file system or a dying disk would, with 21
// reads in flight (more than io-wq's 4 bounded workers a CPU on a small host); the second one
// that answers, and whose requests therefore go through io-wq too (FUSE takes no RWF_NOWAIT).
class VirtioBlkStall : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string mount_point = dir.path() + "/fuse";
        ASSERT_EQ(::mkdir(mount_point.c_str(), 0755), 0);
        std::string contents(4 << 20, '\0');
        for (size_t i = 0; i < contents.size(); ++i) contents[i] = static_cast<char>(i % 251);
        std::string why;
        image = FuseFile::mount(mount_point, contents, why);
        ASSERT_TRUE(image) << why;
        image->hold();
        const std::string healthy_mount = dir.path() + "/healthy";
        ASSERT_EQ(::mkdir(healthy_mount.c_str(), 0755), 0);
        healthy_image = FuseFile::mount(healthy_mount, std::string(1 << 20, '\0'), why);
        ASSERT_TRUE(healthy_image) << why;
        const std::string healthy = healthy_image->path();
        auto config =
            dir.write("vm.json", R"({"boot-source": {"kernel_image_path": ")" + guest("blk_stall") +
                                     R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": 16},
                              "drives": [{"drive_id": "stalled", "path_on_host": ")" +
                                     image->path() + R"(", "is_root_device": false},
                                         {"drive_id": "healthy", "path_on_host": ")" +
                                     healthy + R"(", "is_root_device": false}]})");
        ember.emplace(std::vector<std::string>{"--config-file", config});
        console = ember->dir.path() + "/console";
    }
    int ticks() const { return count_lines_containing(read_file(console), "healthy drive tick"); }
    template <typename Pred>
    bool wait_until(Pred done) const {
        const auto deadline = std::chrono::steady_clock::now() + kFailsafe;
        while (!done() && std::chrono::steady_clock::now() < deadline && !ember->ended())
            std::this_thread::sleep_for(20ms);
        return done();
    }
    // Once the guest's read of the first drive is held: the second drive still serves the guest.
    void expect_the_healthy_drive_serves() {
        ASSERT_TRUE(image->wait_held(1)) << read_file(console) << ember->log();
        const int at_hold = ticks();
        ASSERT_TRUE(wait_until([&] { return ticks() >= at_hold + 3; }))
            << "the healthy drive stopped with the stalled one:\n"
            << read_file(console) << ember->log();
    }

    // Once the image answers: the guest's held reads complete with its bytes, and it ends well.
    void expect_the_held_reads_answered_once_released() {
        image->release();
        ASSERT_TRUE(wait_until([&] {
            return read_file(console).find("stalled drive answered, bytes ok") != std::string::npos;
        })) << read_file(console)
            << ember->log();
        EXPECT_EQ(ember->wait(), 0) << ember->log();
    }

    TempDir dir;
    // Ended after the image: a failed test first has the image answer what it holds, and ember is
    // not left waiting on it.
    std::optional<ApiEmber> ember;
    std::unique_ptr<FuseFile> image, healthy_image;
    std::string console;
};

// The API still answers, the guest's other drive still serves, and its read is answered, with the
// image's bytes, once the image answers again.
TEST_F(VirtioBlkStall, AStalledDriveStallsNeitherTheApiNorTheOtherDrive) {
    ASSERT_NO_FATAL_FAILURE(expect_the_healthy_drive_serves());
    // Calls the VMM thread itself answers (GET / would be answered from the API thread's copy).
    auto c = ember->client();
    EXPECT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    EXPECT_EQ(call(c, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
    const HttpReply info = call(c, "GET", "/");
    EXPECT_NE(info.body.find("\"state\":\"Running\""), std::string::npos) << info.body;
    EXPECT_EQ(read_file(console).find("stalled drive answered"), std::string::npos)
        << "the read was answered while the image held it";
    EXPECT_EQ(image->answered(), 0u);

    ASSERT_NO_FATAL_FAILURE(expect_the_held_reads_answered_once_released());
    EXPECT_GE(image->answered(), 1u);
    EXPECT_EQ(read_file(console).find("FAIL"), std::string::npos) << read_file(console);
}

// SIGTERM: ember's own end waits for the stalled drive at most 500 ms and says what it left. The
// exit itself then waits on the kernel: a FUSE request its daemon has read ends only when the
// daemon answers or its connection ends (as on a hard-mounted NFS), for ember's io-wq threads as
// for any thread. Once the image answers, ember ends with status 0.
TEST_F(VirtioBlkStall, SigtermEndsEmbersOwnWaitForAStalledDrive) {
    ASSERT_NO_FATAL_FAILURE(expect_the_healthy_drive_serves());
    ASSERT_EQ(::kill(ember->pid, SIGTERM), 0);
    const std::string left =
        "drive 'stalled': its image left 21 requests unanswered for 500 ms; the device ends "
        "without them";
    ASSERT_TRUE(wait_until([&] { return count_lines_containing(ember->log(), left) == 1; }))
        << ember->log();
    EXPECT_EQ(image->answered(), 0u);
    image->release();
    EXPECT_EQ(ember->wait(), 0) << ember->log();
}

// A snapshot waits for a stalled drive a bounded time, then fails by the drive's name and leaves
// no file; ember goes on serving, the VM stays paused and resumes, and the read is answered once
// the image answers.
TEST_F(VirtioBlkStall, ASnapshotFailsByTheStalledDrivesNameAndEmberGoesOn) {
    ASSERT_NO_FATAL_FAILURE(expect_the_healthy_drive_serves());
    auto c = ember->client();
    ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Paused"})").status, 204);
    const std::string state = dir.path() + "/vm.state", memory = dir.path() + "/vm.mem";
    expect_fault(
        call(c, "PUT", "/snapshot/create",
             R"({"snapshot_path": ")" + state + R"(", "mem_file_path": ")" + memory + R"("})"),
        "snapshot/create: drive 'stalled': its image has left 21 requests unanswered for "
        "5 s");
    EXPECT_NE(::access(state.c_str(), F_OK), 0) << "no state file";
    EXPECT_NE(::access(memory.c_str(), F_OK), 0) << "no memory file";
    const HttpReply info = call(c, "GET", "/");
    EXPECT_NE(info.body.find("\"state\":\"Paused\""), std::string::npos) << info.body;
    ASSERT_EQ(call(c, "PATCH", "/vm", R"({"state": "Resumed"})").status, 204);

    ASSERT_NO_FATAL_FAILURE(expect_the_held_reads_answered_once_released());
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
