// Putting a compiled filter on a thread, and reporting the system call that a filter refused.
#pragma once

#include <cstdint>

#include "core/base/error.h"
#include "core/seccomp/filters.h"

namespace ember::seccomp {

// Installs `program` on the calling thread, which threads it creates later inherit; with
// no_new_privs set first, as the kernel requires of an unprivileged process. An empty program
// (filtering off) installs nothing. `kind` names the thread in the SIGSYS report.
Result<void> install(const BpfProgram& program, ThreadKind kind);

// Installs `program` on every thread of the process at once (SECCOMP_FILTER_FLAG_TSYNC), for a
// program whose threads all take one filter, once those it starts early have started. `name`
// names the calling thread in the SIGSYS report.
Result<void> install_on_every_thread(const BpfProgram& program, const char* name);

// The handler for SIGSYS, which a "trap" action raises: one line on the log naming the thread
// kind and the system call, then exit 148 (128 + SIGSYS), as Firecracker does. A file lookup
// (library_calls.h) instead fails with EACCES and is counted. Process-wide: installed once,
// before any filter.
void install_sigsys_reporter();

// File lookups that a filter refused with EACCES so far.
uint64_t refused_file_lookups();

}  // namespace ember::seccomp
