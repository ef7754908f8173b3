// Per-thread seccomp filters in Firecracker's JSON format ("vmm", "api", "vcpu", each with a
// default_action, a filter_action and rules of syscall names and argument conditions), compiled
// to BPF before any thread needs one: ember's own when ember is built (default_programs.h),
// --seccomp-filter's at start-up. Compiled with libseccomp, as Firecracker's
// own seccompiler does: it resolves syscall names, checks the architecture and gets 64-bit
// argument comparisons right, which hand-written BPF would have to redo.
#pragma once

#include <linux/filter.h>

#include <string_view>
#include <vector>

#include "core/base/error.h"

namespace ember::seccomp {

enum class ThreadKind { Vmm, Api, Vcpu };

const char* thread_kind_name(ThreadKind kind);

struct BpfProgram {
    std::vector<sock_filter> instructions;
};

// One program per thread kind; empty (no instructions) where filtering is off.
struct ThreadFilters {
    BpfProgram vmm, api, vcpu;

    const BpfProgram& of(ThreadKind kind) const;
    BpfProgram& of(ThreadKind kind);
};

// A document in Firecracker's format with a filter for each of "vmm", "api" and "vcpu". Every
// error names the thread kind and the rule.
Result<ThreadFilters> compile_filters(std::string_view json);

// The one filter named `name` in a document of that format: a program of ember's whose threads
// all take one filter (ember-uffd's "handler").
Result<BpfProgram> compile_filter(std::string_view json, std::string_view name);

// ember's own filters: what each thread of ember calls, and for ioctl and socket, with which
// arguments.
std::string_view default_filters_json();

}  // namespace ember::seccomp
