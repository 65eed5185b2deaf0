#include "textflag.h"

// Batch norm's float32 loops in AVX-512 (F and VL): eight values a step,
// widened to float64 as the Go versions in batchnorm.go compute them. Each
// walks consecutive planes of hw values, one per bnChannel of p (64 bytes:
// center 0, scale 8, shift 16, a 24, b 32, k 40, sum1 48, sum2 56). BX is
// the offset in the plane, CX the values left in it; K1 selects the lanes
// a step covers: all eight, then the tail. Loads zero the lanes outside it
// and stores leave them alone.

// PF is how far ahead of the loads the loops prefetch. A plane is one
// image's channel, a few KB, and the next plane the loops read lies a
// whole image further: the hardware prefetcher has barely learned a stream
// when it ends, and without these hints the loops waited on the cache,
// reading 11 GB/s where they sum 40 GB/s.
#define PF 1024

// PREFETCH2 prefetches both inputs, at SI and DI.
#define PREFETCH2 \
	PREFETCHT0 PF(SI)(BX*1); \
	PREFETCHT0 PF(DI)(BX*1)

// PLANE starts a plane: offset 0, hw values to go.
#define PLANE \
	XORQ BX, BX; \
	MOVQ R10, CX

// NEXT ends a step of the plane loop at label l.
#define NEXT(l) \
	ADDQ $32, BX; \
	SUBQ $8, CX; \
	JG   l

// LOADAFFINE broadcasts the channel's scale and shift for RELUMASK.
#define LOADAFFINE \
	VBROADCASTSD 8(R11), Z29; \
	VBROADCASTSD 16(R11), Z30

// ADDSUMS adds Z0's and Z1's lane sums to the channel's sum1 and sum2.
#define ADDSUMS \
	HSUM(Z0, Y0, X0); \
	HSUM(Z1, Y1, X1); \
	VADDSD 48(R11), X0, X0; \
	VMOVSD X0, 48(R11); \
	VADDSD 56(R11), X1, X1; \
	VMOVSD X1, 56(R11)

// ADVANCE moves the pointer in R to its next plane.
#define ADVANCE(R) LEAQ (R)(R10*4), R

// NEXTPLANE moves to the next channel and loops to l while a whole plane
// of the R9 values is left.
#define NEXTPLANE(l) \
	ADDQ $64, R11; \
	SUBQ R10, R9; \
	CMPQ R9, R10; \
	JGE  l

// PLANES checks the arguments common to all: hw (R10) > 0 and at least
// one plane of the R9 values; it jumps to l if there is nothing to do.
#define PLANES(l) \
	TESTQ R10, R10; \
	JLE   l; \
	CMPQ  R9, R10; \
	JL    l

// TAILMASK sets K1 to the low min(CX, 8) lanes; it clobbers AX.
#define TAILMASK \
	MOVQ $0xff, AX; \
	CMPQ CX, $8; \
	JGE  2(PC); \
	BZHIQ CX, AX, AX; \
	KMOVW AX, K1

// RELUMASK narrows K2 to the lanes where float32(Z2*Z29 + Z30) > 0, the
// ReLU's test in the forward (affine, no fused multiply-add); it clobbers
// Z3.
#define RELUMASK \
	VMULPD Z29, Z2, Z3; \
	VADDPD Z30, Z3, Z3; \
	VCVTPD2PS Z3, Y3; \
	VCMPPS $0x1e, Y28, Y3, K1, K2

// HSUM leaves the sum of Z's eight lanes in X's low lane; it clobbers Z6.
#define HSUM(Z, Y, X) \
	VEXTRACTF64X4 $1, Z, Y6; \
	VADDPD Y6, Y, Y; \
	VEXTRACTF128 $1, Y, X6; \
	VADDPD X6, X, X; \
	VPERMILPD $1, X, X6; \
	VADDSD X6, X, X

// func moments32(x []float32, hw int, p []bnChannel)
TEXT ·moments32(SB), NOSPLIT, $0-56
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), R9
	MOVQ hw+24(FP), R10
	MOVQ p_base+32(FP), R11
	PLANES(momentsDone)

momentsPlane:
	VBROADCASTSD 0(R11), Z31
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	PLANE

momentsLoop:
	TAILMASK
	PREFETCHT0 PF(SI)(BX*1)
	VCVTPS2PD.Z (SI)(BX*1), K1, Z2
	VSUBPD.Z Z31, Z2, K1, Z2
	VADDPD Z2, Z0, Z0
	VFMADD231PD Z2, Z2, Z1
	NEXT(momentsLoop)
	ADDSUMS
	ADVANCE(SI)
	NEXTPLANE(momentsPlane)

momentsDone:
	VZEROUPPER
	RET

// func centredDot32(x, dy []float32, hw int, relu bool, p []bnChannel)
TEXT ·centredDot32(SB), NOSPLIT, $0-88
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), R9
	MOVQ dy_base+24(FP), DI
	MOVQ hw+48(FP), R10
	MOVBLZX relu+56(FP), R8
	MOVQ p_base+64(FP), R11
	VPXORD Y28, Y28, Y28
	PLANES(dotDone)

dotPlane:
	VBROADCASTSD 0(R11), Z31
	LOADAFFINE
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	PLANE

dotLoop:
	TAILMASK
	PREFETCH2
	VCVTPS2PD.Z (SI)(BX*1), K1, Z2
	KMOVW K1, K2
	TESTQ R8, R8
	JZ   dotSum
	RELUMASK

dotSum:
	VCVTPS2PD.Z (DI)(BX*1), K2, Z4
	VADDPD Z4, Z0, Z0
	VSUBPD Z31, Z2, Z5
	VFMADD231PD Z5, Z4, Z1
	NEXT(dotLoop)
	ADDSUMS
	ADVANCE(SI)
	ADVANCE(DI)
	NEXTPLANE(dotPlane)

dotDone:
	VZEROUPPER
	RET

// func normalize32(y, x []float32, hw int, relu bool, p []bnChannel)
TEXT ·normalize32(SB), NOSPLIT, $0-88
	MOVQ y_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), R9
	MOVQ hw+48(FP), R10
	MOVBLZX relu+56(FP), R8
	MOVQ p_base+64(FP), R11
	VPXORD Y28, Y28, Y28
	PLANES(normDone)

normPlane:
	LOADAFFINE
	PLANE

normLoop:
	TAILMASK
	PREFETCHT0 PF(SI)(BX*1)
	VCVTPS2PD.Z (SI)(BX*1), K1, Z2
	VMULPD Z29, Z2, Z2
	VADDPD Z30, Z2, Z2
	VCVTPD2PS Z2, Y2
	TESTQ R8, R8
	JZ   normStore
	// max(v, 0) as Go has it: NaN stays, -0 becomes 0 (not less or
	// equal to 0, unordered included).
	VCMPPS $0x16, Y28, Y2, K1, K2
	VMOVUPS.Z Y2, K2, Y2

normStore:
	VMOVUPS Y2, K1, (DI)(BX*1)
	NEXT(normLoop)
	ADVANCE(SI)
	ADVANCE(DI)
	NEXTPLANE(normPlane)

normDone:
	VZEROUPPER
	RET

// func gradX32(dx, x, dy []float32, hw int, relu bool, p []bnChannel)
TEXT ·gradX32(SB), NOSPLIT, $0-112
	MOVQ dx_base+0(FP), DX
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), R9
	MOVQ dy_base+48(FP), DI
	MOVQ hw+72(FP), R10
	MOVBLZX relu+80(FP), R8
	MOVQ p_base+88(FP), R11
	VPXORD Y28, Y28, Y28
	PLANES(gradDone)

gradPlane:
	VBROADCASTSD 24(R11), Z24
	VBROADCASTSD 32(R11), Z25
	VBROADCASTSD 40(R11), Z26
	LOADAFFINE
	PLANE

gradLoop:
	TAILMASK
	PREFETCH2
	VCVTPS2PD.Z (SI)(BX*1), K1, Z2
	KMOVW K1, K2
	TESTQ R8, R8
	JZ   gradSum
	RELUMASK

gradSum:
	VCVTPS2PD.Z (DI)(BX*1), K2, Z4
	VMOVAPD Z26, Z5
	VFMADD231PD Z24, Z4, Z5
	VFMADD231PD Z25, Z2, Z5
	VCVTPD2PS Z5, Y5
	VMOVUPS Y5, K1, (DX)(BX*1)
	NEXT(gradLoop)
	ADVANCE(SI)
	ADVANCE(DI)
	ADVANCE(DX)
	NEXTPLANE(gradPlane)

gradDone:
	VZEROUPPER
	RET

// TAILMASK16 sets K1 to the low min(CX, 16) lanes; it clobbers AX.
#define TAILMASK16 \
	MOVQ $0xffff, AX; \
	CMPQ CX, $16; \
	JGE  2(PC); \
	BZHIQ CX, AX, AX; \
	KMOVW AX, K1

// func addReLUAVX512(dst, a, b []float32)
TEXT ·addReLUAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), DI
	VPXORD Z28, Z28, Z28
	XORQ BX, BX
	TESTQ CX, CX
	JLE  addDone

addLoop:
	TAILMASK16
	VMOVUPS.Z (SI)(BX*1), K1, Z0
	VMOVUPS.Z (DI)(BX*1), K1, Z1
	VADDPS Z1, Z0, Z0
	// max(v, 0) as Go has it, as in normalize32.
	VCMPPS $0x16, Z28, Z0, K1, K2
	VMOVUPS.Z Z0, K2, Z0
	VMOVUPS Z0, K1, (DX)(BX*1)
	ADDQ $64, BX
	SUBQ $16, CX
	JG   addLoop

addDone:
	VZEROUPPER
	RET

// func reluGradAVX512(dst, x, dy []float32)
TEXT ·reluGradAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DX
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ dy_base+48(FP), DI
	VPXORD Z28, Z28, Z28
	XORQ BX, BX
	TESTQ CX, CX
	JLE  reluDone

reluLoop:
	TAILMASK16
	VMOVUPS.Z (SI)(BX*1), K1, Z0
	VCMPPS $0x1e, Z28, Z0, K1, K2
	VMOVUPS.Z (DI)(BX*1), K2, Z1
	VMOVUPS Z1, K1, (DX)(BX*1)
	ADDQ $64, BX
	SUBQ $16, CX
	JG   reluLoop

reluDone:
	VZEROUPPER
	RET

// func transpose16(dst *float32, ldd int, a, b *float32, lds int)
//
// dst[j*ldd+i] = a[i*lds+j] (+ b[i*lds+j] where b is not nil), i, j < 16:
// the 16 rows in Z0-Z15, interleaved by 32-bit, then 64-bit pairs within
// each 128-bit lane, then the lanes regrouped twice.
TEXT ·transpose16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ ldd+8(FP), R8
	MOVQ a+16(FP), SI
	MOVQ b+24(FP), DX
	MOVQ lds+32(FP), R9
	SHLQ $2, R8
	SHLQ $2, R9
	MOVQ SI, AX
	VMOVUPS (AX), Z0
	ADDQ R9, AX
	VMOVUPS (AX), Z1
	ADDQ R9, AX
	VMOVUPS (AX), Z2
	ADDQ R9, AX
	VMOVUPS (AX), Z3
	ADDQ R9, AX
	VMOVUPS (AX), Z4
	ADDQ R9, AX
	VMOVUPS (AX), Z5
	ADDQ R9, AX
	VMOVUPS (AX), Z6
	ADDQ R9, AX
	VMOVUPS (AX), Z7
	ADDQ R9, AX
	VMOVUPS (AX), Z8
	ADDQ R9, AX
	VMOVUPS (AX), Z9
	ADDQ R9, AX
	VMOVUPS (AX), Z10
	ADDQ R9, AX
	VMOVUPS (AX), Z11
	ADDQ R9, AX
	VMOVUPS (AX), Z12
	ADDQ R9, AX
	VMOVUPS (AX), Z13
	ADDQ R9, AX
	VMOVUPS (AX), Z14
	ADDQ R9, AX
	VMOVUPS (AX), Z15
	TESTQ DX, DX
	JZ   transposeRegs
	VADDPS (DX), Z0, Z0
	ADDQ R9, DX
	VADDPS (DX), Z1, Z1
	ADDQ R9, DX
	VADDPS (DX), Z2, Z2
	ADDQ R9, DX
	VADDPS (DX), Z3, Z3
	ADDQ R9, DX
	VADDPS (DX), Z4, Z4
	ADDQ R9, DX
	VADDPS (DX), Z5, Z5
	ADDQ R9, DX
	VADDPS (DX), Z6, Z6
	ADDQ R9, DX
	VADDPS (DX), Z7, Z7
	ADDQ R9, DX
	VADDPS (DX), Z8, Z8
	ADDQ R9, DX
	VADDPS (DX), Z9, Z9
	ADDQ R9, DX
	VADDPS (DX), Z10, Z10
	ADDQ R9, DX
	VADDPS (DX), Z11, Z11
	ADDQ R9, DX
	VADDPS (DX), Z12, Z12
	ADDQ R9, DX
	VADDPS (DX), Z13, Z13
	ADDQ R9, DX
	VADDPS (DX), Z14, Z14
	ADDQ R9, DX
	VADDPS (DX), Z15, Z15

transposeRegs:
	VUNPCKLPS Z1, Z0, Z16
	VUNPCKHPS Z1, Z0, Z17
	VUNPCKLPS Z3, Z2, Z18
	VUNPCKHPS Z3, Z2, Z19
	VUNPCKLPS Z5, Z4, Z20
	VUNPCKHPS Z5, Z4, Z21
	VUNPCKLPS Z7, Z6, Z22
	VUNPCKHPS Z7, Z6, Z23
	VUNPCKLPS Z9, Z8, Z24
	VUNPCKHPS Z9, Z8, Z25
	VUNPCKLPS Z11, Z10, Z26
	VUNPCKHPS Z11, Z10, Z27
	VUNPCKLPS Z13, Z12, Z28
	VUNPCKHPS Z13, Z12, Z29
	VUNPCKLPS Z15, Z14, Z30
	VUNPCKHPS Z15, Z14, Z31
	VUNPCKLPD Z18, Z16, Z0
	VUNPCKHPD Z18, Z16, Z1
	VUNPCKLPD Z19, Z17, Z2
	VUNPCKHPD Z19, Z17, Z3
	VUNPCKLPD Z22, Z20, Z4
	VUNPCKHPD Z22, Z20, Z5
	VUNPCKLPD Z23, Z21, Z6
	VUNPCKHPD Z23, Z21, Z7
	VUNPCKLPD Z26, Z24, Z8
	VUNPCKHPD Z26, Z24, Z9
	VUNPCKLPD Z27, Z25, Z10
	VUNPCKHPD Z27, Z25, Z11
	VUNPCKLPD Z30, Z28, Z12
	VUNPCKHPD Z30, Z28, Z13
	VUNPCKLPD Z31, Z29, Z14
	VUNPCKHPD Z31, Z29, Z15
	VSHUFF32X4 $0x88, Z4, Z0, Z16
	VSHUFF32X4 $0xdd, Z4, Z0, Z20
	VSHUFF32X4 $0x88, Z5, Z1, Z17
	VSHUFF32X4 $0xdd, Z5, Z1, Z21
	VSHUFF32X4 $0x88, Z6, Z2, Z18
	VSHUFF32X4 $0xdd, Z6, Z2, Z22
	VSHUFF32X4 $0x88, Z7, Z3, Z19
	VSHUFF32X4 $0xdd, Z7, Z3, Z23
	VSHUFF32X4 $0x88, Z12, Z8, Z24
	VSHUFF32X4 $0xdd, Z12, Z8, Z28
	VSHUFF32X4 $0x88, Z13, Z9, Z25
	VSHUFF32X4 $0xdd, Z13, Z9, Z29
	VSHUFF32X4 $0x88, Z14, Z10, Z26
	VSHUFF32X4 $0xdd, Z14, Z10, Z30
	VSHUFF32X4 $0x88, Z15, Z11, Z27
	VSHUFF32X4 $0xdd, Z15, Z11, Z31
	VSHUFF32X4 $0x88, Z24, Z16, Z0
	VSHUFF32X4 $0xdd, Z24, Z16, Z8
	VSHUFF32X4 $0x88, Z25, Z17, Z1
	VSHUFF32X4 $0xdd, Z25, Z17, Z9
	VSHUFF32X4 $0x88, Z26, Z18, Z2
	VSHUFF32X4 $0xdd, Z26, Z18, Z10
	VSHUFF32X4 $0x88, Z27, Z19, Z3
	VSHUFF32X4 $0xdd, Z27, Z19, Z11
	VSHUFF32X4 $0x88, Z28, Z20, Z4
	VSHUFF32X4 $0xdd, Z28, Z20, Z12
	VSHUFF32X4 $0x88, Z29, Z21, Z5
	VSHUFF32X4 $0xdd, Z29, Z21, Z13
	VSHUFF32X4 $0x88, Z30, Z22, Z6
	VSHUFF32X4 $0xdd, Z30, Z22, Z14
	VSHUFF32X4 $0x88, Z31, Z23, Z7
	VSHUFF32X4 $0xdd, Z31, Z23, Z15
	VMOVUPS Z0, (DI)
	ADDQ R8, DI
	VMOVUPS Z1, (DI)
	ADDQ R8, DI
	VMOVUPS Z2, (DI)
	ADDQ R8, DI
	VMOVUPS Z3, (DI)
	ADDQ R8, DI
	VMOVUPS Z4, (DI)
	ADDQ R8, DI
	VMOVUPS Z5, (DI)
	ADDQ R8, DI
	VMOVUPS Z6, (DI)
	ADDQ R8, DI
	VMOVUPS Z7, (DI)
	ADDQ R8, DI
	VMOVUPS Z8, (DI)
	ADDQ R8, DI
	VMOVUPS Z9, (DI)
	ADDQ R8, DI
	VMOVUPS Z10, (DI)
	ADDQ R8, DI
	VMOVUPS Z11, (DI)
	ADDQ R8, DI
	VMOVUPS Z12, (DI)
	ADDQ R8, DI
	VMOVUPS Z13, (DI)
	ADDQ R8, DI
	VMOVUPS Z14, (DI)
	ADDQ R8, DI
	VMOVUPS Z15, (DI)
	VZEROUPPER
	RET
