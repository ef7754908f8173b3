// The system calls that the libraries ember links make on their own, outside ember's control:
// glibc trims a thread's heap after a large free, and the first time it does it reads
// /proc/sys/vm/overcommit_memory, an openat that the API and vCPU threads' filters forbid (found
// with strace -f while API requests with bodies of some KB were sent: ember died of its own
// filter). Two defences, for the calls we know and those we do not:
// - each call a library makes once per process and then caches is made here, at start, before
//   any filter exists;
// - a file lookup that a filter still refuses fails with EACCES instead of ending ember, since a
//   library that looks a file up opportunistically goes on without it (see install.h).
#pragma once

namespace ember::seccomp {

// Runs the paths that make those calls once per process. Before any filter is installed, and
// before the process has other threads.
void make_library_calls_once();

// A system call that only looks a file up or opens it: a library tries it and copes when it
// fails, so a filter refusing it answers EACCES rather than ending ember.
bool is_file_lookup(long syscall_number);

}  // namespace ember::seccomp
