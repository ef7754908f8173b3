/* The guests ember's peers run in perf/startup, as 16-bit real-mode blobs: QEMU starts one from
 * its reset vector (-bios), kvmtool from 1000:0000 (a flat binary). Both do what ember's
 * tests/guest/first_out and hello guests do first. */
    .code16

/* first_out: the first instruction that does anything writes '!' to COM1. */
    .section .first_out, "ax"
first_out_start:
    mov $0x3f8, %dx
    mov $'!', %al
    out %al, (%dx)
1:  hlt
    jmp 1b

/* hello: polls the UART's line status before each byte, as a console driver does. */
    .section .hello, "ax"
hello_start:
    mov %cs, %ax
    mov %ax, %ds
    mov $(hello_msg - hello_start), %si
next:
    lodsb
    test %al, %al
    jz done
    mov %al, %bl
    mov $0x3fd, %dx
wait:
    in (%dx), %al
    test $0x20, %al
    jz wait
    mov $0x3f8, %dx
    mov %bl, %al
    out %al, (%dx)
    jmp next
done:
    hlt
    jmp done
hello_msg:
    .asciz "hello from the test guest\n"

/* dots: writes '.' to COM1 forever (perf/snapshot's peer guest). */
    .section .dots, "ax"
dots_start:
    mov $0x3f8, %dx
    mov $'.', %al
1:  out %al, (%dx)
    jmp 1b
