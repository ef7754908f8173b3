// api/client: ember's client for host agents, on cpp-httplib (the per-VM ember serves with its own
// framing; this side runs once per host). This file: the one thread that bounds whole calls.
// cpp-httplib bounds each read and write, not a call: a server that sends one byte a second never
// trips a five-second read timeout. A watch runs `on_expiry` (which shuts the call's socket) once
// its deadline passes, and again every few milliseconds until the watch ends, so a call that was
// still connecting when it first fired ends too. A watch may also be given a check, asked every
// few milliseconds while it lives (a call's bytes against their bound, say): once it says so, the
// watch fires as at its deadline. Many clients may share one watchdog.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <thread>

namespace ember::client {

class Watchdog {
  public:
    using Clock = std::chrono::steady_clock;

    Watchdog();
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    // While it lives, its callback may run (on the watchdog's thread, never after the watch has
    // ended: its destructor waits out a running callback).
    class Watch {
      public:
        Watch(Watch&& other) noexcept : dog_(other.dog_), id_(other.id_) { other.dog_ = nullptr; }
        Watch(const Watch&) = delete;
        Watch& operator=(const Watch&) = delete;
        Watch& operator=(Watch&&) = delete;
        ~Watch();
        // Whether the deadline passed and the callback ran.
        bool fired() const;

      private:
        friend class Watchdog;
        Watch(Watchdog* dog, uint64_t id) : dog_(dog), id_(id) {}
        Watchdog* dog_;
        uint64_t id_;
    };

    Watch watch(Clock::time_point deadline, std::function<void()> on_expiry,
                std::function<bool()> overrun = {});

  private:
    struct Entry {
        Clock::time_point next;
        Clock::time_point deadline;
        std::function<void()> on_expiry;
        std::function<bool()> overrun;
        bool fired = false;
    };
    void run(const std::stop_token& stop);

    std::mutex mutex_;
    std::condition_variable_any wake_;
    std::map<uint64_t, Entry> entries_;
    uint64_t next_id_ = 0;  // also how many watches were made: a new one may wake the thread
    Clock::time_point planned_wake_{};  // when the thread wakes next: a watch due sooner wakes it
    std::jthread thread_;               // last: it starts once the rest is built, and stops first
};

}  // namespace ember::client
