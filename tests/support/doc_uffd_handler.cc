// doc_uffd_handler SOCKET MEM_FILE: a page-fault handler written from Firecracker's documentation
// of its Uffd backend alone ("Handling snapshot memory loading"), sharing no code with ember: it
// binds and listens on SOCKET; the VMM connects and sends, once, a JSON array of regions
// (base_host_virt_addr, size, offset, page size) with the userfaultfd as SCM_RIGHTS; on a fault
// it loads the whole region holding the address from MEM_FILE, mapped privately, with UFFDIO_COPY,
// as the documentation's example does; after UFFD_EVENT_REMOVE it serves those pages as zeros.
// Exits when the VMM's connection closes. A test that ember speaks the documented protocol.
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Region {
    unsigned long long base = 0, size = 0, offset = 0;
    bool loaded = false;
    std::vector<bool> removed;
};

// The number after "key": in the object text `obj`; the documentation names the fields, not
// their order.
unsigned long long number_after(const std::string& obj, const char* key) {
    const std::string quoted = std::string("\"") + key + "\"";
    const size_t at = obj.find(quoted);
    if (at == std::string::npos) return 0;
    const size_t colon = obj.find(':', at + quoted.size());
    return std::strtoull(obj.c_str() + colon + 1, nullptr, 10);
}

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "doc_uffd_handler: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: doc_uffd_handler SOCKET MEM_FILE\n");
        return 2;
    }
    const int mem = ::open(argv[2], O_RDONLY);
    struct stat st{};
    if (mem < 0 || ::fstat(mem, &st) != 0) die("memory file");
    auto* file = static_cast<unsigned char*>(
        ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, mem, 0));
    if (file == MAP_FAILED) die("mmap");

    const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 1) != 0)
        die("bind/listen");
    std::printf("listening\n");
    std::fflush(stdout);
    const int conn = ::accept(listener, nullptr, nullptr);
    if (conn < 0) die("accept");

    char buf[8192] = {};
    iovec iov{buf, sizeof buf - 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(conn, &msg, 0) <= 0) die("recvmsg");
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    if (c == nullptr || c->cmsg_type != SCM_RIGHTS) die("no userfaultfd in the message");
    int uffd = -1;
    std::memcpy(&uffd, CMSG_DATA(c), sizeof uffd);

    std::vector<Region> regions;
    const std::string json = buf;
    for (size_t open = json.find('{'); open != std::string::npos; open = json.find('{', open + 1)) {
        const std::string obj = json.substr(open, json.find('}', open) - open);
        Region r;
        r.base = number_after(obj, "base_host_virt_addr");
        r.size = number_after(obj, "size");
        r.offset = number_after(obj, "offset");
        r.removed.assign(r.size / 4096, false);
        regions.push_back(r);
    }
    std::printf("%zu regions\n", regions.size());
    std::fflush(stdout);

    pollfd fds[2] = {{uffd, POLLIN, 0}, {conn, POLLRDHUP, 0}};
    for (;;) {
        if (::poll(fds, 2, -1) < 0) continue;
        if ((fds[0].revents & POLLIN) == 0) {
            if (fds[1].revents != 0) return 0;
            continue;
        }
        uffd_msg m{};
        if (::read(uffd, &m, sizeof m) != sizeof m) continue;
        if (m.event == UFFD_EVENT_REMOVE) {
            for (auto& r : regions)
                for (auto a = m.arg.remove.start; a < m.arg.remove.end; a += 4096)
                    if (a >= r.base && a < r.base + r.size) r.removed[(a - r.base) / 4096] = true;
            continue;
        }
        if (m.event != UFFD_EVENT_PAGEFAULT) continue;
        const unsigned long long at = m.arg.pagefault.address;
        for (auto& r : regions) {
            if (at < r.base || at >= r.base + r.size) continue;
            const unsigned long long page = (at - r.base) / 4096;
            if (r.removed[page]) {
                uffdio_zeropage z{};
                z.range.start = r.base + page * 4096;
                z.range.len = 4096;
                if (::ioctl(uffd, UFFDIO_ZEROPAGE, &z) != 0 && errno != EEXIST) die("zeropage");
                continue;
            }
            // The whole region on its first fault, a page at a time: a page already there (EEXIST)
            // would stop one copy of the whole range part way.
            const unsigned long long first = r.loaded ? page : 0;
            const unsigned long long last = r.loaded ? page + 1 : r.size / 4096;
            for (unsigned long long p = first; p < last; ++p) {
                uffdio_copy copy{};
                copy.dst = r.base + p * 4096;
                copy.src = reinterpret_cast<unsigned long long>(file + r.offset + p * 4096);
                copy.len = 4096;
                if (::ioctl(uffd, UFFDIO_COPY, &copy) != 0 && errno != EEXIST) die("UFFDIO_COPY");
            }
            r.loaded = true;
        }
    }
}
