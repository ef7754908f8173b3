#include <elf.h>

#include <algorithm>
#include <vector>

#include "core/arch/x86_64/kernel_loader.h"
#include "core/arch/x86_64/layout.h"
#include "core/base/file_io.h"

namespace ember::x86 {
namespace {

constexpr uint32_t kXenElfnotePhys32Entry = 18;
constexpr size_t kMaxProgramHeaders = 128;
constexpr size_t kMaxNoteBytes = 64 * 1024;

uint64_t align4(uint64_t n) {
    return (n + 3) & ~uint64_t{3};
}

// Looks for Xen's PHYS32_ENTRY note: its presence means the kernel has a PVH entry point.
std::optional<uint64_t> find_pvh_entry(std::span<const uint8_t> notes) {
    size_t pos = 0;
    while (notes.size() - pos >= sizeof(Elf64_Nhdr)) {
        Elf64_Nhdr nhdr;
        std::memcpy(&nhdr, notes.data() + pos, sizeof nhdr);
        pos += sizeof nhdr;
        uint64_t name_len = align4(nhdr.n_namesz);
        uint64_t desc_len = align4(nhdr.n_descsz);
        if (name_len > notes.size() - pos || desc_len > notes.size() - pos - name_len) break;
        const uint8_t* name = notes.data() + pos;
        const uint8_t* desc = name + name_len;
        if (nhdr.n_type == kXenElfnotePhys32Entry && nhdr.n_namesz == 4 &&
            std::memcmp(name, "Xen", 4) == 0 && nhdr.n_descsz >= 4) {
            uint32_t entry;
            std::memcpy(&entry, desc, sizeof entry);
            return entry;
        }
        pos += name_len + desc_len;
    }
    return std::nullopt;
}

}  // namespace

Result<KernelImage> load_elf(const GuestMemory& mem, int fd, uint64_t file_size) {
    Elf64_Ehdr ehdr;
    if (file_size < sizeof ehdr) return fail("ELF file too short for its header");
    EMBER_TRY(pread_exact(fd, std::span(reinterpret_cast<uint8_t*>(&ehdr), sizeof ehdr), 0));
    if (std::memcmp(ehdr.e_ident, ELFMAG, SELFMAG) != 0) return fail("not an ELF file");
    if (ehdr.e_ident[EI_CLASS] != ELFCLASS64 || ehdr.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail("ELF kernel is not 64-bit little-endian");
    if (ehdr.e_machine != EM_X86_64) return fail("ELF kernel is not for x86-64");
    if (ehdr.e_type != ET_EXEC) return fail("ELF kernel is not an executable (ET_EXEC)");
    if (ehdr.e_phentsize != sizeof(Elf64_Phdr)) return fail("ELF program header size is wrong");
    if (ehdr.e_phnum == 0 || ehdr.e_phnum > kMaxProgramHeaders)
        return fail("ELF kernel has " + std::to_string(ehdr.e_phnum) + " program headers");
    uint64_t ph_bytes = uint64_t{ehdr.e_phnum} * sizeof(Elf64_Phdr);
    if (ehdr.e_phoff > file_size || ph_bytes > file_size - ehdr.e_phoff)
        return fail("ELF program headers lie beyond the end of the file");

    std::vector<Elf64_Phdr> phdrs(ehdr.e_phnum);
    EMBER_TRY(pread_exact(fd, std::span(reinterpret_cast<uint8_t*>(phdrs.data()), ph_bytes),
                          ehdr.e_phoff));

    KernelImage image;
    image.entry = ehdr.e_entry;
    image.cmdline_max = kCmdlineMaxSize;
    uint64_t lowest = UINT64_MAX;
    bool any_load = false;
    for (const auto& ph : phdrs) {
        if (ph.p_type == PT_NOTE) {
            if (ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset ||
                ph.p_filesz > kMaxNoteBytes)
                return fail("ELF note segment lies beyond the end of the file");
            std::vector<uint8_t> notes(ph.p_filesz);
            EMBER_TRY(pread_exact(fd, notes, ph.p_offset));
            if (auto pvh = find_pvh_entry(notes)) {
                image.protocol = BootProtocol::Pvh;
                image.entry = *pvh;
            }
            continue;
        }
        if (ph.p_type != PT_LOAD) continue;
        if (ph.p_filesz > ph.p_memsz) return fail("ELF segment has p_filesz > p_memsz");
        if (ph.p_offset > file_size || ph.p_filesz > file_size - ph.p_offset)
            return fail("ELF segment at offset " + hex(ph.p_offset) +
                        " lies beyond the end of the file");
        if (ph.p_paddr + ph.p_memsz < ph.p_paddr) return fail("ELF segment address wraps around");
        if (ph.p_paddr < kHimemStart)
            return fail("ELF segment at " + hex(ph.p_paddr) +
                        " is below 1 MiB, where ember keeps boot structures");
        lowest = std::min(lowest, ph.p_paddr);
        image.end = std::max(image.end, ph.p_paddr + ph.p_memsz);
        any_load = true;
    }
    if (!any_load) return fail("ELF kernel has no loadable segment");
    if (image.entry < lowest || image.entry >= image.end)
        return fail("ELF entry point " + hex(image.entry) + " is outside the loaded segments");
    EMBER_TRY(check_fits(mem, lowest, image.end));

    for (const auto& ph : phdrs) {
        if (ph.p_type != PT_LOAD) continue;
        // The BSS part (p_memsz beyond p_filesz) is left alone: guest memory is freshly mapped
        // and zero, and writing zeros would only commit its pages.
        auto dest = mem.slice(ph.p_paddr, ph.p_memsz);
        EMBER_TRY(dest);
        EMBER_TRY(pread_exact(fd, dest->first(ph.p_filesz), ph.p_offset));
    }
    return image;
}

}  // namespace ember::x86
