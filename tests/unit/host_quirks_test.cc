#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "core/kvm/host_quirks.h"

namespace ember {
namespace {

TEST(HostQuirks, DetectsTheEmulatingModuleBySysfs) {
    auto dir = std::filesystem::temp_directory_path() / "ember-quirks-test";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir / "kvm");
    EXPECT_FALSE(detect_host_quirks(dir.string()).emulated_ring0);
    std::filesystem::create_directories(dir / "kvm_pvm");
    EXPECT_TRUE(detect_host_quirks(dir.string()).emulated_ring0);
    std::filesystem::remove_all(dir);
}

TEST(HostQuirks, ArgumentsOnlyWhenEmulatingAndNeverOverridingTheUser) {
    EXPECT_EQ(quirk_boot_args(HostQuirks{false}, "console=ttyS0"), "");
    auto args = quirk_boot_args(HostQuirks{true}, "console=ttyS0 lpj=5000 nopv");
    EXPECT_NE(args.find("noxsave"), std::string::npos);
    EXPECT_NE(args.find("clearcpuid=308,295,514,151"), std::string::npos);
    EXPECT_EQ(args.find("lpj="), std::string::npos) << "the user's lpj stays the only one";
    EXPECT_EQ(args.find("nopv"), std::string::npos);
}

}  // namespace
}  // namespace ember
