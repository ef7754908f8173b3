#include "snapshot/restore/uffd_backing.h"

#include <poll.h>
#include <pthread.h>

#include <array>
#include <chrono>
#include <vector>

#include "core/base/fatal_exit.h"
#include "core/base/log.h"
#include "core/seccomp/install.h"
#include "snapshot/uffd/handshake.h"

namespace ember::snapshot {
namespace {

// A handler that has not taken the connection and the message by then is not coming.
constexpr std::chrono::seconds kHandshakeDeadline{5};

}  // namespace

UffdBacking::UffdBacking(Key, Userfault uffd, UniqueFd connection, UniqueFd handler, EventFd stop)
    : uffd_(std::move(uffd)),
      connection_(std::move(connection)),
      handler_(std::move(handler)),
      stop_(std::move(stop)) {}

UffdBacking::~UffdBacking() {
    stop_.signal();
    if (watcher_.joinable()) watcher_.join();
}

Result<std::unique_ptr<UffdBacking>> UffdBacking::connect(const GuestMemory& memory,
                                                          const std::string& socket_path,
                                                          const seccomp::BpfProgram* filter) {
    const std::string field = "mem_backend.backend_path " + socket_path;
    auto uffd = Userfault::create();
    EMBER_TRY(uffd, "mem_backend Uffd");
    std::vector<snapshot::UffdRegion> regions;
    uint64_t offset = 0;
    for (const auto& r : memory.regions()) {
        EMBER_TRY(uffd->register_missing(r.mapping.data(), r.size()), "mem_backend Uffd");
        regions.push_back(
            {reinterpret_cast<uint64_t>(r.mapping.data()), r.size(), offset, memory.page_size()});
        offset += r.size();
    }
    auto connection =
        snapshot::send_uffd_handshake(socket_path, regions, uffd->fd(), kHandshakeDeadline);
    EMBER_TRY(connection, field);
    auto peer = snapshot::peer_of(connection->get());
    const pid_t handler_pid = peer.pid;
    if (!peer.pidfd.valid())
        log::warn("restore: the page-fault handler's process cannot be watched from here (pid " +
                  std::to_string(handler_pid) +
                  "): should it exit, faults on pages it has not served will wait for ever");
    auto stop = EventFd::create();
    EMBER_TRY(stop);
    auto backing = std::make_unique<UffdBacking>(Key{}, std::move(*uffd), std::move(*connection),
                                                 std::move(peer.pidfd), std::move(*stop));
    if (backing->handler_.valid()) {
        try {
            backing->watcher_ = std::thread(
                [b = backing.get(), filter, handler_pid] { b->watch(filter, handler_pid); });
        } catch (const std::system_error& e) {
            return fail(std::string("cannot start the page-fault handler's watch: ") + e.what());
        }
    }
    log::info("restore: guest memory is served by the page-fault handler at " + socket_path +
              " (pid " + std::to_string(handler_pid) + ")");
    return backing;
}

void UffdBacking::watch(const seccomp::BpfProgram* filter, pid_t handler_pid) const {
    ::pthread_setname_np(::pthread_self(), "uffd_watch");
    log::set_thread_name("uffd_watch");
    if (filter != nullptr) {
        if (auto r = seccomp::install(*filter, seccomp::ThreadKind::Vmm); !r) {
            log::error("the page-fault handler's watch: " + r.error().message);
            fatal_exit::exit_now(1);
        }
    }
    std::array<pollfd, 2> fds{{{handler_.get(), POLLIN, 0}, {stop_.fd(), POLLIN, 0}}};
    for (;;) {
        if (::poll(fds.data(), fds.size(), -1) < 0) continue;
        if ((fds[1].revents & POLLIN) != 0) return;
        if ((fds[0].revents & POLLIN) != 0) {
            log::error("the page-fault handler (pid " + std::to_string(handler_pid) +
                       ") exited while it served this microVM's memory: pages it had not served "
                       "are gone, so the microVM ends");
            fatal_exit::exit_now(1);
        }
    }
}

}  // namespace ember::snapshot
