// api/client: ember-uffd started for one restore from a store of snapshots (README, "Snapshots in a
// store"): it fetches the snapshot's state file (and the working set's index, beside it, where the
// snapshot has one), then listens, and the load goes to it through Firecracker's Uffd backend,
// naming that working set so that ember maps its pages for the guest before it runs. It ends by
// itself once its VM's ember has; until then this object owns it (its destructor kills it), unless
// it is let go to outlive the caller (emberctl).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/actions.h"
#include "core/base/error.h"
#include "core/base/unique_fd.h"

namespace ember::client {

struct StoreRestore {
    std::string manifest_url;     // file://, http:// or https://
    std::string manifest_sha256;  // the pin, as push printed it; empty: the store is trusted
    std::string drive_root;       // the snapshot's drives at DIR/<drive id> (store_state.h)
    std::vector<std::string> writable_drives;  // the ids of those it may write
    std::string socket_path;                   // the handler's socket: the load's backend_path
    std::string state_path;    // where the state file is written: the load's snapshot_path
    std::string cache_dir;     // the host's chunk cache; empty: none
    uint64_t cache_bytes = 0;  // its bound; 0: ember-uffd's own (4 GiB)
    std::string ember_uffd = "ember-uffd";
    std::string log_path;                       // its stderr, appended; empty: /dev/null
    std::chrono::milliseconds timeout{60'000};  // until its socket is there
    bool resume_vm = true;
    std::vector<NetworkOverride> network_overrides;  // the load's: a clone's own taps
};

class PageHandler {
  public:
    // Starts the handler and waits until its socket is there: it has fetched the state file. A
    // handler that ends first, or is not there within the timeout, is an error (with its log's
    // last line where it has one), and nothing is left running.
    static Result<PageHandler> start(const StoreRestore& restore);
    PageHandler(PageHandler&&) noexcept;
    PageHandler& operator=(PageHandler&&) noexcept;
    ~PageHandler();

    // The load that goes through it.
    const LoadSnapshot& load() const { return load_; }
    pid_t pid() const { return pid_; }
    // Waits until it ends (once its VM's ember has), at most `timeout`, then kills it; its wait
    // status.
    int wait(std::chrono::milliseconds timeout);
    // Leaves it running when this object goes (it is reparented, and ends with its VM).
    void let_go() { pid_ = -1; }

  private:
    PageHandler(pid_t pid, UniqueFd pidfd, LoadSnapshot load)
        : pid_(pid), pidfd_(std::move(pidfd)), load_(std::move(load)) {}
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    LoadSnapshot load_;
};

}  // namespace ember::client
