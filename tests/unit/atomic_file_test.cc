// A file written whole or not at all: the target keeps its old bytes until commit().
#include "core/base/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
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

AtomicFile written(const std::string& path, const std::string& bytes) {
    auto f = AtomicFile::create(path);
    EXPECT_TRUE(f) << f.error().message;
    EXPECT_EQ(::write(f->fd(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    return std::move(*f);
}

ino_t inode(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(AtomicFile, APairIsCommittedWhole) {
    testing::TempDir dir;
    auto mem = dir.write("vm.mem", "old memory");
    auto state = dir.write("vm.state", "old state");
    auto m = written(mem, "new memory");
    auto s = written(state, "new state");
    ASSERT_TRUE(AtomicFile::commit_pair(m, s));
    EXPECT_EQ(read(mem), "new memory");
    EXPECT_EQ(read(state), "new state");
    EXPECT_EQ(temporaries(dir.path()), 0) << "the previous memory file's second name is gone too";
}

// The second rename fails after the first has been made (here: a directory where the second file
// goes); the first target gets its previous file back, the very inode a VM may map.
TEST(AtomicFile, APairWhoseSecondRenameFailsLeavesThePreviousPair) {
    testing::TempDir dir;
    auto mem = dir.write("vm.mem", "old memory");
    const ino_t old_inode = inode(mem);
    const std::string state = dir.path() + "/vm.state";
    ASSERT_EQ(::mkdir(state.c_str(), 0700), 0);
    {
        auto m = written(mem, "new memory");
        auto s = written(state, "new state");
        auto r = AtomicFile::commit_pair(m, s);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find(state + ": Is a directory"), std::string::npos)
            << r.error().message;
    }
    EXPECT_EQ(read(mem), "old memory");
    EXPECT_EQ(inode(mem), old_inode);
    EXPECT_EQ(temporaries(dir.path()), 0);

    // With no previous first file, the new one goes again.
    const std::string fresh = dir.path() + "/fresh.mem";
    {
        auto f = written(fresh, "new memory");
        auto s = written(state, "new state");
        ASSERT_FALSE(AtomicFile::commit_pair(f, s));
    }
    EXPECT_FALSE(std::filesystem::exists(fresh));
    EXPECT_EQ(temporaries(dir.path()), 0);
}

int leftovers(const std::string& dir) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        if (e.path().filename().string().find(".ember-") != std::string::npos) ++n;
    return n;
}

TEST(AtomicFile, WhatAKilledWriterLeftGoesAtTheNextCreateAtItsTarget) {
    testing::TempDir dir;
    auto target = dir.write("vm.mem", "old");
    for (int i = 0; i < 3; ++i) {
        pid_t child = ::fork();
        if (child == 0) {
            auto f = AtomicFile::create(target);
            if (f) (void)!::write(f->fd(), "half", 4);
            ::_exit(0);  // as if killed mid-write
        }
        ASSERT_EQ(::waitpid(child, nullptr, 0), child);
    }
    ASSERT_EQ(temporaries(dir.path()), 1) << "each killed create removed the one before";
    auto f = written(target, "new");
    EXPECT_EQ(temporaries(dir.path()), 1) << "only the live writer's own";
    ASSERT_TRUE(f.commit());
    EXPECT_EQ(read(target), "new");
    EXPECT_EQ(leftovers(dir.path()), 0);
}

// Another writer's temporary, alive (here in this very process, through another descriptor), is
// not taken for a dead one's.
TEST(AtomicFile, ALiveWritersTemporaryIsLeftAlone) {
    testing::TempDir dir;
    auto target = dir.write("vm.state", "old");
    auto first = written(target, "first");
    auto second = written(target, "second");
    EXPECT_EQ(temporaries(dir.path()), 2);
    ASSERT_TRUE(second.commit());
    ASSERT_TRUE(first.commit());
    EXPECT_EQ(read(target), "first");
    EXPECT_EQ(leftovers(dir.path()), 0);
}

class KilledPairCommit : public ::testing::TestWithParam<AtomicFile::PairStep> {};

// A create killed after each step of its pair's commit, as SIGKILL would: what it left is found
// and undone, and the pair at the paths is whole, the previous one unless both new files were in
// place (then the new one), the very inode a VM may map.
TEST_P(KilledPairCommit, LeavesAWholePairOnceRecovered) {
    const AtomicFile::PairStep killed_after = GetParam();
    for (bool had_pair : {true, false}) {
        testing::TempDir dir;
        const std::string mem = dir.path() + "/vm.mem", state = dir.path() + "/vm.state";
        if (had_pair) {
            dir.write("vm.mem", "old memory");
            dir.write("vm.state", "old state");
        }
        const ino_t old_inode = inode(mem);
        pid_t child = ::fork();
        if (child == 0) {
            auto m = written(mem, "new memory");
            auto s = written(state, "new state");
            (void)AtomicFile::commit_pair(m, s, [&](AtomicFile::PairStep step) {
                if (step == killed_after) ::_exit(0);
            });
            ::_exit(1);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "killed where asked";
        if (killed_after != AtomicFile::PairStep::Done) {
            EXPECT_GT(leftovers(dir.path()), 0) << "a kill leaves files behind";
        }
        AtomicFile::recover_pair(mem, state);
        EXPECT_EQ(leftovers(dir.path()), temporaries(dir.path()))
            << "only the temporary files are left, for the next create; had a pair: " << had_pair;
        const bool new_pair = killed_after >= AtomicFile::PairStep::SecondPlaced;
        if (new_pair) {
            EXPECT_EQ(read(mem), "new memory");
            EXPECT_EQ(read(state), "new state");
        } else if (had_pair) {
            EXPECT_EQ(read(mem), "old memory");
            EXPECT_EQ(read(state), "old state");
            EXPECT_EQ(inode(mem), old_inode);
        } else {
            EXPECT_FALSE(std::filesystem::exists(mem)) << "no half pair";
            EXPECT_FALSE(std::filesystem::exists(state));
        }
        // And the next create at the paths goes through, and removes what was left.
        auto m = written(mem, "newer memory");
        auto s = written(state, "newer state");
        ASSERT_TRUE(AtomicFile::commit_pair(m, s));
        EXPECT_EQ(leftovers(dir.path()), 0);
        // A commit finds a kill's leftovers itself, with no recover_pair() first.
        if (killed_after == AtomicFile::PairStep::FirstPlaced && had_pair) {
            pid_t again = ::fork();
            if (again == 0) {
                auto m2 = written(mem, "lost memory");
                auto s2 = written(state, "lost state");
                (void)AtomicFile::commit_pair(m2, s2, [&](AtomicFile::PairStep step) {
                    if (step == killed_after) ::_exit(0);
                });
                ::_exit(1);
            }
            ASSERT_EQ(::waitpid(again, nullptr, 0), again);
            auto m3 = written(mem, "newest memory");
            auto s3 = written(state, "newest state");
            ASSERT_TRUE(AtomicFile::commit_pair(m3, s3));
            EXPECT_EQ(read(mem), "newest memory");
            EXPECT_EQ(read(state), "newest state");
            EXPECT_EQ(leftovers(dir.path()), 0);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(EachStep, KilledPairCommit,
                         ::testing::Values(AtomicFile::PairStep::PreviousKept,
                                           AtomicFile::PairStep::SecondNamedForPair,
                                           AtomicFile::PairStep::FirstPlaced,
                                           AtomicFile::PairStep::SecondPlaced,
                                           AtomicFile::PairStep::Done));

// recover_pair() leaves a live writer's pair commit alone: here this process is the writer,
// stopped after the first rename, and another process's recovery finds the directory's lock held
// (for a second) and removes nothing.
TEST(AtomicFile, ALiveWritersPairCommitIsNotUndone) {
    testing::TempDir dir;
    const std::string mem = dir.write("vm.mem", "old memory");
    const std::string state = dir.write("vm.state", "old state");
    auto m = written(mem, "new memory");
    auto s = written(state, "new state");
    ASSERT_TRUE(AtomicFile::commit_pair(m, s, [&](AtomicFile::PairStep step) {
        if (step != AtomicFile::PairStep::FirstPlaced) return;
        pid_t child = ::fork();
        if (child == 0) ::_exit(AtomicFile::recover_pair(mem, state));
        int status = 0;
        ASSERT_EQ(::waitpid(child, &status, 0), child);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "it removed nothing";
    }));
    EXPECT_EQ(read(mem), "new memory");
    EXPECT_EQ(read(state), "new state");
    EXPECT_EQ(leftovers(dir.path()), 0);
}

}  // namespace
}  // namespace ember
