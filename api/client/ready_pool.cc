#include "api/client/ready_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <vector>

namespace ember::client {
namespace {

// After a start that failed, the pool waits this long before the next, doubling up to the most:
// a missing kernel or a full host should not make it spin.
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMostBackoff{2000};

void drain(int eventfd) {
    uint64_t count = 0;
    (void)!::read(eventfd, &count, sizeof count);
}

}  // namespace

Result<std::unique_ptr<ReadyPool>> ReadyPool::start(PoolOptions options) {
    if (options.size == 0) return fail("a pool of ready embers needs a size of at least 1");
    if (options.name.empty()) options.name = "ember-" + std::to_string(::getpid());
    if (!options.process.client.watchdog)
        options.process.client.watchdog = std::make_shared<Watchdog>();
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (wake.get() < 0) return fail_errno("eventfd");
    return std::make_unique<ReadyPool>(Key{}, std::move(options), std::move(wake));
}

ReadyPool::ReadyPool(Key, PoolOptions options, UniqueFd wake)
    : options_(std::move(options)),
      wake_(std::move(wake)),
      thread_([this](const std::stop_token& stop) { refill(stop); }) {}

ReadyPool::~ReadyPool() {
    thread_.request_stop();
    thread_.join();
    // All at once, then each reaped: their exits overlap.
    for (auto& e : ready_) ::kill(e.pid(), SIGTERM);
}

ProcessOptions ReadyPool::options_for(uint64_t n) const {
    ProcessOptions o = options_.process;
    o.watch_prepared = true;
    const std::string name = options_.name + "-" + std::to_string(n);
    if (o.jail) {
        o.jail->id = name;
    } else {
        o.socket_path = options_.socket_dir + "/" + name + ".sock";
        o.args.insert(o.args.begin(), {"--id", name});
    }
    return o;
}

void ReadyPool::refill_from(std::chrono::steady_clock::time_point not_before) {
    {
        std::lock_guard lock(mutex_);
        refill_not_before_ = not_before;
    }
    wake_refill();
}

void ReadyPool::wake_refill() const {
    const uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
}

size_t ReadyPool::settle() {
    const size_t before = ready_.size();
    std::erase_if(ready_, [](EmberProcess& e) { return e.ended(); });
    stats_.died_ready += before - ready_.size();
    size_t prepared = 0;
    bool became = false;
    for (auto& e : ready_) {
        const bool unknown = e.prepared_fd() >= 0;  // prepared() reads its line only then
        const bool is = e.prepared();
        became |= unknown && is;
        prepared += is ? 1 : 0;
    }
    if (became) changed_.notify_all();
    return prepared;
}

void ReadyPool::refill(const std::stop_token& stop) {
    std::stop_callback on_stop(stop, [this] { wake_refill(); });
    std::chrono::milliseconds backoff{0};
    while (!stop.stop_requested()) {
        std::optional<uint64_t> n;
        std::vector<pollfd> fds{{.fd = wake_.get(), .events = POLLIN, .revents = 0}};
        int wait_ms = -1;
        // Before mutex_: the view makers that ended are reaped, and the others watched until
        // their end or their deadline.
        if (auto deadline = watch_makers(fds))
            wait_ms = static_cast<int>(std::clamp<int64_t>(
                std::chrono::ceil<std::chrono::milliseconds>(*deadline -
                                                             std::chrono::steady_clock::now())
                    .count(),
                0, INT32_MAX));
        {
            std::lock_guard lock(mutex_);
            settle();
            const auto now = std::chrono::steady_clock::now();
            if (ready_.size() < options_.size && now >= refill_not_before_)
                n = next_++;
            else if (ready_.size() < options_.size) {
                const auto until = static_cast<int>(
                    std::chrono::ceil<std::chrono::milliseconds>(refill_not_before_ - now).count());
                wait_ms = wait_ms < 0 ? until : std::min(wait_ms, until);
            }
            for (const auto& e : ready_) {
                fds.push_back({.fd = e.pidfd(), .events = POLLIN, .revents = 0});
                if (e.prepared_fd() >= 0)
                    fds.push_back({.fd = e.prepared_fd(), .events = POLLIN, .revents = 0});
            }
        }
        if (n) {
            auto ember = EmberProcess::start(options_for(*n));
            {
                std::lock_guard lock(mutex_);
                if (ember) {
                    ready_.push_back(std::move(*ember));
                    ++stats_.started;
                } else {
                    ++stats_.failed_starts;
                    stats_.last_error = ember.error().message;
                }
            }
            changed_.notify_all();
            if (ember) {
                backoff = std::chrono::milliseconds(0);
                continue;
            }
            backoff = std::clamp(backoff * 2, kFirstBackoff, kMostBackoff);
            pollfd w = fds.front();
            ::poll(&w, 1, static_cast<int>(backoff.count()));
            drain(wake_.get());
            continue;
        }
        // Full, or waiting out a take()'s delay: sleep until a take() or stop wakes the pool, a
        // ready ember ends or is prepared, or the delay is over.
        ::poll(fds.data(), fds.size(), wait_ms);
        drain(wake_.get());
    }
}

Result<EmberProcess> ReadyPool::take() {
    auto ember = take_quietly();
    EMBER_TRY(ember);
    refill_from(std::chrono::steady_clock::now() + options_.refill_delay);
    return ember;
}

Result<EmberProcess> ReadyPool::take_quietly() {
    const auto timeout = options_.process.start_timeout;
    std::unique_lock lock(mutex_);
    const bool some = changed_.wait_for(lock, timeout, [&] {
        settle();
        return !ready_.empty();
    });
    if (!some)
        return fail(
            "no ready ember within " + std::to_string(timeout.count()) + " ms" +
            (stats_.last_error.empty() ? "" : "; the last start failed: " + stats_.last_error));
    auto chosen = std::ranges::find_if(ready_, [](EmberProcess& e) { return e.prepared(); });
    if (chosen == ready_.end()) chosen = ready_.begin();
    EmberProcess ember = std::move(*chosen);
    ready_.erase(chosen);
    return ember;
}

Result<void> ReadyPool::unjailed(const std::string& call, const std::string& instead) const {
    if (options_.process.jail)
        return fail(call + ": a jailed ember cannot reach the cache's views; " + instead);
    return {};
}

Result<ReadyPool::HostClone> ReadyPool::restore_on_host(const StoreRestore& lazily,
                                                        const StoreView& view) {
    EMBER_TRY(unjailed("restore_on_host", "use restore_from_store()"));
    auto found = find_view_load(view);
    EMBER_TRY(found);
    if (*found) {
        auto ember = restore(**found);
        EMBER_TRY(ember);
        return HostClone{std::move(*ember), std::nullopt};
    }
    auto clone = restore_from_store(lazily);
    EMBER_TRY(clone);
    // Once the clone has answered the load: the view's fetches and writes come after it.
    std::lock_guard makers(makers_mutex_);
    reap_makers();
    const bool making = std::ranges::any_of(
        makers_, [&](const ViewMaker& m) { return m.manifest_url() == view.manifest_url; });
    // A maker that failed (a folder without user xattrs, a view larger than the cache allows)
    // would most likely fail again, having fetched and written all it could first.
    const auto failed = maker_failed_.find(view.manifest_url);
    const bool failed_lately = failed != maker_failed_.end() &&
                               std::chrono::steady_clock::now() - failed->second < kMakerRetry;
    if (!making && !failed_lately) {
        auto maker = ViewMaker::start(view);
        if (maker) {
            makers_.push_back(std::move(*maker));
            wake_refill();  // its thread watches for the maker's end
        } else {
            maker_failed_[view.manifest_url] = std::chrono::steady_clock::now();
            std::lock_guard lock(mutex_);
            ++stats_.views_failed;
            stats_.last_error = maker.error().message;
        }
    }
    return HostClone{std::move(clone->ember), std::move(clone->handler)};
}

void ReadyPool::reap_makers() {
    for (auto it = makers_.begin(); it != makers_.end();) {
        if (!it->ended()) {
            ++it;
            continue;
        }
        auto made = it->result();
        if (made)
            maker_failed_.erase(it->manifest_url());
        else
            maker_failed_[it->manifest_url()] = std::chrono::steady_clock::now();
        {
            std::lock_guard lock(mutex_);
            ++(made ? stats_.views_made : stats_.views_failed);
            if (!made) stats_.last_error = made.error().message;
        }
        it = makers_.erase(it);
    }
    makers_changed_.notify_all();
}

std::optional<std::chrono::steady_clock::time_point> ReadyPool::watch_makers(
    std::vector<pollfd>& fds) {
    std::lock_guard makers(makers_mutex_);
    reap_makers();
    std::optional<std::chrono::steady_clock::time_point> first;
    for (const auto& m : makers_) {
        fds.push_back({.fd = m.pidfd(), .events = POLLIN, .revents = 0});
        first = std::min(first.value_or(m.deadline()), m.deadline());
    }
    return first;
}

Result<void> ReadyPool::wait_for_views(std::chrono::milliseconds timeout) {
    std::unique_lock makers(makers_mutex_);
    // The pool's thread reaps each as it ends.
    if (makers_changed_.wait_for(makers, timeout, [&] { return makers_.empty(); })) return {};
    return fail(std::to_string(makers_.size()) + " view makers still running after " +
                std::to_string(timeout.count()) + " ms");
}

Result<ReadyPool::StoreClone> ReadyPool::restore_from_store(const StoreRestore& from) {
    auto handler = PageHandler::start(from);
    EMBER_TRY(handler);
    auto ember = restore(handler->load());
    EMBER_TRY(ember);
    return StoreClone{std::move(*ember), std::move(*handler)};
}

Result<EmberProcess> ReadyPool::restore_from_view(const StoreView& from) {
    EMBER_TRY(unjailed("restore_from_view",
                       "take() one and link the view's files (view_load()) into its jail"));
    auto load = view_load(from);
    EMBER_TRY(load);
    return restore(*load);
}

Result<EmberProcess> ReadyPool::take_for(const FirstSteps& first_steps) {
    // The replacement starts a moment after the steps have ended: an ember starting (spawn, exec,
    // its KVM VM) beside a load, or beside the clone's first steps, would slow the very restore
    // the pool is for.
    auto ember = take_quietly();
    EMBER_TRY(ember);
    auto done = first_steps(*ember);
    refill_from(std::chrono::steady_clock::now() + options_.refill_delay);
    if (!done) return std::unexpected(std::move(done.error()));  // the ember stops as it goes
    return ember;
}

Result<EmberProcess> ReadyPool::restore(const LoadSnapshot& load) {
    auto ember = take_for([&](EmberProcess& e) { return e.client().load_snapshot(load); });
    std::lock_guard lock(mutex_);
    ++(ember ? stats_.restores : stats_.failed_restores);
    if (!ember) stats_.last_error = ember.error().message;
    return ember;
}

PoolStats ReadyPool::stats() {
    std::lock_guard makers(makers_mutex_);
    reap_makers();
    std::lock_guard lock(mutex_);
    PoolStats s = stats_;
    s.ready = ready_.size();
    s.prepared = settle();
    s.views_making = makers_.size();
    return s;
}

Result<void> ReadyPool::wait_until_full(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    const bool full = changed_.wait_for(lock, timeout, [&] { return settle() >= options_.size; });
    if (!full)
        return fail(
            "the pool had " + std::to_string(settle()) + " of " + std::to_string(options_.size) +
            " embers ready and prepared after " + std::to_string(timeout.count()) + " ms" +
            (stats_.last_error.empty() ? "" : "; the last start failed: " + stats_.last_error));
    return {};
}

}  // namespace ember::client
