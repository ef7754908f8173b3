/* For perf/startup: the guest's first instruction that does anything visible writes '!' to COM1,
 * then it resets through the i8042. */
    .section .text.start, "ax"
    .global _start
_start:
    mov $0x3f8, %dx
    mov $'!', %al
    out %al, (%dx)
    mov $0xfe, %al
    out %al, $0x64
1:  hlt
    jmp 1b
