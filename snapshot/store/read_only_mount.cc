#include "snapshot/store/read_only_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>

namespace ember::snapshot {

namespace {

constexpr uint64_t kRoot = FUSE_ROOT_ID;
constexpr uint64_t kFirstFile = kRoot + 1;
// Nothing here ever changes while mounted: the kernel may keep names and attributes for a day.
constexpr uint64_t kValidSeconds = 86400;
// What a request may carry: the largest is a LOOKUP's name; writes are refused by the mount.
constexpr uint32_t kMaxWrite = 4096;
constexpr size_t kRequestBuffer = 64 << 10;

fuse_attr attributes(uint64_t node, uint64_t bytes) {
    fuse_attr a{};
    a.ino = node;
    a.nlink = node == kRoot ? 2 : 1;
    a.mode = node == kRoot ? (S_IFDIR | 0555) : (S_IFREG | 0444);
    a.size = bytes;
    a.blocks = (bytes + 511) / 512;
    a.blksize = 4096;
    return a;
}

template <typename T>
T argument(const uint8_t* arg, size_t len) {
    T out{};
    std::memcpy(&out, arg, std::min(len, sizeof out));
    return out;
}

}  // namespace

Result<std::unique_ptr<ReadOnlyMount>> ReadOnlyMount::mount(const std::string& dir,
                                                            std::vector<ServedFile> files) {
    for (const auto& f : files)
        if (f.name.empty() || f.name == "." || f.name == ".." ||
            f.name.find('/') != std::string::npos || f.name.size() > 255)
            return fail("'" + f.name + "' is not a file name");
    // Non-blocking: a request can leave the queue between poll() and read() (its reader killed),
    // and a thread blocked in read() would not see the stop.
    UniqueFd fuse(::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fuse.valid()) return fail_errno("/dev/fuse");
    UniqueFd ended(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!ended.valid()) return fail_errno("eventfd");
    const std::string options = "fd=" + std::to_string(fuse.get()) +
                                ",rootmode=40000,user_id=" + std::to_string(::getuid()) +
                                ",group_id=" + std::to_string(::getgid()) +
                                ",allow_other,default_permissions";
    if (::mount("ember-store", dir.c_str(), "fuse.ember-store",
                MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, options.c_str()) != 0)
        return fail_errno("mounting FUSE on " + dir);
    return std::unique_ptr<ReadOnlyMount>(new ReadOnlyMount(  // NOLINT: private
        dir, std::move(fuse), std::move(ended), std::move(files)));
}

ReadOnlyMount::~ReadOnlyMount() {
    ::umount2(dir_.c_str(), MNT_DETACH);
    // Closing the last descriptor of /dev/fuse (fuse_, once this returns) ends the connection:
    // a VMM still reading gets an error, not a wait for answers nobody will give.
}

Result<void> ReadOnlyMount::serve(
    unsigned threads, int stop_fd,
    const std::function<void(const ServedFile&, const Error&)>& on_error) {
    threads = std::clamp(threads, 1u, kMaxThreads);
    std::vector<std::thread> others;
    for (unsigned i = 1; i < threads; ++i)
        others.emplace_back([&] { serve_one(stop_fd, on_error); });
    serve_one(stop_fd, on_error);
    for (auto& t : others) t.join();
    return {};
}

void ReadOnlyMount::serve_one(
    int stop_fd, const std::function<void(const ServedFile&, const Error&)>& on_error) {
    std::vector<uint8_t> request(kRequestBuffer);
    std::vector<uint8_t> data;
    for (;;) {
        pollfd p[3] = {{fuse_.get(), POLLIN, 0}, {ended_.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(p, stop_fd >= 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (p[1].revents != 0 || (stop_fd >= 0 && p[2].revents != 0)) return;
        if ((p[0].revents & POLLIN) == 0) {
            if (p[0].revents != 0) break;  // the connection ended
            continue;
        }
        const ssize_t n = ::read(fuse_.get(), request.data(), request.size());
        if (n < 0) {
            // ENOENT: the request was interrupted and withdrawn before it was read.
            if (errno == EINTR || errno == EAGAIN || errno == ENOENT) continue;
            break;  // ENODEV: unmounted
        }
        answer(request.data(), static_cast<size_t>(n), data, on_error);
    }
    const uint64_t one = 1;
    (void)!::write(ended_.get(), &one, sizeof one);
}

void ReadOnlyMount::reply(uint64_t unique, int error, const void* body, size_t len) {
    fuse_out_header h{};
    h.len = static_cast<uint32_t>(sizeof h + len);
    h.error = error;
    h.unique = unique;
    iovec iov[2] = {{&h, sizeof h}, {const_cast<void*>(body), len}};
    // An answer to a request the kernel has given up on (an interrupted one) is refused: fine.
    (void)!::writev(fuse_.get(), iov, len != 0 ? 2 : 1);
}

void ReadOnlyMount::answer(const uint8_t* buf, size_t len, std::vector<uint8_t>& data,
                           const std::function<void(const ServedFile&, const Error&)>& on_error) {
    if (len < sizeof(fuse_in_header)) return;
    const auto in = argument<fuse_in_header>(buf, len);
    const size_t arg_len = std::min<size_t>(len, in.len) - sizeof in;
    const uint8_t* arg = buf + sizeof in;
    const bool is_file = in.nodeid >= kFirstFile && in.nodeid - kFirstFile < files_.size();
    const ServedFile* file = is_file ? &files_[in.nodeid - kFirstFile] : nullptr;
    switch (in.opcode) {
        case FUSE_INIT: {
            const auto init = argument<fuse_init_in>(arg, arg_len);
            if (init.major != FUSE_KERNEL_VERSION) {
                reply(in.unique, -EPROTO);
                return;
            }
            fuse_init_out out{};
            out.major = FUSE_KERNEL_VERSION;
            out.minor = std::min<uint32_t>(init.minor, FUSE_KERNEL_MINOR_VERSION);
            out.max_readahead = init.max_readahead;
            // Reads in parallel and up to kMaxRead each, where the kernel offers them.
            out.flags = init.flags & (FUSE_ASYNC_READ | FUSE_MAX_PAGES);
            out.max_pages = static_cast<uint16_t>(kMaxRead / 4096);
            out.max_background = 16;
            out.congestion_threshold = 12;
            out.max_write = kMaxWrite;
            out.time_gran = 1;
            reply(in.unique, 0, &out, sizeof out);
            return;
        }
        case FUSE_LOOKUP: {
            const std::string_view name(reinterpret_cast<const char*>(arg),
                                        strnlen(reinterpret_cast<const char*>(arg), arg_len));
            const auto found = std::find_if(files_.begin(), files_.end(),
                                            [&](const ServedFile& f) { return f.name == name; });
            if (in.nodeid != kRoot || found == files_.end()) {
                reply(in.unique, -ENOENT);
                return;
            }
            fuse_entry_out out{};
            out.nodeid = kFirstFile + static_cast<uint64_t>(found - files_.begin());
            out.generation = 1;
            out.entry_valid = out.attr_valid = kValidSeconds;
            out.attr = attributes(out.nodeid, found->bytes);
            reply(in.unique, 0, &out, sizeof out);
            return;
        }
        case FUSE_GETATTR: {
            if (in.nodeid != kRoot && !is_file) {
                reply(in.unique, -ENOENT);
                return;
            }
            fuse_attr_out out{};
            out.attr_valid = kValidSeconds;
            out.attr = attributes(in.nodeid, file != nullptr ? file->bytes : 0);
            reply(in.unique, 0, &out, sizeof out);
            return;
        }
        case FUSE_OPEN:
        case FUSE_OPENDIR: {
            const auto open = argument<fuse_open_in>(arg, arg_len);
            if ((in.opcode == FUSE_OPEN) != is_file ||
                (in.opcode == FUSE_OPENDIR && in.nodeid != kRoot)) {
                reply(in.unique, in.opcode == FUSE_OPEN ? -EISDIR : -ENOTDIR);
                return;
            }
            if ((open.flags & O_ACCMODE) != O_RDONLY) {
                reply(in.unique, -EROFS);
                return;
            }
            fuse_open_out out{};
            out.fh = in.nodeid;
            out.open_flags = FOPEN_KEEP_CACHE;
            reply(in.unique, 0, &out, sizeof out);
            return;
        }
        case FUSE_READ: {
            const auto read = argument<fuse_read_in>(arg, arg_len);
            if (file == nullptr) {
                reply(in.unique, -EBADF);
                return;
            }
            data.resize(std::min(read.size, kMaxRead));
            auto got = file->read(read.offset, data);
            if (!got) {
                on_error(*file, got.error());
                reply(in.unique, -EIO);
                return;
            }
            reply(in.unique, 0, data.data(), *got);
            return;
        }
        case FUSE_READDIR: {
            const auto read = argument<fuse_read_in>(arg, arg_len);
            if (in.nodeid != kRoot) {
                reply(in.unique, -ENOTDIR);
                return;
            }
            data.assign(std::min(read.size, kMaxRead), 0);
            size_t used = 0;
            for (uint64_t i = read.offset; i < files_.size() + 2; ++i) {
                const std::string_view name = i == 0   ? std::string_view(".")
                                              : i == 1 ? std::string_view("..")
                                                       : std::string_view(files_[i - 2].name);
                const size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name.size());
                if (used + size > data.size()) break;
                fuse_dirent d{};
                d.ino = i < 2 ? kRoot : kFirstFile + (i - 2);
                d.off = i + 1;
                d.namelen = static_cast<uint32_t>(name.size());
                d.type = i < 2 ? DT_DIR : DT_REG;
                std::memcpy(data.data() + used, &d, FUSE_NAME_OFFSET);
                std::memcpy(data.data() + used + FUSE_NAME_OFFSET, name.data(), name.size());
                used += size;
            }
            reply(in.unique, 0, data.data(), used);
            return;
        }
        case FUSE_STATFS: {
            fuse_statfs_out out{};
            out.st.bsize = out.st.frsize = 4096;
            out.st.files = files_.size() + 1;
            out.st.namelen = 255;
            for (const auto& f : files_) out.st.blocks += (f.bytes + 4095) / 4096;
            reply(in.unique, 0, &out, sizeof out);
            return;
        }
        case FUSE_RELEASE:
        case FUSE_RELEASEDIR:
        case FUSE_FLUSH: reply(in.unique, 0); return;
        case FUSE_FORGET:
        case FUSE_BATCH_FORGET:
        case FUSE_INTERRUPT: return;  // never answered
        case FUSE_DESTROY: reply(in.unique, 0); return;
        default: reply(in.unique, -ENOSYS); return;
    }
}

}  // namespace ember::snapshot
