// The shared objects a dynamically linked ember needs inside its jail: its program interpreter
// (the dynamic loader) and every library in the DT_NEEDED closure of ember. ember links Debian's
// shared libraries, so it is not a static binary as Firecracker is; the jail gets read-only bind
// mounts of these files instead.
#pragma once

#include <string>
#include <vector>

#include "core/base/error.h"

namespace ember::jailer {

// The directories the loader searches when it has no /etc/ld.so.cache, which a jail does not
// have: Debian's multiarch directories, then /lib and /usr/lib.
std::vector<std::string> default_library_dirs();

// For each ELF file, its PT_INTERP and each DT_NEEDED name found in its DT_RUNPATH (absolute
// entries) or `dirs`, recursively, as the paths the loader will open: absolute, sorted, each once.
// Every file is read as hostile: a malformed header, an offset outside the file, an unterminated
// name or a library that is not found is an error naming the file.
Result<std::vector<std::string>> shared_libraries(const std::vector<std::string>& elf_files,
                                                  const std::vector<std::string>& dirs);

}  // namespace ember::jailer
