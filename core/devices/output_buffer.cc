#include "core/devices/output_buffer.h"

#include <unistd.h>

#include <algorithm>

#include "core/base/file_io.h"

namespace ember {

OutputBuffer::OutputBuffer(size_t capacity, EventFd ready)
    : capacity_(capacity),
      ready_(std::move(ready)),
      ring_(std::make_unique_for_overwrite<uint8_t[]>(capacity)),
      scratch_(std::make_unique_for_overwrite<uint8_t[]>(capacity)) {}

void OutputBuffer::push(std::span<const uint8_t> bytes) {
    bool was_empty;
    {
        std::lock_guard lock(mutex_);
        was_empty = size_ == 0;
        size_t room = capacity_ - size_;
        size_t n = std::min(room, bytes.size());
        for (size_t i = 0; i < n; ++i) ring_[(head_ + size_ + i) % capacity_] = bytes[i];
        size_ += n;
        if (n < bytes.size()) dropped_.fetch_add(bytes.size() - n, std::memory_order_relaxed);
        if (n == 0) return;
    }
    if (was_empty) ready_.signal();
}

Result<OutputBuffer::Drain> OutputBuffer::drain_to(int fd) {
    std::lock_guard drain(drain_mutex_);
    for (;;) {
        size_t contiguous;
        {
            std::lock_guard lock(mutex_);
            if (size_ == 0) {
                head_ = 0;
                return Drain::Empty;
            }
            contiguous = std::min(size_, capacity_ - head_);
            std::copy_n(ring_.get() + head_, contiguous, scratch_.get());
        }
        // Written without the lock: a slow console delays only this thread, never a vCPU's push.
        ssize_t n = retry_on_eintr([&] { return ::write(fd, scratch_.get(), contiguous); });
        if (n < 0) {
            if (errno == EAGAIN) return Drain::Blocked;
            return fail_errno("serial output");
        }
        std::lock_guard lock(mutex_);
        head_ = (head_ + static_cast<size_t>(n)) % capacity_;
        size_ -= static_cast<size_t>(n);
    }
}

void OutputBuffer::discard_all() {
    std::lock_guard drain(drain_mutex_);
    std::lock_guard lock(mutex_);
    dropped_.fetch_add(size_, std::memory_order_relaxed);
    head_ = size_ = 0;
}

std::vector<uint8_t> OutputBuffer::take_all() {
    std::lock_guard drain(drain_mutex_);
    std::lock_guard lock(mutex_);
    std::vector<uint8_t> out;
    out.reserve(size_);
    for (size_t i = 0; i < size_; ++i) out.push_back(ring_[(head_ + i) % capacity_]);
    head_ = size_ = 0;
    return out;
}

}  // namespace ember
