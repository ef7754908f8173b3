// A file written whole or not at all: the target keeps its old bytes until commit().
#include "vmm/base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/ember_process.h"

namespace ember {
namespace {

std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

int temporaries(const std::string& dir) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().find(".ember-tmp-") != std::string::npos) ++n;
    return n;
}

TEST(AtomicFile, CommitReplacesTheTargetWhole) {
    testing::TempDir dir;
    auto target = dir.write("vm.mem", "old");
    auto f = AtomicFile::create(target);
    ASSERT_TRUE(f) << f.error().message;
    ASSERT_EQ(::write(f->fd(), "new bytes", 9), 9);
    EXPECT_EQ(read(target), "old") << "untouched until commit";
    ASSERT_TRUE(f->commit());
    EXPECT_EQ(read(target), "new bytes");
    EXPECT_EQ(temporaries(dir.path()), 0);
    EXPECT_EQ(std::filesystem::status(target).permissions(),
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(AtomicFile, AnAbandonedWriteLeavesTheTargetAndNoTemporary) {
    testing::TempDir dir;
    auto target = dir.write("vm.state", "old");
    {
        auto f = AtomicFile::create(target);
        ASSERT_TRUE(f);
        ASSERT_EQ(::write(f->fd(), "half", 4), 4);
    }
    EXPECT_EQ(read(target), "old");
    EXPECT_EQ(temporaries(dir.path()), 0);
}

TEST(AtomicFile, ACrashMidWriteLeavesTheTargetAsItWas) {
    testing::TempDir dir;
    auto target = dir.write("vm.mem", "old");
    pid_t child = ::fork();
    if (child == 0) {
        auto f = AtomicFile::create(target);
        if (f) (void)!::write(f->fd(), "half", 4);
        ::_exit(0);  // no destructor, no commit: as if killed mid-write
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_EQ(read(target), "old");
    EXPECT_EQ(temporaries(dir.path()), 1) << "a crash can leave its temporary beside the target";
}

TEST(AtomicFile, AMissingDirectoryIsAClearError) {
    testing::TempDir dir;
    auto f = AtomicFile::create(dir.path() + "/missing/vm.state");
    ASSERT_FALSE(f);
    EXPECT_NE(f.error().message.find("missing/vm.state: No such file or directory"),
              std::string::npos)
        << f.error().message;
}

}  // namespace
}  // namespace ember
