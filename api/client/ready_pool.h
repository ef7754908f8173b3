// api/client: a pool of ready embers ("Embers kept ready" in the README, as a class). It keeps
// `size` embers started and serving, each making its KVM VM while it waits (and saying so on its
// --ready-fd); restore() hands one a snapshot load, one that has made its VM first, and gives it
// to the caller, and a replacement starts on the pool's own thread a moment after the load has
// answered (or after a take()), off the caller's path. A ready ember that dies is replaced.
// Jailed or not.
#pragma once

#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "api/client/ember_process.h"
#include "api/client/page_handler.h"
#include "api/client/store_view.h"
#include "api/client/view_maker.h"
#include "core/base/unique_fd.h"

namespace ember::client {

struct PoolOptions {
    // What each ember is started with. Each gets a name, <name>-<n>: unjailed, its socket is
    // <socket_dir>/<name>-<n>.sock and its --id the name; jailed, the name is its jail's id and
    // process.socket_path its socket inside the jail. Its clients share one watchdog.
    ProcessOptions process;
    // Empty: "ember-<this process's pid>", so that two agents, or an agent and the embers its
    // earlier life left running, do not share names.
    std::string name;
    std::string socket_dir = "/run";
    size_t size = 2;
    // After a take(), a restore()'s load or a take_for()'s steps, how long the pool waits before it
    // starts the replacement: the caller's load follows its take within milliseconds, and an ember
    // starting beside it or beside the clone's first steps (spawn, exec, a KVM VM) would slow the
    // very restore the pool is for.
    std::chrono::milliseconds refill_delay{50};
};

struct PoolStats {
    size_t ready = 0;            // serving
    size_t prepared = 0;         // of those, the ones that said they made all they make ahead
    uint64_t started = 0;        // embers that came up and were put in the pool
    uint64_t failed_starts = 0;  // embers that did not come up
    uint64_t died_ready = 0;     // ready embers that ended and were replaced
    uint64_t restores = 0;
    uint64_t failed_restores = 0;
    uint64_t views_made = 0;    // views made in the background after restore_on_host()
    uint64_t views_failed = 0;  // makers that failed, or did not start
    size_t views_making = 0;    // makers still running
    std::string last_error;     // the last failed start's, restore's or view maker's
};

class ReadyPool {
    struct Key {};  // make_unique may call the constructor; nobody else can

  public:
    // Starts filling the pool on its own thread; returns at once.
    static Result<std::unique_ptr<ReadyPool>> start(PoolOptions options);
    // Stops the pool's thread and every ready ember; embers already handed out are the callers'.
    ~ReadyPool();
    ReadyPool(const ReadyPool&) = delete;
    ReadyPool& operator=(const ReadyPool&) = delete;

    // A ready ember, now the caller's (a jailed one's files go into its jail_root() before a
    // load): one that has made its KVM VM if there is one, else the oldest serving (its load
    // then makes the rest, ~0.5 ms, which beats waiting up to 50 ms); waits for one up to the
    // process's start_timeout.
    Result<EmberProcess> take();
    // take(), then PUT /snapshot/load with `load`. An ember whose load failed is stopped.
    Result<EmberProcess> restore(const LoadSnapshot& load);
    // A restore from a store of snapshots: ember-uffd started for it (PageHandler), then
    // restore() through it once it has fetched the state file. The handler is the caller's with
    // the ember, and ends once the ember has.
    struct StoreClone {
        EmberProcess ember;
        PageHandler handler;
    };
    Result<StoreClone> restore_from_store(const StoreRestore& from);
    // A restore from a store's snapshot made whole in the host's cache (view_load(), found or
    // made first), through the File backend: nothing is left running beside the ember. Not for a
    // jailed pool, whose embers see their jail's files alone.
    Result<EmberProcess> restore_from_view(const StoreView& from);
    // A restore of a store's snapshot as this host's cache allows: from its view
    // (restore_from_view()) where one was made this boot, found without making it
    // (find_view_load()); else lazily through ember-uffd (restore_from_store()), after which
    // the pool makes the view in the background at the lowest CPU priority (ViewMaker), for the
    // next restore here: one maker for a snapshot at once, none for one whose maker failed in the
    // last kMakerRetry, stopped with the pool. `view` names the same snapshot and cache as
    // `lazily`. Not for a jailed pool. The pool's thread reaps each maker as it ends, and stops
    // one at the view's timeout.
    struct HostClone {
        EmberProcess ember;
        std::optional<PageHandler> handler;  // the lazy restore's; none from the view
    };
    Result<HostClone> restore_on_host(const StoreRestore& lazily, const StoreView& view);
    static constexpr std::chrono::minutes kMakerRetry{5};
    // Until every view maker has ended, at most `timeout`: for tests.
    Result<void> wait_for_views(std::chrono::milliseconds timeout);
    // take(), then the caller's own first steps on the ember (a load sent its own way, a PATCH
    // after it), with the replacement held back until they have ended, as restore() holds it back
    // for its load. An ember whose steps failed is stopped.
    using FirstSteps = std::function<Result<void>(EmberProcess&)>;
    Result<EmberProcess> take_for(const FirstSteps& first_steps);

    PoolStats stats();
    // Until `size` embers are ready and prepared, at most `timeout`: for tests and benchmarks that
    // measure a full pool.
    Result<void> wait_until_full(std::chrono::milliseconds timeout);

    ReadyPool(Key, PoolOptions options, UniqueFd wake);

  private:
    void refill(const std::stop_token& stop);
    // take() without waking the pool's thread to start a replacement.
    Result<EmberProcess> take_quietly();
    // Wakes the pool's thread to start replacements, not before `not_before`.
    void refill_from(std::chrono::steady_clock::time_point not_before);
    ProcessOptions options_for(uint64_t n) const;
    // Drops ready embers that have ended, reads which are prepared and wakes the waiters when one
    // became so; how many are. Under the lock.
    size_t settle();
    void wake_refill() const;
    // An error for a jailed pool's `call`, whose embers see their jail's files alone.
    Result<void> unjailed(const std::string& call, const std::string& instead) const;
    // Reaps the view makers that have ended (stopping those past their deadline) and counts
    // them. Under makers_mutex_.
    void reap_makers();
    // reap_makers(), then the makers' pidfds added to `fds`; the first deadline among them.
    std::optional<std::chrono::steady_clock::time_point> watch_makers(std::vector<pollfd>& fds);

    PoolOptions options_;
    UniqueFd wake_;  // an eventfd: the pool's thread polls it with the ready embers' pidfds
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<EmberProcess> ready_;
    PoolStats stats_;
    uint64_t next_ = 0;
    std::chrono::steady_clock::time_point refill_not_before_{};
    // Taken before mutex_ where both are.
    std::mutex makers_mutex_;
    std::condition_variable makers_changed_;
    std::vector<ViewMaker> makers_;
    std::map<std::string, std::chrono::steady_clock::time_point> maker_failed_;  // by manifest URL
    std::jthread thread_;  // last: it starts once the rest is built, and stops first
};

}  // namespace ember::client
