// The host's pool of 2 MiB pages, for tests and benchmarks that run guests on them.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <string>

#include "core/base/unique_fd.h"

namespace ember::testing {

inline constexpr const char* kPool = "/sys/kernel/mm/hugepages/hugepages-2048kB/";

inline uint64_t pool_value(const std::string& name) {
    std::ifstream in(std::string(kPool) + name);
    uint64_t v = 0;
    in >> v;
    return v;
}
// Pages nobody holds or has reserved.
inline uint64_t pool_available() {
    return pool_value("free_hugepages") - pool_value("resv_hugepages");
}
inline bool set_pool(uint64_t pages) {
    std::ofstream out(std::string(kPool) + "nr_hugepages");
    out << pages;
    out.close();
    return out.good();
}

// The host's pool of 2 MiB pages, sized for one test or benchmark and given back after it. The
// pool is the host's: a lock keeps two of these (ctest runs tests as processes) from sizing it at
// once.
class HugePagePool {
  public:
    HugePagePool()
        : lock_(::open("/run/lock/ember-huge-pages-test", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {
        if (lock_.valid()) ::flock(lock_.get(), LOCK_EX);
        original_ = pool_value("nr_hugepages");
    }
    ~HugePagePool() { set_pool(original_); }
    HugePagePool(const HugePagePool&) = delete;
    HugePagePool& operator=(const HugePagePool&) = delete;

    // At least `pages` available; false when the host cannot find them.
    bool ensure(uint64_t pages) {
        const uint64_t available = pool_available();
        if (available < pages) set_pool(pool_value("nr_hugepages") + pages - available);
        return pool_available() >= pages;
    }
    // None available: only what is held or reserved stays.
    void empty() { set_pool(0); }

  private:
    UniqueFd lock_;
    uint64_t original_ = 0;
};

}  // namespace ember::testing
