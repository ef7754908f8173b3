// Firecracker's seccomp JSON compiled and installed (per thread kind, or one named filter on every
// thread): the rules do what they say (checked in forked children, since a filter is for good), a
// trap is reported and ends the process with 148, and every malformed document is refused with the
// place it goes wrong.
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "core/base/log.h"
#include "core/seccomp/default_programs.h"
#include "core/seccomp/filters.h"
#include "core/seccomp/install.h"
#include "tests/support/in_child.h"

namespace ember::seccomp {
namespace {

using testing::in_child;

// The same rules for every thread kind.
std::string for_all(const std::string& filter) {
    return R"({"vmm": )" + filter + R"(, "api": )" + filter + R"(, "vcpu": )" + filter + "}";
}

std::string error_of(const std::string& json) {
    auto r = compile_filters(json);
    return r ? std::string("(compiled)") : r.error().message;
}

TEST(SeccompFilters, EmbersOwnFiltersCompileForEveryThreadKind) {
    auto filters = compile_filters(default_filters_json());
    ASSERT_TRUE(filters) << filters.error().message;
    for (auto kind : {ThreadKind::Vmm, ThreadKind::Api, ThreadKind::Vcpu})
        EXPECT_GT(filters->of(kind).instructions.size(), 10u) << thread_kind_name(kind);
}

// What ember installs is what its filters compile to: the BPF built in when ember was built is the
// same, instruction for instruction, as compiling the JSON now.
TEST(SeccompFilters, TheProgramsBuiltInAreEmbersOwnFiltersCompiled) {
    auto compiled = compile_filters(default_filters_json());
    ASSERT_TRUE(compiled) << compiled.error().message;
    const ThreadFilters built_in = default_programs();
    for (auto kind : {ThreadKind::Vmm, ThreadKind::Api, ThreadKind::Vcpu}) {
        const auto& a = built_in.of(kind).instructions;
        const auto& b = compiled->of(kind).instructions;
        ASSERT_EQ(a.size(), b.size()) << thread_kind_name(kind);
        ASSERT_FALSE(a.empty()) << thread_kind_name(kind);
        for (size_t i = 0; i < a.size(); ++i) {
            EXPECT_EQ(a[i].code, b[i].code) << thread_kind_name(kind) << " " << i;
            EXPECT_EQ(a[i].jt, b[i].jt) << thread_kind_name(kind) << " " << i;
            EXPECT_EQ(a[i].jf, b[i].jf) << thread_kind_name(kind) << " " << i;
            EXPECT_EQ(a[i].k, b[i].k) << thread_kind_name(kind) << " " << i;
        }
    }
}

TEST(SeccompFilters, RulesAndArgumentConditionsDecideEachCall) {
    auto filters = compile_filters(for_all(R"({
        "default_action": "allow", "filter_action": {"errno": 1},
        "filter": [
            {"syscall": "getppid"},
            {"syscall": "dup", "args": [{"index": 0, "type": "dword", "op": "eq", "val": 0}]},
            {"syscall": "lseek", "args": [
                {"index": 2, "type": "dword", "op": {"masked_eq": 4294967298}, "val": 2,
                 "comment": "SEEK_END (2) refused; the mask's bit 32 is beyond a dword"}]}
        ]})"));
    ASSERT_TRUE(filters) << filters.error().message;
    EXPECT_EQ(in_child([&] {
                  if (!install(filters->vcpu, ThreadKind::Vcpu)) return 1;
                  // glibc's getppid() never sets errno: the system call itself.
                  if (::syscall(SYS_getppid) != -1 || errno != EPERM) return 2;
                  if (::syscall(SYS_dup, 0) != -1 || errno != EPERM) return 3;
                  // Only the low 32 bits of a dword count: the rule still matches.
                  if (::syscall(SYS_dup, 0x100000000L) != -1 || errno != EPERM) return 4;
                  const long other = ::syscall(SYS_dup, 1);
                  if (other < 0) return 5;
                  if (::lseek(0, 0, SEEK_CUR) == -1 && errno == EPERM) return 6;
                  if (::lseek(0, 0, SEEK_END) != -1 || errno != EPERM) return 7;
                  // A mask is a dword's too: the upper half cannot make SEEK_END pass.
                  if (::syscall(SYS_lseek, 0, 0, 0x100000000L | SEEK_END) != -1 || errno != EPERM)
                      return 8;
                  return 0;
              }),
              0);
}

// A program whose threads all take one filter (ember-uffd's): the filter is found by its name, and
// installed on every thread at once, a thread started before it among them.
TEST(SeccompFilters, OneNamedFilterHoldsEveryThreadOfTheProcess) {
    const std::string json = R"({"handler": {
        "default_action": "allow", "filter_action": {"errno": 1},
        "filter": [{"syscall": "getppid"}]}})";
    EXPECT_NE(compile_filter(json, "other").error().message.find("no filter named 'other'"),
              std::string::npos);
    auto filter = compile_filter(json, "handler");
    ASSERT_TRUE(filter) << filter.error().message;
    EXPECT_EQ(in_child([&] {
                  std::atomic<int> step{0};
                  long earlier_thread = 0;
                  std::thread earlier([&] {
                      while (step.load() == 0) std::this_thread::yield();
                      earlier_thread = ::syscall(SYS_getppid) == -1 && errno == EPERM ? 1 : 0;
                  });
                  const bool installed =
                      static_cast<bool>(install_on_every_thread(*filter, "handler"));
                  step = 1;
                  earlier.join();
                  if (!installed) return 1;
                  if (::syscall(SYS_getppid) != -1 || errno != EPERM) return 2;
                  return earlier_thread == 1 ? 0 : 3;
              }),
              0);
}

TEST(SeccompFilters, AnEmptyProgramInstallsNothing) {
    EXPECT_EQ(in_child([] {
                  if (!install(BpfProgram{}, ThreadKind::Api)) return 1;
                  return ::getppid() > 0 ? 0 : 2;
              }),
              0);
}

TEST(SeccompFilters, ATrappedCallIsReportedAndEndsTheProcessWith148) {
    auto filters = compile_filters(for_all(R"({
        "default_action": "allow", "filter_action": "trap", "filter": [{"syscall": "getppid"}]})"));
    ASSERT_TRUE(filters) << filters.error().message;
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    const int code = in_child([&] {
        log::set_fd(out[1]);
        install_sigsys_reporter();
        if (!install(filters->api, ThreadKind::Api)) return 1;
        ::getppid();
        return 2;
    });
    ::close(out[1]);
    char buf[256] = {};
    const ssize_t n = ::read(out[0], buf, sizeof buf - 1);
    ::close(out[0]);
    EXPECT_EQ(code, 148);
    ASSERT_GT(n, 0);
    const std::string line(buf, static_cast<size_t>(n));
    EXPECT_NE(line.find(":ERROR] the api thread made system call " + std::to_string(SYS_getppid) +
                        ", which its seccomp filter forbids\n"),
              std::string::npos)
        << line;
}

TEST(SeccompFilters, MalformedDocumentsAreRefusedWithThePlace) {
    const std::string ok_rule = R"({"syscall": "read"})";
    auto one = [&](const std::string& filter) {
        return R"({"vmm": )" + filter + R"(, "api": {"default_action": "trap",
            "filter_action": "allow", "filter": [)" +
               ok_rule + R"(]}, "vcpu": {"default_action":
            "trap", "filter_action": "allow", "filter": []}})";
    };
    auto rule = [&](const std::string& r) {
        return one(R"({"default_action": "trap", "filter_action": "allow", "filter": [)" + r +
                   "]}");
    };
    const std::pair<std::string, std::string> cases[] = {
        {"[1, 2]", "not a JSON object"},
        {"{", "not a JSON object"},
        {R"({"vmm": {}, "api": {}, "vcpu": {}, "vsock": {}})", "unknown thread kind 'vsock'"},
        {R"({"api": {}, "vcpu": {}})", "no filter for the vmm thread"},
        {one(R"({"default_action": "explode", "filter_action": "allow", "filter": []})"),
         "vmm.default_action: unknown action 'explode'"},
        {one(R"({"default_action": {"errno": 70000}, "filter_action": "allow", "filter": []})"),
         "vmm.default_action: an action is"},
        {one(R"({"default_action": "allow", "filter_action": "allow", "filter": []})"),
         "vmm: filter_action and default_action are the same action"},
        {one(R"({"filter_action": "allow", "filter": []})"), "vmm.default_action: missing"},
        {one(R"({"default_action": "trap", "filter_action": "allow", "filter": {}})"),
         "vmm.filter: expected an array of rules"},
        {one(R"({"default_action": "trap", "filter_action": "allow", "filter": [], "x": 1})"),
         "vmm: unknown field 'x'"},
        {rule(R"({"syscall": "no_such_call"})"),
         "vmm.filter[0].syscall: 'no_such_call' is no system call of this machine"},
        {rule(R"({"syscall": 3})"), "vmm.filter[0].syscall: expected a system call's name"},
        {rule(R"({"syscall": "read", "flags": 1})"), "vmm.filter[0]: unknown field 'flags'"},
        {rule(R"({"syscall": "read", "args": {}})"),
         "vmm.filter[0].args: expected an array of conditions"},
        {rule(R"({"syscall": "read", "args": [{"index": 6, "type": "qword", "op": "eq",
            "val": 0}]})"),
         "vmm.filter[0].args[0].index: a system call has arguments 0 to 5"},
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "dword", "op": "eq",
            "val": 4294967296}]})"),
         "vmm.filter[0].args[0].val: more than a dword holds"},
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "word", "op": "eq",
            "val": 1}]})"),
         "vmm.filter[0].args[0].type: expected \"dword\" or \"qword\""},
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "qword", "op": "is",
            "val": 1}]})"),
         "vmm.filter[0].args[0].op: expected"},
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "qword", "op": "eq"}]})"),
         "vmm.filter[0].args[0].val: expected a non-negative integer"},
        // libseccomp would compare these on the whole register, whose upper half the caller
        // sets: a dword of 0 with its upper half set would pass "ge 5".
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "dword", "op": "ge",
            "val": 5}]})"),
         "vmm.filter[0].args[0].op: \"ge\" on a dword would compare the whole register"},
        {rule(R"({"syscall": "read", "args": [{"index": 0, "type": "dword", "op": "ne",
            "val": 5}]})"),
         "vmm.filter[0].args[0].op: \"ne\" on a dword would compare the whole register"},
    };
    for (const auto& [json, says] : cases) {
        const std::string error = error_of(json);
        EXPECT_NE(error.find(says), std::string::npos) << json << "\n -> " << error;
    }
}

}  // namespace
}  // namespace ember::seccomp
