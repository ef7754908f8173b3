// The ELF loader against well-formed and hostile files.
#include <elf.h>
#include <gtest/gtest.h>

#include <cstring>

#include "core/arch/x86_64/kernel_loader.h"
#include "tests/unit/test_memory.h"

namespace ember::x86 {
namespace {

using testing::make_memory;
using testing::memfd_with;

struct Segment {
    uint32_t type = PT_LOAD;
    uint64_t paddr;
    std::string bytes;
    uint64_t memsz = 0;  // 0: bytes.size()
};

// A minimal x86-64 ET_EXEC image: header, program headers, then each segment's bytes.
std::string make_elf(uint64_t entry, const std::vector<Segment>& segments) {
    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = sizeof eh;
    eh.e_ehsize = sizeof eh;
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(segments.size());
    std::string file(reinterpret_cast<char*>(&eh), sizeof eh);
    uint64_t offset = sizeof eh + segments.size() * sizeof(Elf64_Phdr);
    std::string data;
    for (const auto& s : segments) {
        Elf64_Phdr ph{};
        ph.p_type = s.type;
        ph.p_offset = offset + data.size();
        ph.p_paddr = ph.p_vaddr = s.paddr;
        ph.p_filesz = s.bytes.size();
        ph.p_memsz = s.memsz ? s.memsz : s.bytes.size();
        file.append(reinterpret_cast<char*>(&ph), sizeof ph);
        data += s.bytes;
    }
    return file + data;
}

std::string pvh_note(uint32_t entry) {
    Elf64_Nhdr n{4, 4, 18};
    std::string note(reinterpret_cast<char*>(&n), sizeof n);
    note += std::string("Xen\0", 4);
    note.append(reinterpret_cast<char*>(&entry), 4);
    return note;
}

Result<KernelImage> load(const GuestMemory& mem, const std::string& file) {
    auto fd = memfd_with(file);
    return load_elf(mem, fd.get(), file.size());
}

std::string error_of(const Result<KernelImage>& r) {
    return r ? "(loaded)" : r.error().message;
}

TEST(ElfLoader, LoadsSegmentsAtTheirPhysicalAddresses) {
    auto mem = make_memory(16);
    auto file = make_elf(0x100010, {{PT_LOAD, 0x100000, std::string(32, '\xaa'), 0x3000},
                                    {PT_LOAD, 0x200000, "kernel data"}});
    auto image = load(mem, file);
    ASSERT_TRUE(image) << error_of(image);
    EXPECT_EQ(image->protocol, BootProtocol::Linux64);
    EXPECT_EQ(image->entry, 0x100010u);
    EXPECT_EQ(image->end, 0x200000u + 11);
    EXPECT_EQ(*mem.read_obj<uint8_t>(0x10001f), 0xaa);
    EXPECT_EQ(*mem.read_obj<uint8_t>(0x100020), 0);  // BSS
    char text[11];
    ASSERT_TRUE(mem.read(0x200000, std::span(reinterpret_cast<uint8_t*>(text), 11)));
    EXPECT_EQ(std::string(text, 11), "kernel data");
}

TEST(ElfLoader, PvhNoteSelectsThePvhEntry) {
    auto mem = make_memory(16);
    auto file = make_elf(
        0x100000, {{PT_LOAD, 0x100000, std::string(64, 'k')}, {PT_NOTE, 0, pvh_note(0x100020)}});
    auto image = load(mem, file);
    ASSERT_TRUE(image) << error_of(image);
    EXPECT_EQ(image->protocol, BootProtocol::Pvh);
    EXPECT_EQ(image->entry, 0x100020u);
}

TEST(ElfLoader, NotesThatLieAboutTheirSizesAreIgnoredSafely) {
    auto mem = make_memory(16);
    Elf64_Nhdr n{4, 0xfffffff0, 18};  // descsz far beyond the note segment
    std::string note(reinterpret_cast<char*>(&n), sizeof n);
    note += std::string("Xen\0", 4);
    auto image = load(mem, make_elf(0x100000, {{PT_LOAD, 0x100000, "x"}, {PT_NOTE, 0, note}}));
    ASSERT_TRUE(image) << error_of(image);
    EXPECT_EQ(image->protocol, BootProtocol::Linux64);
}

TEST(ElfLoader, MemoryTooSmallSaysHowMuchIsNeeded) {
    auto mem = make_memory(2);
    auto image = load(mem, make_elf(0x100000, {{PT_LOAD, 0x100000, "x", 0x300000}}));
    EXPECT_NE(error_of(image).find("kernel needs at least 4 MiB"), std::string::npos)
        << error_of(image);
}

TEST(ElfLoader, RejectsHostileFiles) {
    auto mem = make_memory(16);
    const auto good = make_elf(0x100000, {{PT_LOAD, 0x100000, "x"}});
    struct Case {
        const char* name;
        std::string file;
        const char* expected;
    };
    std::vector<Case> cases;
    cases.push_back({"empty", "", "too short"});
    cases.push_back({"truncated header", good.substr(0, 40), "too short"});
    {
        auto f = good;
        f[EI_CLASS] = ELFCLASS32;
        cases.push_back({"32-bit", f, "not 64-bit"});
    }
    {
        auto f = good;
        f[offsetof(Elf64_Ehdr, e_machine)] = EM_AARCH64;
        cases.push_back({"wrong machine", f, "not for x86-64"});
    }
    {
        auto f = good;
        f[offsetof(Elf64_Ehdr, e_type)] = ET_DYN;
        cases.push_back({"not executable", f, "not an executable"});
    }
    {
        auto f = good;
        uint64_t phoff = 1ull << 40;
        std::memcpy(&f[offsetof(Elf64_Ehdr, e_phoff)], &phoff, 8);
        cases.push_back({"phdrs beyond file", f, "program headers lie beyond"});
    }
    {
        auto f = good;
        uint16_t phnum = 0;
        std::memcpy(&f[offsetof(Elf64_Ehdr, e_phnum)], &phnum, 2);
        cases.push_back({"no phdrs", f, "0 program headers"});
    }
    {
        auto f = good;
        uint16_t phentsize = 8;
        std::memcpy(&f[offsetof(Elf64_Ehdr, e_phentsize)], &phentsize, 2);
        cases.push_back({"wrong phentsize", f, "program header size"});
    }
    cases.push_back({"segment data beyond file", good.substr(0, good.size() - 1),
                     "lies beyond the end of the file"});
    cases.push_back({"filesz > memsz",
                     [] {
                         auto f = make_elf(0x100000, {{PT_LOAD, 0x100000, "xyz"}});
                         uint64_t memsz = 1;
                         std::memcpy(&f[sizeof(Elf64_Ehdr) + offsetof(Elf64_Phdr, p_memsz)], &memsz,
                                     8);
                         return f;
                     }(),
                     "p_filesz > p_memsz"});
    cases.push_back({"below 1 MiB", make_elf(0x7000, {{PT_LOAD, 0x7000, "x"}}), "below 1 MiB"});
    cases.push_back(
        {"address wraps", make_elf(0x100000, {{PT_LOAD, UINT64_MAX - 1, "x", 16}}), "wraps"});
    cases.push_back(
        {"entry outside", make_elf(0x500000, {{PT_LOAD, 0x100000, "x"}}), "entry point"});
    cases.push_back({"beyond memory", make_elf(0x40000000, {{PT_LOAD, 0x40000000, "x"}}),
                     "kernel needs at least"});
    cases.push_back({"no PT_LOAD", make_elf(0x100000, {{PT_NOTE, 0, pvh_note(0x100000)}}),
                     "no loadable segment"});
    for (const auto& c : cases) {
        auto image = load(mem, c.file);
        EXPECT_FALSE(image) << c.name;
        EXPECT_NE(error_of(image).find(c.expected), std::string::npos)
            << c.name << ": " << error_of(image);
    }
}

TEST(KernelLoader, RecognisesNeitherFormat) {
    auto mem = make_memory(16);
    char path[] = "/tmp/ember-kernel-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "#!/bin/sh\n", 10), 10);
    ::close(fd);
    auto image = load_kernel(mem, path);
    ::unlink(path);
    ASSERT_FALSE(image);
    EXPECT_NE(image.error().message.find("neither an ELF vmlinux nor a bzImage"),
              std::string::npos);
}

}  // namespace
}  // namespace ember::x86
