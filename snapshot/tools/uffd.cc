// ember-uffd --socket PATH --mem-file FILE [--working-set WS --snapshot-path STATE]
//            [--timeout SECONDS]
// A page-fault handler for the Uffd memory backend, of ember and of Firecracker alike: listens on
// PATH, takes one VMM's handshake (within --timeout, default 30 s), installs the working set WS
// whole if given (checked against the snapshot it was recorded from), then serves every other
// page from the memory file as the guest faults on it. Exits 0 once the VMM is gone, with what it
// served on stderr; 1 on any error, which the VMM sees as its handler's exit.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "core/base/file_io.h"
#include "core/base/mapping.h"
#include "core/base/open_file.h"
#include "snapshot/format.h"
#include "snapshot/uffd/handshake.h"
#include "snapshot/uffd/page_server.h"

namespace {

using namespace ember;

struct Options {
    std::string socket, mem_file, working_set, snapshot;
    int timeout_s = 30;
};

int usage() {
    std::fprintf(stderr,
                 "usage: ember-uffd --socket PATH --mem-file FILE [--working-set WS "
                 "--snapshot-path STATE] [--timeout SECONDS]\n");
    return 2;
}

// Bound under a temporary name and renamed into place once listening: a VMM that finds the
// path can connect.
Result<UniqueFd> listen_on(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string temporary = path + ".binding-" + std::to_string(::getpid());
    if (temporary.size() >= sizeof addr.sun_path) return fail("--socket: path too long");
    std::memcpy(addr.sun_path, temporary.c_str(), temporary.size() + 1);
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock.valid()) return fail_errno("socket");
    ::unlink(temporary.c_str());
    if (::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
        return fail_errno("--socket " + path + ": bind");
    if (::listen(sock.get(), 1) != 0 || ::rename(temporary.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temporary.c_str());
        return fail_errno("--socket " + path, err);
    }
    return sock;
}

Result<int> run(const Options& o) {
    auto mem_fd = open_file(o.mem_file, O_RDONLY);
    EMBER_TRY(mem_fd, "--mem-file " + o.mem_file);
    auto mem_size = file_size(mem_fd->get());
    EMBER_TRY(mem_size, "--mem-file " + o.mem_file);
    if (*mem_size == 0) return fail("--mem-file " + o.mem_file + ": empty");
    auto memory = Mapping::map(*mem_size, PROT_READ, MAP_PRIVATE, mem_fd->get());
    EMBER_TRY(memory, "--mem-file " + o.mem_file);

    UniqueFd ws_fd;
    std::optional<snapshot::WorkingSet> set;
    if (!o.working_set.empty()) {
        auto state = snapshot::read_state_file(o.snapshot);
        EMBER_TRY(state, "--snapshot-path " + o.snapshot);
        auto ws = open_file(o.working_set, O_RDONLY);
        EMBER_TRY(ws, "--working-set " + o.working_set);
        ws_fd = std::move(*ws);
        auto read = snapshot::read_working_set(ws_fd.get(),
                                               {snapshot::closing_checksum(*state), *mem_size});
        EMBER_TRY(read, "--working-set " + o.working_set);
        set = std::move(*read);
    }

    auto listener = listen_on(o.socket);
    EMBER_TRY(listener);
    auto handshake =
        snapshot::receive_uffd_handshake(listener->get(), std::chrono::seconds(o.timeout_s));
    ::unlink(o.socket.c_str());  // one VMM per handler
    EMBER_TRY(handshake);
    const pid_t vmm = handshake->peer.pid;
    const UniqueFd pidfd = std::move(handshake->peer.pidfd);
    auto server = snapshot::PageServer::create(std::move(*handshake),
                                               {memory->data(), static_cast<size_t>(*mem_size)});
    EMBER_TRY(server);
    if (set) EMBER_TRY(server->install(ws_fd.get(), *set));
    EMBER_TRY(server->serve(pidfd.get()));
    const auto& c = server->counts();
    std::fprintf(stderr,
                 "ember-uffd: the VMM (pid %d) is gone; %llu working-set pages installed, %llu "
                 "pages served on faults, %llu as zeros after %llu removals\n",
                 static_cast<int>(vmm), static_cast<unsigned long long>(c.prefetched),
                 static_cast<unsigned long long>(c.faults),
                 static_cast<unsigned long long>(c.zero_faults),
                 static_cast<unsigned long long>(c.removes));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string v = argv[++i];
        if (a == "--socket")
            o.socket = v;
        else if (a == "--mem-file")
            o.mem_file = v;
        else if (a == "--working-set")
            o.working_set = v;
        else if (a == "--snapshot-path")
            o.snapshot = v;
        else if (a == "--timeout") {
            // Whole seconds from 1 to a day: atoi made 4294967297 one second, and junk zero.
            int n = 0;
            const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > 86400) {
                std::fprintf(stderr,
                             "ember-uffd: --timeout '%s' is not a whole number of "
                             "seconds from 1 to 86400\n",
                             v.c_str());
                return 2;
            }
            o.timeout_s = n;
        } else
            return usage();
    }
    if (o.socket.empty() || o.mem_file.empty() || o.timeout_s <= 0 ||
        o.working_set.empty() != o.snapshot.empty())
        return usage();
    auto r = run(o);
    if (!r) {
        std::fprintf(stderr, "ember-uffd: %s\n", r.error().message.c_str());
        return 1;
    }
    return *r;
}
