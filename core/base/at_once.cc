#include "core/base/at_once.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace ember {

unsigned busy_threads(unsigned most) {
    return std::clamp(std::thread::hardware_concurrency(), 1u, most);
}

Result<void> for_each_at_once(size_t count, unsigned threads,
                              const std::function<Result<void>(size_t)>& each) {
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex first_mutex;
    std::optional<Error> first;
    auto work = [&] {
        for (size_t i;
             !failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < count;) {
            auto r = each(i);
            if (r) continue;
            const std::lock_guard guard(first_mutex);
            if (!first) first = std::move(r.error());
            failed = true;
        }
    };
    const size_t helpers = std::min<size_t>(std::max(threads, 1u), count) - (count > 0 ? 1 : 0);
    {
        std::vector<std::jthread> pool;
        pool.reserve(helpers);
        for (size_t t = 0; t < helpers; ++t) pool.emplace_back(work);
        work();
    }
    if (first) return std::unexpected(std::move(*first));
    return {};
}

}  // namespace ember
