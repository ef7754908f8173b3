/* Entered through the PVH boot ABI: 32-bit protected mode, paging off, %ebx pointing at the
 * hvm_start_info. Checks what it was given and reports over COM1, then resets. */
    .section .note.Xen, "a"
    .balign 4
    .long 4, 4, 18          /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long pvh_start

    .code32
    .section .text.start, "ax"
    .global _start
_start:
pvh_start:
    mov $msg_bad, %esi
    cmpl $0x336ec578, 0(%ebx)       /* magic */
    jne print
    cmpl $0x20000, 24(%ebx)         /* cmdline_paddr */
    jne print
    cmpl $2, 48(%ebx)               /* memmap_entries */
    jb print
    mov %cr0, %eax
    test $0x80000000, %eax          /* paging must be off */
    jnz print
    mov $msg_ok, %esi
print:
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, (%dx)
    jmp 1b
2:  mov $0xfe, %al
    out %al, $0x64
3:  hlt
    jmp 3b

msg_ok:  .asciz "pvh: entered in 32-bit protected mode with a valid start info\n"
msg_bad: .asciz "pvh: bad entry state\n"
