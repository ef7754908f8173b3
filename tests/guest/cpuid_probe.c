/* Prints what CPUID says in guest ring 0: vendor, max leaves, and the long-mode/NX bits; and
 * SYSENTER_CS and PAT (MSRs 0x174, 0x277), which a CPU template may set. */
#include "guest.h"

int guest_main(void) {
    uint32_t a, b, c, d;
    cpuid(0, 0, &a, &b, &c, &d);
    puts("cpuid0 max=");
    put_hex(a);
    puts("\n");
    cpuid(0x80000000, 0, &a, &b, &c, &d);
    puts("cpuid80000000 max=");
    put_hex(a);
    puts("\n");
    cpuid(0x80000001, 0, &a, &b, &c, &d);
    puts("cpuid80000001 edx=");
    put_hex(d);
    puts("\n");
    cpuid(1, 0, &a, &b, &c, &d);
    puts("cpuid1 ebx=");
    put_hex(b);
    puts(" ecx=");
    put_hex(c);
    puts(" edx=");
    put_hex(d);
    puts("\n");
    puts("msr174=");
    put_hex(rdmsr(0x174));
    puts(" msr277=");
    put_hex(rdmsr(0x277));
    puts("\n");
    return 0;
}
