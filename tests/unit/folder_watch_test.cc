// core/base/folder_watch: a waiter for a socket wakes when the socket is linked or renamed into its
// folder, when its other descriptor (the starting process's pidfd) says so, or at its timeout;
// a folder that cannot be watched is polled.
#include "core/base/folder_watch.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "core/base/unique_fd.h"
#include "tests/support/ember_process.h"

namespace ember {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using Woken = FolderWatch::Woken;

TEST(FolderWatch, ANameLinkedIntoTheFolderWakesIt) {
    testing::TempDir dir;
    const std::string staged = dir.write(".staged", "");
    FolderWatch watch = FolderWatch::of(dir.path() + "/api.sock");
    ASSERT_TRUE(watch.watching());
    ASSERT_EQ(::link(staged.c_str(), (dir.path() + "/api.sock").c_str()), 0);
    EXPECT_EQ(watch.wait(hours(1)), Woken::Folder);
    EXPECT_EQ(watch.wait(milliseconds(0)), Woken::Timeout) << "its events were read";
}

TEST(FolderWatch, ANameRenamedIntoTheFolderWakesIt) {
    testing::TempDir dir;
    const std::string staged = dir.write(".staged", "");
    FolderWatch watch = FolderWatch::of(dir.path() + "/uffd.sock");
    ASSERT_EQ(std::rename(staged.c_str(), (dir.path() + "/uffd.sock").c_str()), 0);
    EXPECT_EQ(watch.wait(hours(1)), Woken::Folder);
}

TEST(FolderWatch, TheOtherDescriptorWakesIt) {
    testing::TempDir dir;
    FolderWatch watch = FolderWatch::of(dir.path() + "/api.sock");
    UniqueFd ended(::eventfd(1, EFD_CLOEXEC));
    ASSERT_TRUE(ended.valid());
    EXPECT_EQ(watch.wait(hours(1), ended.get()), Woken::OtherFd);
}

TEST(FolderWatch, NothingMadeMeansItsTimeout) {
    testing::TempDir dir;
    FolderWatch watch = FolderWatch::of(dir.path() + "/api.sock");
    EXPECT_EQ(watch.wait(milliseconds(5)), Woken::Timeout);
}

// A jail's folder, say, which the jailer makes after the start: each wait is a poll's.
TEST(FolderWatch, AFolderNotThereYetIsPolled) {
    testing::TempDir dir;
    FolderWatch watch = FolderWatch::of(dir.path() + "/jail/root/run/api.sock");
    EXPECT_FALSE(watch.watching());
    EXPECT_EQ(watch.wait(hours(1)), Woken::Timeout);
}

// An instance kept from an earlier watch brings nothing of it: what the earlier folder saw, or sees
// later, wakes nobody watching another.
TEST(FolderWatch, AKeptInstanceWakesOnlyForWhatCameAfter) {
    testing::TempDir first, second;
    {
        FolderWatch earlier = FolderWatch::of(first.path() + "/a.sock");
        first.write("a.sock", "");
    }
    FolderWatch watch = FolderWatch::of(second.path() + "/b.sock");
    EXPECT_EQ(watch.wait(milliseconds(0)), Woken::Timeout);
    first.write("again.sock", "");
    EXPECT_EQ(watch.wait(milliseconds(0)), Woken::Timeout) << "the earlier watch was taken out";
    second.write("b.sock", "");
    EXPECT_EQ(watch.wait(hours(1)), Woken::Folder);
}

}  // namespace
}  // namespace ember
