/* Entry from ember's Linux 64-bit boot protocol: long mode, identity-mapped first GiB. */
    .section .text.start, "ax"
    .global _start
_start:
    lea stack_top(%rip), %rsp
    call guest_main
    call guest_reset
1:  hlt
    jmp 1b

    .section .bss
    .balign 16
    .space 16384
stack_top:
