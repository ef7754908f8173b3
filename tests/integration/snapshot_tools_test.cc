// The snapshot tools on real and hostile files: ember-snapshot-info and ember-snapshot-merge.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/snapshot_ember.h"

namespace ember::testing {
namespace {

TEST_F(Snapshot, InfoToolDescribesAStateFileAndRefusesABadOne) {
    snapshot_a_ticking_guest();
    auto info = run_process({EMBER_SNAPSHOT_INFO, state}, kFailsafe);
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_NE(info.out.find("machine: 1 vCPUs, 32 MiB"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("vCPU 0: rip"), std::string::npos) << info.out;
    EXPECT_NE(info.out.find("memory: 1 regions, 4 KiB pages"), std::string::npos) << info.out;
    // Named from core/base/state_sections.h: the machine's sections and each device's.
    for (const char* name : {"section config", "section vcpu", "section memory layout",
                             "section serial", "section i8042"})
        EXPECT_NE(info.out.find(name), std::string::npos) << name << " in " << info.out;
    EXPECT_EQ(info.out.find("section ?"), std::string::npos) << info.out;
    // A device's section names its device.
    EXPECT_NE(info.out.find("bytes: i8042\n"), std::string::npos) << info.out;
    auto bad = run_process({EMBER_SNAPSHOT_INFO, files.write("bad.state", "nonsense")}, kFailsafe);
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("truncated"), std::string::npos) << bad.err;
}

// What is not a state file is refused with a message and exit code 1: no abort on a directory, no
// endless read of /dev/zero, no open() that waits for a FIFO's writer, no huge allocation.
TEST(SnapshotInfo, RefusesWhatIsNotARegularFileOfASaneSize) {
    TempDir dir;
    const std::string fifo = dir.path() + "/fifo", huge = dir.path() + "/huge.state";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    ASSERT_EQ(::truncate(dir.write("huge.state", "").c_str(), 65 << 20), 0);  // sparse
    for (const auto& [path, says] :
         {std::pair{dir.path(), std::string("not a regular file")},
          std::pair{std::string("/dev/zero"), std::string("not a regular file")},
          std::pair{fifo, std::string("not a regular file")},
          std::pair{huge, std::string("68157440 bytes is too large for a snapshot state file")}}) {
        auto r = run_process({EMBER_SNAPSHOT_INFO, path}, kFailsafe);
        EXPECT_FALSE(r.timed_out) << path;
        EXPECT_EQ(r.signal, 0) << path << ": " << r.err;
        EXPECT_EQ(r.exit_code, 1) << path << ": " << r.err;
        EXPECT_NE(r.err.find("ember-snapshot-info: " + path + ": " + says), std::string::npos)
            << r.err;
    }
}

TEST(SnapshotMerge, RefusesAFifoInsteadOfWaitingForItsOtherEnd) {
    TempDir dir;
    const std::string fifo = dir.path() + "/fifo", file = dir.write("diff.mem", "");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    for (const auto& [base, diff] : {std::pair{fifo, file}, std::pair{file, fifo}}) {
        auto r = run_process({EMBER_SNAPSHOT_MERGE, base, diff}, kFailsafe);
        EXPECT_FALSE(r.timed_out);
        EXPECT_EQ(r.exit_code, 1) << r.err;
        EXPECT_NE(r.err.find("ember-snapshot-merge: " + fifo + ": not a regular file"),
                  std::string::npos)
            << r.err;
    }
}

}  // namespace
}  // namespace ember::testing
