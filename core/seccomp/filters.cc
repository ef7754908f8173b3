#include "core/seccomp/filters.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>

#include "core/base/unique_fd.h"
#include "core/json/document.h"

namespace ember::seccomp {
namespace {

using json::Array;
using json::Object;
using json::Value;

struct ContextDeleter {
    void operator()(scmp_filter_ctx ctx) const { seccomp_release(ctx); }
};
using Context = std::unique_ptr<void, ContextDeleter>;

// "allow", "trap", "log", "kill_thread", "kill_process", {"errno": N} or {"trace": N}.
Result<uint32_t> action_from(const Value& e, const std::string& where) {
    if (const std::string* text = e.string()) {
        const std::string& name = *text;
        if (name == "allow") return SCMP_ACT_ALLOW;
        if (name == "trap") return SCMP_ACT_TRAP;
        if (name == "log") return SCMP_ACT_LOG;
        if (name == "kill_thread") return SCMP_ACT_KILL_THREAD;
        if (name == "kill_process") return SCMP_ACT_KILL_PROCESS;
        return fail(where + ": unknown action '" + name + "'");
    }
    if (const Object* o = e.object(); o && o->members.size() == 1) {
        const auto& [key, value] = o->members.front();
        if (auto n = value.u64(); n && *n <= 0xffff) {
            if (key == "errno") return SCMP_ACT_ERRNO(static_cast<uint16_t>(*n));
            if (key == "trace") return SCMP_ACT_TRACE(static_cast<uint16_t>(*n));
        }
    }
    return fail(where +
                ": an action is \"allow\", \"trap\", \"log\", \"kill_thread\", "
                "\"kill_process\", {\"errno\": N} or {\"trace\": N}");
}

Result<uint64_t> u64_field(const Object& o, const char* key, const std::string& where) {
    if (auto n = o.find_u64(key)) return *n;
    return fail(where + "." + key + ": expected a non-negative integer");
}

// One and-bound argument condition: {"index", "type": "dword"|"qword", "op", "val"}.
Result<scmp_arg_cmp> condition_from(const Value& e, const std::string& where) {
    const Object* object = e.object();
    if (!object) return fail(where + ": expected an object");
    const Object& o = *object;
    for (const auto& [key, value] : o.members) {
        if (key != "index" && key != "type" && key != "op" && key != "val" && key != "comment")
            return fail(where + ": unknown field '" + key + "'");
    }
    auto index = u64_field(o, "index", where);
    EMBER_TRY(index);
    if (*index > 5) return fail(where + ".index: a system call has arguments 0 to 5");
    auto val = u64_field(o, "val", where);
    EMBER_TRY(val);
    const std::string* type = o.find_string("type");
    if (!type || (*type != "dword" && *type != "qword"))
        return fail(where + ".type: expected \"dword\" or \"qword\"");
    const bool dword = *type == "dword";
    if (dword && *val > 0xffffffffu) return fail(where + ".val: more than a dword holds");

    scmp_arg_cmp cmp{};
    cmp.arg = static_cast<unsigned>(*index);
    cmp.datum_a = *val;
    const Value* op = o.find("op");
    if (const std::string* op_name = op ? op->string() : nullptr) {
        const std::string& name = *op_name;
        // A dword is compared on its low 32 bits: the upper half of the register is whatever
        // the caller left there. libseccomp masks only for masked_eq, so any other comparison of
        // a dword would take the whole register, and a caller could set its upper half to pass
        // ("ne", "ge" and the rest); those are refused rather than compared on 64 bits.
        if (dword && name != "eq")
            return fail(where + ".op: \"" + name +
                        "\" on a dword would compare the whole register, whose upper half the "
                        "caller sets; a dword takes \"eq\" or {\"masked_eq\": MASK}");
        if (name == "eq") {
            if (dword) {
                cmp.op = SCMP_CMP_MASKED_EQ;
                cmp.datum_a = 0xffffffffu;
                cmp.datum_b = *val;
            } else {
                cmp.op = SCMP_CMP_EQ;
            }
            return cmp;
        }
        if (name == "ne") cmp.op = SCMP_CMP_NE;
        if (name == "ge") cmp.op = SCMP_CMP_GE;
        if (name == "gt") cmp.op = SCMP_CMP_GT;
        if (name == "le") cmp.op = SCMP_CMP_LE;
        if (name == "lt") cmp.op = SCMP_CMP_LT;
        if (cmp.op != 0) return cmp;
    } else if (const Object* masked = op ? op->object() : nullptr) {
        if (auto m = masked->find_u64("masked_eq")) {
            cmp.op = SCMP_CMP_MASKED_EQ;
            cmp.datum_a = dword ? *m & 0xffffffffu : *m;
            cmp.datum_b = *val;
            return cmp;
        }
    }
    return fail(where +
                ".op: expected \"eq\", \"ne\", \"ge\", \"gt\", \"le\", \"lt\" or "
                "{\"masked_eq\": MASK}");
}

Result<BpfProgram> export_bpf(scmp_filter_ctx ctx, const std::string& kind) {
    UniqueFd out(::memfd_create("ember-seccomp", MFD_CLOEXEC));
    if (!out.valid()) return fail_errno("memfd_create");
    if (int rc = seccomp_export_bpf(ctx, out.get()); rc < 0)
        return fail_errno("the " + kind + " filter: exporting its BPF", -rc);
    off_t size = ::lseek(out.get(), 0, SEEK_END);
    if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0)
        return fail("the " + kind + " filter: libseccomp exported no program");
    BpfProgram program;
    program.instructions.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(out.get(), program.instructions.data(), static_cast<size_t>(size), 0) != size)
        return fail_errno("the " + kind + " filter: reading its BPF");
    return program;
}

Result<BpfProgram> compile_one(const Object& o, const std::string& kind) {
    for (const auto& [key, value] : o.members) {
        if (key != "default_action" && key != "filter_action" && key != "filter")
            return fail(kind + ": unknown field '" + key + "'");
    }
    const Value* e = o.find("default_action");
    if (!e) return fail(kind + ".default_action: missing");
    auto default_action = action_from(*e, kind + ".default_action");
    EMBER_TRY(default_action);
    e = o.find("filter_action");
    if (!e) return fail(kind + ".filter_action: missing");
    auto filter_action = action_from(*e, kind + ".filter_action");
    EMBER_TRY(filter_action);
    if (*filter_action == *default_action)
        return fail(kind + ": filter_action and default_action are the same action");
    const Array* rules = o.find_array("filter");
    if (!rules) return fail(kind + ".filter: expected an array of rules");

    Context ctx(seccomp_init(*default_action));
    if (!ctx) return fail(kind + ": libseccomp could not start a filter");
    // ember sets no_new_privs itself, once, before the first filter.
    seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
    size_t i = 0;
    for (const Value& rule_element : *rules) {
        const std::string where = kind + ".filter[" + std::to_string(i++) + "]";
        const Object* rule = rule_element.object();
        if (!rule) return fail(where + ": expected an object");
        for (const auto& [key, value] : rule->members) {
            if (key != "syscall" && key != "args" && key != "comment")
                return fail(where + ": unknown field '" + key + "'");
        }
        const std::string* name = rule->find_string("syscall");
        if (!name) return fail(where + ".syscall: expected a system call's name");
        const std::string& syscall_name = *name;
        const int nr = seccomp_syscall_resolve_name(syscall_name.c_str());
        if (nr == __NR_SCMP_ERROR)
            return fail(where + ".syscall: '" + syscall_name +
                        "' is no system call of this machine");
        std::vector<scmp_arg_cmp> conditions;
        if (const Value* args = rule->find("args")) {
            if (!args->array()) return fail(where + ".args: expected an array of conditions");
            size_t j = 0;
            for (const Value& a : *args->array()) {
                auto c = condition_from(a, where + ".args[" + std::to_string(j++) + "]");
                EMBER_TRY(c);
                conditions.push_back(*c);
            }
        }
        if (int rc =
                seccomp_rule_add_array(ctx.get(), *filter_action, nr,
                                       static_cast<unsigned>(conditions.size()), conditions.data());
            rc < 0)
            return fail_errno(where + " (" + syscall_name + ")", -rc);
    }
    return export_bpf(ctx.get(), kind);
}

Result<Object> top_object(std::string_view text) {
    auto root = json::parse(text);
    if (!root) return fail("not a JSON object: " + root.error().message);
    Object* top = root->object();
    if (!top) return fail(std::string("not a JSON object: ") + json::type_name(root->type()));
    return std::move(*top);
}

}  // namespace

const char* thread_kind_name(ThreadKind kind) {
    switch (kind) {
        case ThreadKind::Vmm: return "vmm";
        case ThreadKind::Api: return "api";
        case ThreadKind::Vcpu: return "vcpu";
    }
    return "?";
}

const BpfProgram& ThreadFilters::of(ThreadKind kind) const {
    switch (kind) {
        case ThreadKind::Vmm: return vmm;
        case ThreadKind::Api: return api;
        case ThreadKind::Vcpu: return vcpu;
    }
    return vmm;
}

BpfProgram& ThreadFilters::of(ThreadKind kind) {
    return const_cast<BpfProgram&>(std::as_const(*this).of(kind));
}

Result<ThreadFilters> compile_filters(std::string_view text) {
    auto top = top_object(text);
    EMBER_TRY(top);
    ThreadFilters filters;
    for (const auto& [key, value] : top->members) {
        if (key != "vmm" && key != "api" && key != "vcpu")
            return fail("unknown thread kind '" + key +
                        "' (ember's threads are vmm, api and vcpu)");
    }
    for (ThreadKind kind : {ThreadKind::Vmm, ThreadKind::Api, ThreadKind::Vcpu}) {
        const std::string name = thread_kind_name(kind);
        const Object* o = top->find_object(name);
        if (!o) return fail("no filter for the " + name + " thread");
        auto program = compile_one(*o, name);
        EMBER_TRY(program);
        filters.of(kind) = std::move(*program);
    }
    return filters;
}

Result<BpfProgram> compile_filter(std::string_view text, std::string_view name) {
    auto top = top_object(text);
    EMBER_TRY(top);
    const Object* o = top->find_object(name);
    if (!o) return fail("no filter named '" + std::string(name) + "'");
    return compile_one(*o, std::string(name));
}

}  // namespace ember::seccomp
