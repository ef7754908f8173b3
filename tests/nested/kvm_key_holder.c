/* Started by tests/nested/init and kept for the nested VM's life: two idle KVM VMs whose vCPUs
 * never run. The first has an in-kernel irqchip and two vCPUs, vCPU 0 with its local APIC
 * software-disabled (as at reset) and vCPU 1 with it hardware-disabled (APIC base MSR without the
 * enable bit). The second has no irqchip and one vCPU, whose local APIC is then user space's.
 *
 * KVM flips jump labels as VMs come and go: preempt_notifier_key, whose site is in __schedule,
 * whenever the number of VMs moves between 0 and 1; apic_sw_disabled and apic_hw_disabled whenever
 * the number of such vCPUs does; kvm_has_noapic_vcpu, whose site is in kvm_apic_has_interrupt,
 * whenever the number of vCPUs without an in-kernel local APIC does (`ember --check-host` starts
 * such a VM). Each flip rewrites kernel code while the other CPU runs it. Under QEMU 7.2's TCG a
 * CPU has been seen to go on executing the old translation of such a site, with its int3, after
 * the code in memory was restored: the int3 handler finds no int3 there, backs the CPU up to run
 * the instruction again (kprobes does this for a breakpoint that was removed), and both CPUs spin
 * there with interrupts off. Creating and destroying an empty VM in a loop reproduces it: the
 * nested VM wedged this way, at __schedule's site, within a few hundred cycles in each of three
 * runs; with the first VM held, 6646 cycles ran without. A CI run's nested VM died of such an int3
 * in kvm_apic_has_interrupt while a test ran `ember --check-host`, before the second VM was held.
 * With both held, the counts never reach 0 and none of these labels flips.
 *
 * Usage: kvm-key-holder [KVM [NOTE]]. Once it holds its VMs it appends a line saying so to NOTE,
 * which tests/nested/run reads to tell that it did. */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char* what) {
    perror(what);
    return 1;
}

int main(int argc, char** argv) {
    int kvm = open(argc > 1 ? argv[1] : "/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return fail("nested: kvm-key-holder: /dev/kvm");
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return fail("nested: kvm-key-holder: KVM_CREATE_VM");
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
        return fail("nested: kvm-key-holder: KVM_CREATE_IRQCHIP");
    if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0) return fail("nested: kvm-key-holder: KVM_CREATE_VCPU 0");
    int cpu1 = ioctl(vm, KVM_CREATE_VCPU, 1);
    if (cpu1 < 0) return fail("nested: kvm-key-holder: KVM_CREATE_VCPU 1");
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entry;
    } apic_base = {.header = {.nmsrs = 1}, .entry = {.index = 0x1b, .data = 0xfee00000}};
    if (ioctl(cpu1, KVM_SET_MSRS, &apic_base) != 1)
        return fail("nested: kvm-key-holder: APIC base");
    int bare = ioctl(kvm, KVM_CREATE_VM, 0);
    if (bare < 0) return fail("nested: kvm-key-holder: KVM_CREATE_VM without an irqchip");
    if (ioctl(bare, KVM_CREATE_VCPU, 0) < 0)
        return fail("nested: kvm-key-holder: KVM_CREATE_VCPU without an irqchip");
    if (argc > 2) {
        int note = open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (note < 0) return fail("nested: kvm-key-holder: note");
        char line[80];
        int n = snprintf(line, sizeof line, "nested: kvm-key-holder holds its VMs (pid %d)\n",
                         getpid());
        if (write(note, line, (size_t)n) != n) return fail("nested: kvm-key-holder: note");
        close(note);
    }
    for (;;) pause();
}
