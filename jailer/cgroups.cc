#include "jailer/cgroups.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace ember::jailer {
namespace {

namespace fs = std::filesystem;

std::string controller_of(const std::string& file) {
    return file.substr(0, file.find('.'));
}

Result<void> write_file(const fs::path& path, const std::string& value) {
    std::ofstream out(path);
    out << value;
    out.flush();
    if (!out) return fail("cannot write '" + value + "' to " + path.string());
    return {};
}

std::string read_file(const fs::path& path) {
    std::ifstream in(path);
    std::string s((std::istreambuf_iterator<char>(in)), {});
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Whether `word` is one of the space-separated words of `list`.
bool listed(const std::string& list, const std::string& word) {
    std::istringstream in(list);
    std::string w;
    while (in >> w)
        if (w == word) return true;
    return false;
}

// mkdir -p below `mount`, remembering the directories it made (outermost first). A new v1
// cpuset directory starts with no CPUs or memory nodes and takes no task until it has them:
// it gets its parent's.
Result<void> make_dirs(const fs::path& mount, const fs::path& relative, bool cpuset,
                       std::vector<fs::path>& made) {
    fs::path dir = mount;
    for (const auto& part : relative) {
        fs::path parent = dir;
        dir /= part;
        std::error_code ec;
        if (fs::exists(dir, ec)) continue;
        if (!fs::create_directory(dir, ec) || ec)
            return fail(dir.string() + ": " + (ec ? ec.message() : "cannot create"));
        made.push_back(dir);
        if (cpuset)
            for (const char* f : {"cpuset.cpus", "cpuset.mems"})
                if (read_file(dir / f).empty())
                    EMBER_TRY(write_file(dir / f, read_file(parent / f)));
    }
    return {};
}

Result<void> join(const JailerOptions& o, const std::vector<CgroupMount>& mounts, pid_t pid,
                  std::vector<fs::path>& made) {
    const fs::path leaf = fs::path(o.parent_cgroup) / o.id;
    const std::string pid_text = std::to_string(pid);
    if (o.cgroup_version == 1) {
        // Each hierarchy once, however many of its files are given.
        std::map<std::string, std::vector<const CgroupValue*>> by_mount;
        for (const auto& c : o.cgroups) {
            const std::string controller = controller_of(c.file);
            const CgroupMount* found = nullptr;
            for (const auto& m : mounts)
                for (const auto& have : m.controllers)
                    if (m.version == 1 && have == controller) found = &m;
            if (!found)
                return fail("--cgroup " + c.file + ": no cgroup v1 hierarchy has the '" +
                            controller + "' controller");
            by_mount[found->path].push_back(&c);
        }
        for (const auto& [path, values] : by_mount) {
            const bool cpuset = controller_of(values.front()->file) == "cpuset";
            EMBER_TRY(make_dirs(path, leaf, cpuset, made));
            for (const auto* v : values)
                EMBER_TRY(write_file(fs::path(path) / leaf / v->file, v->value));
            EMBER_TRY(write_file(fs::path(path) / leaf / "tasks", pid_text));
        }
        return {};
    }
    const CgroupMount* unified = nullptr;
    for (const auto& m : mounts)
        if (m.version == 2 && !unified) unified = &m;
    if (!unified) return fail("--cgroup-version 2: no cgroup v2 hierarchy is mounted");
    const fs::path root = unified->path;
    if (o.cgroups.empty()) {
        std::error_code ec;
        if (!fs::is_directory(root / o.parent_cgroup, ec)) return {};
        return write_file(root / o.parent_cgroup / "cgroup.procs", pid_text);
    }
    // Controllers the values need, enabled from the root down to the new cgroup's parent.
    std::vector<std::string> controllers;
    for (const auto& c : o.cgroups) {
        const std::string name = controller_of(c.file);
        if (name != "cgroup" &&
            std::find(controllers.begin(), controllers.end(), name) == controllers.end())
            controllers.push_back(name);
    }
    EMBER_TRY(make_dirs(root, leaf, false, made));
    fs::path dir = root;
    for (const auto& part : leaf) {
        for (const auto& name : controllers) {
            if (!listed(read_file(dir / "cgroup.subtree_control"), name)) {
                std::string enable = "+";
                enable += name;
                EMBER_TRY(write_file(dir / "cgroup.subtree_control", enable));
            }
        }
        dir /= part;
    }
    for (const auto& c : o.cgroups) EMBER_TRY(write_file(root / leaf / c.file, c.value));
    return write_file(root / leaf / "cgroup.procs", pid_text);
}

}  // namespace

std::vector<CgroupMount> parse_cgroup_mounts(const std::string& proc_mounts) {
    std::vector<CgroupMount> out;
    std::istringstream in(proc_mounts);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string source, path, type, options;
        if (!(fields >> source >> path >> type >> options)) continue;
        if (type == "cgroup2") {
            out.push_back({path, 2, {}});
        } else if (type == "cgroup") {
            CgroupMount m{path, 1, {}};
            std::istringstream opts(options);
            std::string opt;
            while (std::getline(opts, opt, ','))
                if (opt != "rw" && opt != "ro" && opt.find('=') == std::string::npos &&
                    opt.rfind("no", 0) != 0 && opt != "relatime")
                    m.controllers.push_back(opt);
            out.push_back(std::move(m));
        }
    }
    return out;
}

Result<void> join_cgroups(const JailerOptions& o, const std::vector<CgroupMount>& mounts,
                          pid_t pid) {
    std::vector<fs::path> made;
    auto r = join(o, mounts, pid, made);
    if (!r) {
        // A cgroup can be removed once empty: innermost first.
        for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
    }
    return r;
}

}  // namespace ember::jailer
