// The shared objects the jailer puts in a jail: found as the loader finds them, and every
// malformed ELF file refused with its name.
#include <elf.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "jailer/libraries.h"
#include "tests/support/ember_process.h"

namespace ember::jailer {
namespace {

namespace fs = std::filesystem;

using testing::read_file;

// The ELF header of a file with no program headers: static, it needs nothing.
std::string static_elf_header() {
    Elf64_Ehdr h{};
    std::memcpy(h.e_ident, ELFMAG, SELFMAG);
    h.e_ident[EI_CLASS] = ELFCLASS64;
    h.e_ident[EI_DATA] = ELFDATA2LSB;
    h.e_machine = EM_X86_64;
    h.e_phentsize = sizeof(Elf64_Phdr);
    return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

std::string self() {
    return fs::read_symlink("/proc/self/exe").string();
}

// This test binary with `from` replaced by `to` (same length) at its first occurrence.
std::string patched_self(const testing::TempDir& dir, const std::string& from,
                         const std::string& to) {
    std::string bytes = read_file(self());
    auto at = bytes.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) bytes.replace(at, from.size(), to);
    return dir.write("patched", bytes);
}

std::string error_of(const std::vector<std::string>& files) {
    auto r = shared_libraries(files, default_library_dirs());
    return r ? std::string("(no error)") : r.error().message;
}

TEST(JailerLibraries, EverySharedObjectTheLoaderMappedIsFound) {
    auto found = shared_libraries({self()}, default_library_dirs());
    ASSERT_TRUE(found) << found.error().message;
    std::set<std::string> canonical;
    for (const auto& f : *found) {
        EXPECT_EQ(f[0], '/') << f;
        canonical.insert(fs::canonical(f).string());
    }
    EXPECT_NE(std::find(found->begin(), found->end(), "/lib64/ld-linux-x86-64.so.2"), found->end())
        << "the program interpreter";
    std::istringstream maps(read_file("/proc/self/maps"));
    std::string line;
    int mapped = 0;
    while (std::getline(maps, line)) {
        auto slash = line.find('/');
        if (slash == std::string::npos) continue;
        const std::string path = line.substr(slash);
        if (path.find(".so") == std::string::npos) continue;
        ++mapped;
        EXPECT_TRUE(canonical.count(fs::canonical(path).string())) << path << " was not found";
    }
    EXPECT_GE(mapped, 3) << "libc, libstdc++ and the loader at least";
}

TEST(JailerLibraries, AStaticFileNeedsNothing) {
    testing::TempDir dir;
    auto path = dir.write("static", static_elf_header());
    auto found = shared_libraries({path}, default_library_dirs());
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_TRUE(found->empty());
}

TEST(JailerLibraries, MalformedFilesAreRefusedByName) {
    testing::TempDir dir;
    EXPECT_NE(error_of({dir.write("text", "#!/bin/sh\n")}).find("text: not an ELF file"),
              std::string::npos);
    EXPECT_NE(error_of({dir.path() + "/absent"}).find("absent: No such file"), std::string::npos);
    EXPECT_NE(error_of({dir.path()}).find("not a regular file"), std::string::npos);

    const std::string whole = read_file(self());
    auto truncated = dir.write("truncated", whole.substr(0, 200));
    EXPECT_NE(error_of({truncated}).find("truncated: its program header table lies outside"),
              std::string::npos)
        << error_of({truncated});

    std::string far = whole;
    Elf64_Ehdr h;
    std::memcpy(&h, far.data(), sizeof h);
    h.e_phoff = ~uint64_t{0} - 8;  // offset + size overflows
    std::memcpy(far.data(), &h, sizeof h);
    EXPECT_NE(error_of({dir.write("far", far)}).find("lies outside the file"), std::string::npos);

    std::string other = whole;
    std::memcpy(&h, whole.data(), sizeof h);
    h.e_machine = EM_AARCH64;
    std::memcpy(other.data(), &h, sizeof h);
    EXPECT_NE(error_of({dir.write("other", other)}).find("for this machine"), std::string::npos);

    std::memcpy(&h, whole.data(), sizeof h);
    h.e_phnum = 60000;
    std::string many = whole;
    std::memcpy(many.data(), &h, sizeof h);
    EXPECT_NE(error_of({dir.write("many", many)}).find("malformed program header table"),
              std::string::npos);
}

TEST(JailerLibraries, AMissingLibraryOrLoaderIsNamed) {
    testing::TempDir dir;
    auto no_lib = patched_self(dir, std::string("libc.so.6\0", 10), std::string("libq.so.6\0", 10));
    EXPECT_NE(error_of({no_lib}).find("needs libq.so.6, found in none of /lib/x86_64-linux-gnu"),
              std::string::npos)
        << error_of({no_lib});
    auto no_loader =
        patched_self(dir, "/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.9");
    EXPECT_NE(error_of({no_loader}).find("program interpreter /lib64/ld-linux-x86-64.so.9"),
              std::string::npos)
        << error_of({no_loader});
}

TEST(JailerLibraries, ALibraryOfAnotherMachineIsPassedOverAsTheLoaderDoes) {
    testing::TempDir dir;
    fs::create_directories(dir.path() + "/first");
    fs::create_directories(dir.path() + "/second");
    const std::string whole = read_file(self());
    std::string other = whole;
    Elf64_Ehdr h;
    std::memcpy(&h, whole.data(), sizeof h);
    h.e_machine = EM_AARCH64;
    std::memcpy(other.data(), &h, sizeof h);
    dir.write("first/libc.so.6", other);
    // A library with no dependencies of its own.
    dir.write("second/libc.so.6", static_elf_header());
    auto found = shared_libraries({self()}, {dir.path() + "/first", dir.path() + "/second",
                                             "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"});
    ASSERT_TRUE(found) << found.error().message;
    EXPECT_NE(std::find(found->begin(), found->end(), dir.path() + "/second/libc.so.6"),
              found->end());
    EXPECT_EQ(std::find(found->begin(), found->end(), dir.path() + "/first/libc.so.6"),
              found->end());
}

}  // namespace
}  // namespace ember::jailer
