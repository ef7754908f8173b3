#include <gtest/gtest.h>

#include "vmm/machine/device_layout.h"
#include "vmm/machine/virtio_kinds.h"

namespace ember {
namespace {

DriveConfig drive(const std::string& id, bool root, bool ro = false) {
    DriveConfig d;
    d.drive_id = id;
    d.path_on_host = "/x";
    d.is_root_device = root;
    d.is_read_only = ro;
    return d;
}

TEST(DeviceLayout, RootDriveComesFirstAndEachGetsASlotAndAGsi) {
    VmConfig c;
    c.drives = {drive("data", false), drive("rootfs", true)};
    auto slots = plan_virtio_slots(c, false, virtio_kinds());
    ASSERT_TRUE(slots);
    ASSERT_EQ(slots->size(), 2u);
    EXPECT_EQ((*slots)[0].index, 1u);
    EXPECT_EQ((*slots)[0].base, 0xd0000000u);
    EXPECT_EQ((*slots)[0].gsi, 5u);
    EXPECT_EQ((*slots)[1].base, 0xd0001000u);
    EXPECT_EQ((*slots)[1].gsi, 6u);
    EXPECT_EQ(
        virtio_boot_args(c, *slots),
        " root=/dev/vda rw virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6");
}

TEST(DeviceLayout, BootTimerShiftsTheSlotsButNotTheGsis) {
    VmConfig c;
    c.drives = {drive("rootfs", true, true)};
    auto slots = plan_virtio_slots(c, true, virtio_kinds());
    ASSERT_TRUE(slots);
    EXPECT_EQ((*slots)[0].base, 0xd0001000u);
    EXPECT_EQ((*slots)[0].gsi, 5u);
    EXPECT_EQ(virtio_boot_args(c, *slots), " root=/dev/vda ro virtio_mmio.device=4K@0xd0001000:5");
}

TEST(DeviceLayout, PartuuidNamesTheRoot) {
    VmConfig c;
    c.drives = {drive("rootfs", true)};
    c.drives[0].partuuid = "0eaa91a0-01";
    auto slots = plan_virtio_slots(c, false, virtio_kinds());
    EXPECT_EQ(virtio_boot_args(c, *slots),
              " root=PARTUUID=0eaa91a0-01 rw virtio_mmio.device=4K@0xd0000000:5");
}

TEST(DeviceLayout, NetworkInterfacesFollowTheDrives) {
    VmConfig c;
    NetworkInterfaceConfig n;
    n.iface_id = "eth0";
    n.host_dev_name = "tap0";
    c.network_interfaces = {n};
    c.drives = {drive("rootfs", true)};
    auto slots = plan_virtio_slots(c, false, virtio_kinds());
    ASSERT_TRUE(slots);
    ASSERT_EQ(slots->size(), 2u);
    EXPECT_EQ((*slots)[1].kind->name, "net");
    EXPECT_EQ((*slots)[1].base, 0xd0001000u);
    EXPECT_EQ((*slots)[1].gsi, 6u);
}

TEST(DeviceLayout, MoreDevicesThanInterruptLines) {
    VmConfig c;
    for (int i = 0; i < 20; ++i) {
        // Appended rather than "d" + to_string(i): GCC 12 at -O3 warns falsely (-Wrestrict) on
        // that.
        std::string id = "d";
        id += std::to_string(i);
        c.drives.push_back(drive(id, false));
    }
    auto slots = plan_virtio_slots(c, false, virtio_kinds());
    ASSERT_FALSE(slots);
    EXPECT_NE(slots.error().message.find("only 19 interrupt lines"), std::string::npos);
}

}  // namespace
}  // namespace ember
