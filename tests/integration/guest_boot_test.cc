// Boots each freestanding test guest in a real ember process and checks what it reports over the
// serial port and how ember exits.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/support/ember_process.h"

namespace ember::testing {
namespace {

using namespace std::chrono_literals;

std::string guest(const std::string& name) {
    return std::string(EMBER_GUEST_DIR) + "/" + name + ".elf";
}

ProcessResult boot(const std::string& guest_name, std::chrono::milliseconds timeout = kFailsafe,
                   std::vector<std::string> extra = {}) {
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest(guest_name)));
    std::vector<std::string> argv = {EMBER_BINARY, "--no-api", "--config-file", config};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, timeout);
}

TEST(GuestBoot, HelloPrintsOverTheUartAndResetsThroughTheI8042) {
    auto r = boot("hello");
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.out, "hello from the test guest\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, "exited: guest reset the VM (reset through the i8042"),
              1)
        << r.err;
}

TEST(GuestBoot, AcpiTablesAreWhereAGuestLooksAndS5PowersOff) {
    auto r = boot("acpi_power_off");
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.out,
              "acpi: RSDP ok\nacpi: XSDT ok\nacpi: FACP ok\nacpi: APIC ok\nacpi: DSDT ok\n"
              "acpi: powering off through port 0x0000000000000600\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, "exited: guest powered off (ACPI S5"), 1) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, "boot: ACPI tables (RSDP at 0xe0000"), 1) << r.err;
}

TEST(GuestBoot, PitInterruptsArriveThroughTheIoapic) {
    auto r = boot("pit_irq");
    ASSERT_FALSE(r.timed_out) << "no PIT interrupt reached the guest\n" << r.out << r.err;
    EXPECT_EQ(r.out, "pit: 5 interrupts through the IOAPIC\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(GuestBoot, TripleFaultEndsTheVmWithAClearStatus) {
    auto r = boot("triple_fault");
    ASSERT_FALSE(r.timed_out) << r.err;
    const std::string intro = "about to triple-fault at 0x";
    ASSERT_EQ(r.out.rfind(intro, 0), 0U) << r.out;
    ASSERT_EQ(r.out.size(), intro.size() + 17) << r.out;
    EXPECT_EQ(count_lines_containing(r.err, "exited: guest triple-faulted"), 1) << r.err;
    // Where the guest faulted, or why that is not known: never the reset vector's registers.
    std::string ud2 = r.out.substr(intro.size(), 16);
    ud2.erase(0, ud2.find_first_not_of('0'));
    const bool at_ud2 = count_lines_containing(r.err, "at rip 0x" + ud2 + " ") == 1;
    const bool reset = count_lines_containing(r.err, "KVM had already reset the vCPU") == 1;
    EXPECT_TRUE(at_ud2 || reset) << r.err;
    EXPECT_EQ(count_lines_containing(r.err, "rip 0xfff0 "), 0) << r.err;
    EXPECT_EQ(r.exit_code, 0);
}

TEST(GuestBoot, SigtermStopsARunningGuestCleanly) {
    // The counter never stops by itself: SIGTERM goes once it has said it is counting.
    TempDir dir;
    auto config = dir.write("vm.json", guest_config(guest("counter")));
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe,
                         SignalOnOutput{"counting\n", SIGTERM});
    EXPECT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.signal, 0) << "ember died from a signal instead of handling SIGTERM";
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "counting\n");
    EXPECT_EQ(count_lines_containing(r.err, "exited: stopped by Terminated"), 1) << r.err;
}

TEST(GuestBoot, BootTimerLogsTimeSinceStartWhenEnabled) {
    auto timed = boot("boot_timer", kFailsafe, {"--boot-timer"});
    EXPECT_EQ(timed.out, "boot timer written\n");
    EXPECT_EQ(timed.exit_code, 0) << timed.err;
    EXPECT_EQ(count_lines_containing(timed.err, "Guest-boot-time = "), 1) << timed.err;

    // Without --boot-timer the slot is empty: the write is dropped and the guest goes on.
    auto untimed = boot("boot_timer");
    EXPECT_EQ(untimed.out, "boot timer written\n");
    EXPECT_EQ(untimed.exit_code, 0) << untimed.err;
    EXPECT_EQ(count_lines_containing(untimed.err, "Guest-boot-time"), 0) << untimed.err;
}

TEST(GuestBoot, PvhNoteBootsThroughThePvhEntry) {
    auto r = boot("pvh");
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.out, "pvh: entered in 32-bit protected mode with a valid start info\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(GuestBoot, SeveralVcpusStartAndStopCleanly) {
    TempDir dir;
    auto config =
        dir.write("vm.json", R"({"boot-source": {"kernel_image_path": ")" + guest("hello") +
                                 R"("}, "machine-config": {"vcpu_count": 4, "mem_size_mib": 16}})");
    auto r = run_process({EMBER_BINARY, "--no-api", "--config-file", config}, kFailsafe);
    ASSERT_FALSE(r.timed_out) << "application processors kept ember from exiting\n" << r.err;
    EXPECT_EQ(r.out, "hello from the test guest\n");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(GuestBoot, FirstInstructionWritesTheConsole) {
    auto r = boot("first_out");
    EXPECT_EQ(r.out, "!");
    EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
}  // namespace ember::testing
