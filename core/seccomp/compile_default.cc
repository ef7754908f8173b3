// ember-seccomp-compile, run when ember is built: compiles ember's own filters
// (default_filters.json, with the sanitizers' rules in a sanitizer build) and writes them as C++
// (default_programs.h), so that ember installs BPF it was built with rather than compiling JSON
// with libseccomp at every start (485 us of a 4.2 ms start, perf/startup).
#include <linux/filter.h>

#include <cstdio>

#include "core/seccomp/filters.h"

namespace {

void print_program(const char* name, const ember::seccomp::BpfProgram& program) {
    std::printf("constexpr sock_filter %s[] = {\n", name);
    for (const sock_filter& i : program.instructions)
        std::printf("    {0x%04x, %u, %u, 0x%08x},\n", i.code, i.jt, i.jf, i.k);
    std::printf("};\n");
}

}  // namespace

int main() {
    auto filters = ember::seccomp::compile_filters(ember::seccomp::default_filters_json());
    if (!filters) {
        std::fprintf(stderr, "ember-seccomp-compile: %s\n", filters.error().message.c_str());
        return 1;
    }
    std::printf(
        "// Generated when ember was built, by ember-seccomp-compile from ember's own filters: "
        "edit\n"
        "// core/seccomp/default_filters.json, not this file.\n"
        "#include \"core/seccomp/default_programs.h\"\n\n"
        "namespace ember::seccomp {\nnamespace {\n\n");
    print_program("kVmm", filters->vmm);
    print_program("kApi", filters->api);
    print_program("kVcpu", filters->vcpu);
    std::printf(
        "\nBpfProgram program(std::span<const sock_filter> instructions) {\n"
        "    return {{instructions.begin(), instructions.end()}};\n}\n\n"
        "}  // namespace\n\n"
        "ThreadFilters default_programs() {\n"
        "    return {program(kVmm), program(kApi), program(kVcpu)};\n}\n\n"
        "}  // namespace ember::seccomp\n");
    return std::ferror(stdout) ? 1 : 0;
}
