// Firecracker's Uffd handshake: the regions' JSON both ways, strict where a handler must be, and
// one message with its userfaultfd across a real socket.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/userfaultfd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "snapshot/uffd/handshake.h"
#include "tests/support/ember_process.h"

namespace ember::snapshot {
namespace {

using namespace std::chrono_literals;

std::string error_of(std::string_view json) {
    auto r = parse_uffd_regions(json);
    return r ? "(parsed)" : r.error().message;
}

TEST(UffdHandshake, RegionsGoOutWithFirecrackersFieldsAndComeBackTheSame) {
    const std::vector<UffdRegion> regions = {{0x7f0000000000, 0xc0000000, 0, 4096},
                                             {0x7f1000000000, 0x40000000, 0xc0000000, 4096}};
    const std::string json = encode_uffd_regions(regions);
    const std::string first =
        R"([{"base_host_virt_addr":139637976727552,"size":3221225472,"offset":0,"page_size":4096,)";
    EXPECT_EQ(json.substr(0, first.size()), first);
    EXPECT_NE(json.find(R"("page_size_kib":4096})"), std::string::npos);
    auto back = parse_uffd_regions(json);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), 2u);
    EXPECT_EQ((*back)[1].base_host_virt_addr, regions[1].base_host_virt_addr);
    EXPECT_EQ((*back)[1].offset, regions[1].offset);
    EXPECT_EQ((*back)[1].size, regions[1].size);
}

TEST(UffdHandshake, AnOlderVmmsPageSizeKibAndUnknownFieldsAreAccepted) {
    auto r = parse_uffd_regions(
        R"([{"base_host_virt_addr": 2097152, "size": 2097152, "offset": 0, "page_size_kib": 2097152, "new": 1}])");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ((*r)[0].page_size, 2097152u);
}

TEST(UffdHandshake, WhatNoVmmWouldSendIsRefusedWithTheReason) {
    EXPECT_EQ(error_of("{}").substr(0, 36), "the regions message is not a JSON ar");
    EXPECT_EQ(error_of("[]"), "no regions");
    EXPECT_EQ(error_of(R"([7])"), "region 0: not an object");
    EXPECT_EQ(error_of(R"([{"size": 4096, "offset": 0, "page_size": 4096}])"),
              "region 0: no base_host_virt_addr");
    EXPECT_EQ(error_of(R"([{"base_host_virt_addr": 4096, "size": 4096, "offset": 0}])"),
              "region 0: no page_size");
    EXPECT_EQ(
        error_of(
            R"([{"base_host_virt_addr": -4096, "size": 4096, "offset": 0, "page_size": 4096}])"),
        "region 0: base_host_virt_addr is not a non-negative integer");
    EXPECT_EQ(
        error_of(
            R"([{"base_host_virt_addr": 4096, "size": 4096, "offset": 0, "page_size": 8192}])"),
        "region 0: page size 8192 is neither 4 KiB nor 2 MiB");
    EXPECT_EQ(
        error_of(R"([{"base_host_virt_addr": 4096, "size": 100, "offset": 0, "page_size": 4096}])"),
        "region 0: size, offset and address must be non-zero multiples of the page size");
    EXPECT_EQ(
        error_of(
            R"([{"base_host_virt_addr": 4096, "size": 8192, "offset": 18446744073709547520, "page_size": 4096}])"),
        "region 0: wraps around");
    std::string many = "[";
    for (int i = 0; i < 65; ++i)
        many += std::string(i ? "," : "") +
                R"({"base_host_virt_addr": 4096, "size": 4096, "offset": 0, "page_size": 4096})";
    EXPECT_EQ(error_of(many + "]"), "more than 64 regions");
    EXPECT_NE(error_of(std::string(kMaxUffdMessage + 1, ' ')).find("more than 65536"),
              std::string::npos);
}

TEST(UffdHandshake, OneMessageCarriesTheRegionsAndTheFdAcrossASocket) {
    testing::TempDir dir;
    const std::string path = dir.path() + "/h.sock";
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    // User-mode faults only: a userfaultfd any user may make.
    UniqueFd sent(
        static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | 1 /*UFFD_USER_MODE_ONLY*/)));
    ASSERT_TRUE(sent.valid()) << std::strerror(errno);
    uffdio_api api{.api = UFFD_API, .features = 0, .ioctls = 0};
    ASSERT_EQ(::ioctl(sent.get(), UFFDIO_API, &api), 0) << std::strerror(errno);
    const std::vector<UffdRegion> regions = {{0x200000, 0x200000, 0x1000, 4096}};
    Result<UniqueFd> vmm_end = fail("not run");
    std::thread vmm([&] { vmm_end = send_uffd_handshake(path, regions, sent.get(), 2s); });
    auto h = receive_uffd_handshake(listener.get(), 2s);
    vmm.join();
    ASSERT_TRUE(vmm_end) << vmm_end.error().message;
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->peer.pid, ::getpid());
    EXPECT_TRUE(h->peer.pidfd.valid());
    ASSERT_EQ(h->regions.size(), 1u);
    EXPECT_EQ(h->regions[0].offset, 0x1000u);
    struct stat sent_st{}, got_st{};
    ASSERT_EQ(::fstat(sent.get(), &sent_st), 0);
    ASSERT_EQ(::fstat(h->uffd.get(), &got_st), 0);
    EXPECT_EQ(got_st.st_ino, sent_st.st_ino) << "the fd that arrived is the one sent";

    // Anything else sent as the userfaultfd (a pipe, an eventfd) is refused: a handler would
    // otherwise wait on it and then report that it had served a VM.
    UniqueFd not_uffd(::eventfd(7, EFD_CLOEXEC));
    std::thread liar([&] { vmm_end = send_uffd_handshake(path, regions, not_uffd.get(), 2s); });
    auto refused = receive_uffd_handshake(listener.get(), 2s);
    liar.join();
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().message,
              "the descriptor that came with the regions message is not a userfaultfd");

    // Nobody listening, and nobody connecting: errors in bounded time.
    auto none = send_uffd_handshake(dir.path() + "/none.sock", regions, sent.get(), 2s);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("no page-fault handler listens there"), std::string::npos);
    auto lonely = receive_uffd_handshake(listener.get(), 50ms);
    ASSERT_FALSE(lonely);
    EXPECT_EQ(lonely.error().message, "no VMM connected in time");
}

}  // namespace
}  // namespace ember::snapshot
