//go:build !purego

#include "textflag.h"

// func cpuHasAVX2FMA() bool
// CPUID leaf 1: FMA (ECX bit 12), OSXSAVE (27), AVX (28); XCR0: the OS
// saves XMM and YMM (bits 1, 2); CPUID leaf 7: AVX2 (EBX bit 5).
TEXT ·cpuHasAVX2FMA(SB), NOSPLIT, $0-1
	MOVL $0, AX
	CPUID
	CMPL AX, $7
	JB   no
	MOVL $1, AX
	CPUID
	ANDL $0x18001000, CX
	CMPL CX, $0x18001000
	JNE  no
	MOVL $0, CX
	XGETBV
	ANDL $6, AX
	CMPL AX, $6
	JNE  no
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	ANDL $0x20, BX
	JZ   no
	MOVB $1, ret+0(FP)
	RET

no:
	MOVB $0, ret+0(FP)
	RET

// func axpyAVX2(acc []float32, row []byte, w float32)
// Eight bytes per step: widen to int32, convert, fused multiply-add.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-52
	MOVQ acc_base+0(FP), DI
	MOVQ row_base+24(FP), SI
	MOVQ row_len+32(FP), CX
	VBROADCASTSS w+48(FP), Y0
	SHRQ $3, CX
	JZ   done

loop:
	VPMOVZXBD   (SI), Y1
	VCVTDQ2PS   Y1, Y1
	VFMADD213PS (DI), Y0, Y1
	VMOVUPS     Y1, (DI)
	ADDQ        $8, SI
	ADDQ        $32, DI
	DECQ        CX
	JNZ         loop

done:
	VZEROUPPER
	RET
