/* Walks ember's ACPI tables as a kernel would: the RSDP in the BIOS area, the XSDT, and each table
 * it lists (and the FADT's DSDT), checking signatures and checksums; then powers off the way
 * hardware-reduced ACPI does, through the FADT's sleep control register. ember must end with
 * status 0; if it does not, the guest says so and resets. */
#include "guest.h"

static int sums_to_zero(const volatile uint8_t* p, uint32_t len) {
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; ++i) sum = (uint8_t)(sum + p[i]);
    return sum == 0;
}

static uint32_t read32(uint64_t addr) {
    return *(const volatile uint32_t*)addr;
}
static uint64_t read64(uint64_t addr) {
    return *(const volatile uint64_t*)addr;
}

static int same(uint64_t addr, const char* sig, int n) {
    for (int i = 0; i < n; ++i)
        if (((const volatile char*)addr)[i] != sig[i]) return 0;
    return 1;
}

/* Prints "acpi: SIG ok" for a good table, else what is wrong; returns whether it was good. */
static int check_table(uint64_t addr, const char* sig) {
    puts("acpi: ");
    puts(sig);
    if (addr >= 0x40000000 || !same(addr, sig, 4)) {
        puts(" missing\n");
        return 0;
    }
    int ok = sums_to_zero((const volatile uint8_t*)addr, read32(addr + 4));
    puts(ok ? " ok\n" : " bad checksum\n");
    return ok;
}

int guest_main(void) {
    const uint64_t rsdp = 0xe0000;
    if (!same(rsdp, "RSD PTR ", 8) || !sums_to_zero((const volatile uint8_t*)rsdp, 20) ||
        !sums_to_zero((const volatile uint8_t*)rsdp, 36)) {
        puts("acpi: no valid RSDP at 0xe0000\n");
        guest_reset();
    }
    puts("acpi: RSDP ok\n");
    uint64_t xsdt = read64(rsdp + 24);
    if (!check_table(xsdt, "XSDT")) guest_reset();
    uint64_t fadt = 0;
    uint32_t entries = (read32(xsdt + 4) - 36) / 8;
    for (uint32_t i = 0; i < entries; ++i) {
        uint64_t table = read64(xsdt + 36 + 8 * i);
        if (same(table, "FACP", 4)) fadt = table;
        if (!check_table(table, same(table, "FACP", 4) ? "FACP" : "APIC")) guest_reset();
    }
    if (!fadt || !check_table(read64(fadt + 140), "DSDT")) guest_reset();
    /* SLEEP_CONTROL_REG: a Generic Address Structure at offset 244, here in I/O space. */
    if (*(const volatile uint8_t*)(fadt + 244) != 1) {
        puts("acpi: the sleep control register is not in I/O space\n");
        guest_reset();
    }
    uint16_t port = (uint16_t)read64(fadt + 248);
    puts("acpi: powering off through port ");
    put_hex(port);
    puts("\n");
    outb(port, (5 << 2) | 0x20); /* SLP_TYP 5, as the DSDT's \_S5 says, with SLP_EN */
    puts("acpi: still running after the power-off write\n");
    guest_reset();
}
