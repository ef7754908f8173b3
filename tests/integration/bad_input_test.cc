// Every kind of bad input from outside ends ember with one clear error line and a non-zero exit,
// never a crash or a hang.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

std::string hello() {
    return std::string(EMBER_GUEST_DIR) + "/hello.elf";
}

ProcessResult run_config(const TempDir& dir, const std::string& json) {
    auto config = dir.write("vm.json", json);
    return run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
}

// Asserts exit code 1, no signal, no guest output, and exactly one error line naming `needle`.
void expect_one_error(const ProcessResult& r, const std::string& needle) {
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.signal, 0) << "crashed: " << r.err;
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(count_lines_containing(r.err, ":ERROR] "), 1) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, needle), 1) << "expected '" << needle << "' in:\n"
                                                        << r.err;
}

TEST(BadInput, MissingConfigFile) {
    auto r =
        run_process({EMBER_BINARY, "--no-api", "--config-file", "/nonexistent/vm.json"}, kFailsafe);
    expect_one_error(r, "/nonexistent/vm.json: No such file or directory");
}

TEST(BadInput, ConfigFileTooLarge) {
    TempDir dir;
    expect_one_error(run_config(dir, std::string(2 << 20, ' ') + "{}"),
                     "larger than the 1048576-byte limit");
}

TEST(BadInput, ConfigFileIsADirectory) {
    TempDir dir;
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", dir.path()}, kFailsafe);
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, ":ERROR] --config-file"), 1) << r.err;
}

TEST(BadInput, MalformedJson) {
    TempDir dir;
    expect_one_error(run_config(dir, R"({"boot-source": {"kernel_image_path": )"), "invalid JSON");
}

TEST(BadInput, UnknownTopLevelField) {
    TempDir dir;
    expect_one_error(run_config(dir, R"({"boot-sauce": {}})"),
                     "boot-sauce: unknown field `boot-sauce`");
}

TEST(BadInput, UnknownNestedFieldIsNamedByItsPath) {
    TempDir dir;
    expect_one_error(
        run_config(dir, R"({"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "vcpus": 2}})"),
        "machine-config.vcpus: unknown field `vcpus`");
}

TEST(BadInput, WrongType) {
    TempDir dir;
    expect_one_error(
        run_config(dir, R"({"machine-config": {"vcpu_count": "two", "mem_size_mib": 64}})"),
        "machine-config.vcpu_count: expected an unsigned integer, got a string");
}

TEST(BadInput, VcpuCountOutOfRange) {
    TempDir dir;
    auto json = R"({"boot-source": {"kernel_image_path": ")" + hello() +
                R"("}, "machine-config": {"vcpu_count": 33, "mem_size_mib": 64}})";
    expect_one_error(run_config(dir, json), "vcpu_count: must be between 1 and 32, got 33");
}

TEST(BadInput, KernelThatIsNeitherElfNorBzImage) {
    TempDir dir;
    auto kernel = dir.write("kernel.txt", std::string(4096, 'x'));
    expect_one_error(run_config(dir, guest_config(kernel)),
                     "is neither an ELF vmlinux nor a bzImage");
}

TEST(BadInput, MissingKernel) {
    TempDir dir;
    expect_one_error(run_config(dir, guest_config("/nonexistent/vmlinux")),
                     "kernel /nonexistent/vmlinux: No such file or directory");
}

// A FIFO's open() would wait for a writer for ever, on the thread that also serves SIGTERM.
std::string fifo(const TempDir& dir, const std::string& name) {
    std::string path = dir.path() + "/" + name;
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
    return path;
}

TEST(BadInput, KernelThatIsAFifo) {
    TempDir dir;
    auto kernel = fifo(dir, "vmlinux");
    expect_one_error(run_config(dir, guest_config(kernel)),
                     "kernel " + kernel + ": not a regular file");
}

TEST(BadInput, InitrdThatIsAFifo) {
    TempDir dir;
    auto initrd = fifo(dir, "initrd");
    expect_one_error(run_config(dir, R"({"boot-source": {"kernel_image_path": ")" + hello() +
                                         R"(", "initrd_path": ")" + initrd +
                                         R"("}, "machine-config": {"vcpu_count": 1, )"
                                         R"("mem_size_mib": 16}})"),
                     "initrd " + initrd + ": not a regular file");
}

TEST(BadInput, ReadOnlyDriveThatIsAFifo) {
    TempDir dir;
    auto image = fifo(dir, "disk.img");
    std::string json = guest_config(hello());
    json.insert(json.size() - 1, R"(, "drives": [{"drive_id": "data", "path_on_host": ")" + image +
                                     R"(", "is_root_device": false, "is_read_only": true}])");
    expect_one_error(run_config(dir, json), "not a regular file or block device " + image);
}

TEST(BadInput, TruncatedElfKernel) {
    TempDir dir;
    std::string elf =
        "\x7f"
        "ELF\x02\x01\x01";
    elf.resize(40, '\0');
    auto kernel = dir.write("vmlinux", elf);
    expect_one_error(run_config(dir, guest_config(kernel)), "ELF file too short");
}

TEST(BadInput, MemoryTooSmallForTheKernel) {
    TempDir dir;
    // The hello guest loads at 1 MiB: 1 MiB of RAM cannot hold it.
    expect_one_error(run_config(dir, guest_config(hello(), 1)),
                     "kernel needs at least 2 MiB of guest memory");
}

TEST(BadInput, CommandLineTooLong) {
    TempDir dir;
    expect_one_error(run_config(dir, guest_config(hello(), 16, std::string(3000, 'a'))),
                     "kernel command line is");
}

TEST(BadInput, UnknownCliArgument) {
    auto r = run_process({EMBER_BINARY, "--no-api", "--frobnicate"}, kFailsafe);
    expect_one_error(r, "unknown argument '--frobnicate'");
}

}  // namespace
}  // namespace ember::testing

namespace ember::testing {
namespace {

// A line someone would like ember's log to show: Firecracker's layout, as a reader of it parses.
const std::string kForged = "2026-01-01T00:00:00.000000000 [anonymous-instance:ember:ERROR] forged";

// Every line of `log` starts with ember's own time stamp, not with a forger's.
void expect_no_forged_line(const std::string& log) {
    size_t start = 0;
    for (size_t end; (end = log.find('\n', start)) != std::string::npos; start = end + 1)
        EXPECT_NE(log.compare(start, kForged.size(), kForged), 0) << "forged:\n" << log;
    EXPECT_NE(log.find("\\n" + kForged), std::string::npos) << "escaped, not lost:\n" << log;
}

// A newline in a string of the config file, or of the command line, is written to the log as an
// escape, as the same string sent through the API is: no string from outside forges a line.
TEST(BadInput, ANewlineInAConfigFilesPathForgesNoLogLine) {
    TempDir dir;
    auto r = run_config(dir, R"({"boot-source": {"kernel_image_path": ")" + hello() +
                                 R"("}, "drives": [{"drive_id": "rootfs", "path_on_host": ")" +
                                 dir.path() + R"(/missing\n)" + kForged +
                                 R"(", "is_root_device": true}]})");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    expect_no_forged_line(r.err);
}

TEST(BadInput, ANewlineInTheIdOrTheConfigFilesOwnPathForgesNoLogLine) {
    TempDir dir;
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"--id", "vm\n" + kForged},
          std::vector<std::string>{"--config-file", dir.path() + "/none\n" + kForged}}) {
        std::vector<std::string> argv = {EMBER_BINARY, "--no-api"};
        argv.insert(argv.end(), args.begin(), args.end());
        if (args[0] == "--id") argv.insert(argv.end(), {"--config-file", "/nonexistent.json"});
        auto r = run_process(argv, kFailsafe);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        expect_no_forged_line(r.err);
    }
}

}  // namespace
}  // namespace ember::testing
