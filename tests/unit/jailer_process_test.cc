// The jailer's process clean-up, each step in a child so the test process keeps its own fds,
// environment and limits.
#include "jailer/process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/support/in_child.h"

namespace ember::jailer {
namespace {

using testing::in_child;

TEST(JailerProcess, InheritedDescriptorsAboveStdioAreClosed) {
    EXPECT_EQ(in_child([] {
                  int fd = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: inherited
                  if (fd < 3) return 1;
                  if (!close_inherited_fds()) return 2;
                  if (::fcntl(fd, F_GETFD) != -1) return 3;
                  return ::fcntl(1, F_GETFD) == -1 ? 4 : 0;  // stdio stays
              }),
              0);
}

TEST(JailerProcess, OnlyTheKeptPipeSurvivesAndItOutlivesTheExec) {
    EXPECT_EQ(in_child([] {
                  const int below = ::open("/dev/null", O_RDONLY);
                  int ends[2];
                  if (::pipe2(ends, O_CLOEXEC) != 0) return 1;
                  const int kept = ends[1];
                  const int above = ::open("/dev/null", O_RDONLY);
                  if (below < 3 || kept <= below || above <= kept) return 1;
                  if (!close_inherited_fds(kept)) return 2;
                  if (::fcntl(below, F_GETFD) != -1 || ::fcntl(above, F_GETFD) != -1) return 3;
                  return ::fcntl(kept, F_GETFD) == 0 ? 0 : 4;  // open, and no FD_CLOEXEC
              }),
              0);
    EXPECT_EQ(in_child([] {
                  const int fd = ::open("/dev/null", O_RDONLY);
                  ::close(fd);
                  auto r = close_inherited_fds(fd);
                  return !r && r.error().message.starts_with("--keep-fd ") ? 0 : 1;
              }),
              0);
}

// A directory's descriptor in the jail would reach the host's files (openat(fd, "..")).
TEST(JailerProcess, ADescriptorThatIsNotAPipeOrSocketIsNotKept) {
    EXPECT_EQ(in_child([] {
                  const int dir = ::open("/", O_RDONLY | O_DIRECTORY);
                  auto r = close_inherited_fds(dir);
                  if (r || r.error().message.find("not a pipe or socket") == std::string::npos)
                      return 1;
                  return ::fcntl(dir, F_GETFD) != -1 ? 0 : 2;  // nothing closed on a refusal
              }),
              0);
}

TEST(JailerProcess, TheEnvironmentIsEmptied) {
    EXPECT_EQ(
        in_child([] {
            ::setenv("EMBER_SECRET", "x", 1);
            clear_environment();
            return std::getenv("EMBER_SECRET") == nullptr && std::getenv("PATH") == nullptr ? 0 : 1;
        }),
        0);
}

TEST(JailerProcess, ResourceLimitsAreSetAndNoFileIsBoundedByDefault) {
    EXPECT_EQ(in_child([] {
                  if (!apply_resource_limits({})) return 1;
                  rlimit r{};
                  ::getrlimit(RLIMIT_NOFILE, &r);
                  return r.rlim_cur == 2048 && r.rlim_max == 2048 ? 0 : 2;
              }),
              0);
    EXPECT_EQ(in_child([] {
                  if (!apply_resource_limits({{RLIMIT_FSIZE, 1 << 20}, {RLIMIT_NOFILE, 100}}))
                      return 1;
                  rlimit f{}, n{};
                  ::getrlimit(RLIMIT_FSIZE, &f);
                  ::getrlimit(RLIMIT_NOFILE, &n);
                  return f.rlim_cur == (1 << 20) && n.rlim_max == 100 ? 0 : 2;
              }),
              0);
    EXPECT_EQ(in_child([] {
                  if (!apply_resource_limits({{RLIMIT_FSIZE, 1 << 20}})) return 1;
                  rlimit n{};
                  ::getrlimit(RLIMIT_NOFILE, &n);
                  return n.rlim_cur == 2048 ? 0 : 2;
              }),
              0)
        << "fsize alone leaves no-file at its default";
}

}  // namespace
}  // namespace ember::jailer
