#include "jailer/libraries.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <set>

#include "core/base/file_io.h"
#include "core/base/unique_fd.h"

namespace ember::jailer {
namespace {

constexpr Elf64_Half kMachine = EM_X86_64;
constexpr size_t kMaxProgramHeaders = 4096;
constexpr uint64_t kMaxDynamicBytes = 1 << 20;
constexpr uint64_t kMaxStringTableBytes = 4 << 20;

struct ElfFile {
    std::string path;
    UniqueFd fd;
    uint64_t size = 0;
};

Result<ElfFile> open_elf(const std::string& path) {
    ElfFile f{path, UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), 0};
    if (!f.fd.valid()) return fail_errno(path);
    struct stat st{};
    if (::fstat(f.fd.get(), &st) < 0) return fail_errno(path);
    if (!S_ISREG(st.st_mode)) return fail(path + ": not a regular file");
    f.size = static_cast<uint64_t>(st.st_size);
    return f;
}

// `len` bytes at `offset`, all of them inside the file.
Result<std::string> read_at(const ElfFile& f, uint64_t offset, uint64_t len, const char* what) {
    uint64_t end = 0;
    if (__builtin_add_overflow(offset, len, &end) || end > f.size)
        return fail(f.path + ": its " + std::string(what) + " lies outside the file");
    std::string bytes(len, '\0');
    if (auto r = pread_exact(f.fd.get(), std::span(reinterpret_cast<uint8_t*>(bytes.data()), len),
                             offset);
        !r)
        return fail(f.path + ": its " + std::string(what) + ": " + r.error().message);
    return bytes;
}

Result<Elf64_Ehdr> read_header(const ElfFile& f) {
    auto bytes = read_at(f, 0, sizeof(Elf64_Ehdr), "ELF header");
    if (!bytes) return fail(f.path + ": not an ELF file");
    Elf64_Ehdr h;
    std::memcpy(&h, bytes->data(), sizeof h);
    if (std::memcmp(h.e_ident, ELFMAG, SELFMAG) != 0) return fail(f.path + ": not an ELF file");
    if (h.e_ident[EI_CLASS] != ELFCLASS64 || h.e_ident[EI_DATA] != ELFDATA2LSB ||
        h.e_machine != kMachine)
        return fail(f.path + ": not a 64-bit little-endian ELF file for this machine");
    return h;
}

struct Dependencies {
    std::optional<std::string> interpreter;
    std::vector<std::string> needed;
    std::vector<std::string> runpath;
};

// The NUL-terminated name at `offset` in the string table at file offset `table` of `size`
// bytes. Names are read one by one: a library's whole table can be hundreds of KiB.
Result<std::string> string_at(const ElfFile& f, uint64_t table, uint64_t size, uint64_t offset) {
    if (offset >= size) return fail(f.path + ": a name outside its string table");
    std::string name;
    for (uint64_t at = offset; at < size;) {
        const uint64_t chunk = std::min<uint64_t>(256, size - at);
        auto bytes = read_at(f, table + at, chunk, "string table");
        EMBER_TRY(bytes);
        auto nul = bytes->find('\0');
        if (nul != std::string::npos) return name + bytes->substr(0, nul);
        name += *bytes;
        if (name.size() > PATH_MAX) break;
        at += chunk;
    }
    return fail(f.path + ": an unterminated name");
}

// The file offset of virtual address `vaddr`, from the PT_LOAD segment that holds it.
Result<uint64_t> file_offset(const ElfFile& f, const std::vector<Elf64_Phdr>& loads,
                             uint64_t vaddr) {
    for (const auto& p : loads) {
        uint64_t end = 0;
        if (__builtin_add_overflow(p.p_vaddr, p.p_filesz, &end)) continue;
        if (vaddr >= p.p_vaddr && vaddr < end) return p.p_offset + (vaddr - p.p_vaddr);
    }
    return fail(f.path + ": its string table is in no loaded segment");
}

Result<Dependencies> read_dependencies(const ElfFile* f, const Elf64_Ehdr* h) {
    const std::string& path = f->path;
    if (h->e_phentsize != sizeof(Elf64_Phdr) || h->e_phnum > kMaxProgramHeaders)
        return fail(path + ": a malformed program header table");
    auto table =
        read_at(*f, h->e_phoff, uint64_t{h->e_phnum} * sizeof(Elf64_Phdr), "program header table");
    EMBER_TRY(table);

    Dependencies deps;
    std::vector<Elf64_Phdr> loads;
    std::optional<Elf64_Phdr> dynamic;
    for (size_t i = 0; i < h->e_phnum; ++i) {
        Elf64_Phdr p;
        std::memcpy(&p, table->data() + i * sizeof p, sizeof p);
        if (p.p_type == PT_LOAD) loads.push_back(p);
        if (p.p_type == PT_DYNAMIC) dynamic = p;
        if (p.p_type == PT_INTERP) {
            if (p.p_filesz < 2 || p.p_filesz > PATH_MAX)
                return fail(path + ": a malformed program interpreter");
            auto interp = read_at(*f, p.p_offset, p.p_filesz, "program interpreter");
            EMBER_TRY(interp);
            if (interp->back() != '\0' || interp->find('\0') != interp->size() - 1 ||
                interp->front() != '/')
                return fail(path + ": its program interpreter is not an absolute path");
            interp->pop_back();
            deps.interpreter = std::move(*interp);
        }
    }
    if (!dynamic) return deps;  // static: it needs nothing

    if (dynamic->p_filesz > kMaxDynamicBytes) return fail(path + ": a malformed dynamic section");
    auto dyn = read_at(*f, dynamic->p_offset, dynamic->p_filesz, "dynamic section");
    EMBER_TRY(dyn);
    std::vector<uint64_t> needed, runpath;
    std::optional<uint64_t> strtab, strsz;
    for (size_t at = 0; at + sizeof(Elf64_Dyn) <= dyn->size(); at += sizeof(Elf64_Dyn)) {
        Elf64_Dyn d;
        std::memcpy(&d, dyn->data() + at, sizeof d);
        if (d.d_tag == DT_NULL) break;
        if (d.d_tag == DT_NEEDED) needed.push_back(d.d_un.d_val);
        if (d.d_tag == DT_RUNPATH || d.d_tag == DT_RPATH) runpath.push_back(d.d_un.d_val);
        if (d.d_tag == DT_STRTAB) strtab = d.d_un.d_ptr;
        if (d.d_tag == DT_STRSZ) strsz = d.d_un.d_val;
    }
    if (needed.empty() && runpath.empty()) return deps;
    if (!strtab || !strsz || *strsz > kMaxStringTableBytes)
        return fail(path + ": a malformed dynamic string table");
    auto offset = file_offset(*f, loads, *strtab);
    EMBER_TRY(offset);
    for (uint64_t n : needed) {
        auto name = string_at(*f, *offset, *strsz, n);
        EMBER_TRY(name);
        deps.needed.push_back(std::move(*name));
    }
    for (uint64_t r : runpath) {
        auto list = string_at(*f, *offset, *strsz, r);
        EMBER_TRY(list);
        size_t start = 0;
        while (start <= list->size()) {
            size_t end = list->find(':', start);
            if (end == std::string::npos) end = list->size();
            std::string dir = list->substr(start, end - start);
            // $ORIGIN and friends name places outside the jail's layout: the defaults serve.
            if (!dir.empty() && dir[0] == '/' && dir.find('$') == std::string::npos)
                deps.runpath.push_back(std::move(dir));
            start = end + 1;
        }
    }
    return deps;
}

// As the loader does, a file of another class or machine in a directory is passed over.
struct OpenElf {
    ElfFile file;
    Elf64_Ehdr header;
};

Result<OpenElf> open_loadable(const std::string& path) {
    auto f = open_elf(path);
    EMBER_TRY(f);
    auto h = read_header(*f);
    EMBER_TRY(h);
    return OpenElf{std::move(*f), *h};
}

Result<OpenElf> find_library(const std::string& who, const std::string& name,
                             const std::vector<std::string>& runpath,
                             const std::vector<std::string>& dirs) {
    if (name.empty() || name.find('/') != std::string::npos)
        return fail(who + ": needs '" + name + "', which is not a library name");
    for (const auto* list : {&runpath, &dirs})
        for (const auto& dir : *list)
            if (auto found = open_loadable(dir + "/" + name)) return found;
    std::string searched;
    for (const auto* list : {&runpath, &dirs})
        for (const auto& dir : *list) searched += (searched.empty() ? "" : ", ") + dir;
    return fail(who + ": needs " + name + ", found in none of " + searched);
}

}  // namespace

std::vector<std::string> default_library_dirs() {
    return {"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib"};
}

Result<std::vector<std::string>> shared_libraries(const std::vector<std::string>& elf_files,
                                                  const std::vector<std::string>& dirs) {
    std::set<std::string> found;
    std::set<std::string> names_seen;
    std::deque<OpenElf> to_read;
    for (const auto& path : elf_files) {
        auto f = open_loadable(path);
        EMBER_TRY(f);
        to_read.push_back(std::move(*f));
    }
    while (!to_read.empty()) {
        const OpenElf elf = std::move(to_read.front());
        to_read.pop_front();
        const std::string& path = elf.file.path;
        auto deps = read_dependencies(&elf.file, &elf.header);
        EMBER_TRY(deps);
        if (deps->interpreter) {
            if (!open_loadable(*deps->interpreter))
                return fail(path + ": its program interpreter " + *deps->interpreter +
                            " is missing or not loadable");
            found.insert(*deps->interpreter);
            // libc names the loader among its needs; the loader answers to it itself.
            names_seen.insert(deps->interpreter->substr(deps->interpreter->rfind('/') + 1));
        }
        for (const auto& name : deps->needed) {
            if (!names_seen.insert(name).second) continue;
            auto lib = find_library(path, name, deps->runpath, dirs);
            EMBER_TRY(lib);
            if (found.insert(lib->file.path).second) to_read.push_back(std::move(*lib));
        }
    }
    return std::vector<std::string>(found.begin(), found.end());
}

}  // namespace ember::jailer
