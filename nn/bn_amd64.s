#include "textflag.h"

// Batch norm's float32 loops in AVX-512 (F and VL): eight values a step,
// widened to float64 as the Go versions in reduce.go and batchnorm.go
// compute them. K1 selects the lanes a step covers: all eight, then the
// tail; loads zero the lanes outside it and stores leave them alone.

// PF is how far ahead of the loads the loops prefetch. A plane is one
// image's channel, a few KB, and the next plane the loops read lies a
// whole image further: the hardware prefetcher has barely learned a stream
// when it ends, and without these hints the loops waited on the cache,
// reading 11 GB/s where they sum 40 GB/s.
#define PF 1024

// PREFETCH2 prefetches both inputs, at SI and DI.
#define PREFETCH2 \
	PREFETCHT0 PF(SI); \
	PREFETCHT0 PF(DI)

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

// func moments32(x []float32, k float64) (sum1, sum2 float64)
TEXT ·moments32(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSD k+24(FP), Z31
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	TESTQ CX, CX
	JLE  momentsDone

momentsLoop:
	TAILMASK
	PREFETCHT0 PF(SI)
	VCVTPS2PD.Z (SI), K1, Z2
	VSUBPD.Z Z31, Z2, K1, Z2
	VADDPD Z2, Z0, Z0
	VFMADD231PD Z2, Z2, Z1
	ADDQ $32, SI
	SUBQ $8, CX
	JG   momentsLoop

momentsDone:
	HSUM(Z0, Y0, X0)
	HSUM(Z1, Y1, X1)
	MOVSD X0, sum1+32(FP)
	MOVSD X1, sum2+40(FP)
	VZEROUPPER
	RET

// func centredDot32(x, dy []float32, mean, scale, shift float64, relu bool) (sumDy, sumDyX float64)
TEXT ·centredDot32(SB), NOSPLIT, $0-96
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ dy_base+24(FP), DI
	VBROADCASTSD mean+48(FP), Z31
	VBROADCASTSD scale+56(FP), Z29
	VBROADCASTSD shift+64(FP), Z30
	MOVBLZX relu+72(FP), R8
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORD Y28, Y28, Y28
	TESTQ CX, CX
	JLE  dotDone

dotLoop:
	TAILMASK
	PREFETCH2
	VCVTPS2PD.Z (SI), K1, Z2
	KMOVW K1, K2
	TESTQ R8, R8
	JZ   dotSum
	RELUMASK

dotSum:
	VCVTPS2PD.Z (DI), K2, Z4
	VADDPD Z4, Z0, Z0
	VSUBPD Z31, Z2, Z5
	VFMADD231PD Z5, Z4, Z1
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JG   dotLoop

dotDone:
	HSUM(Z0, Y0, X0)
	HSUM(Z1, Y1, X1)
	MOVSD X0, sumDy+80(FP)
	MOVSD X1, sumDyX+88(FP)
	VZEROUPPER
	RET

// func normalize32(y, x []float32, scale, shift float64, relu bool)
TEXT ·normalize32(SB), NOSPLIT, $0-65
	MOVQ y_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSD scale+48(FP), Z29
	VBROADCASTSD shift+56(FP), Z30
	MOVBLZX relu+64(FP), R8
	VPXORD Y28, Y28, Y28
	TESTQ CX, CX
	JLE  normDone

normLoop:
	TAILMASK
	PREFETCHT0 PF(SI)
	VCVTPS2PD.Z (SI), K1, Z2
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
	VMOVUPS Y2, K1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JG   normLoop

normDone:
	VZEROUPPER
	RET

// func gradX32(dx, x, dy []float32, a, b, k, scale, shift float64, relu bool)
TEXT ·gradX32(SB), NOSPLIT, $0-113
	MOVQ dx_base+0(FP), DX
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ dy_base+48(FP), DI
	VBROADCASTSD a+72(FP), Z24
	VBROADCASTSD b+80(FP), Z25
	VBROADCASTSD k+88(FP), Z26
	VBROADCASTSD scale+96(FP), Z29
	VBROADCASTSD shift+104(FP), Z30
	MOVBLZX relu+112(FP), R8
	VPXORD Y28, Y28, Y28
	TESTQ CX, CX
	JLE  gradDone

gradLoop:
	TAILMASK
	PREFETCH2
	VCVTPS2PD.Z (SI), K1, Z2
	KMOVW K1, K2
	TESTQ R8, R8
	JZ   gradSum
	RELUMASK

gradSum:
	VCVTPS2PD.Z (DI), K2, Z4
	VMOVAPD Z26, Z5
	VFMADD231PD Z24, Z4, Z5
	VFMADD231PD Z25, Z2, Z5
	VCVTPD2PS Z5, Y5
	VMOVUPS Y5, K1, (DX)
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JG   gradLoop

gradDone:
	VZEROUPPER
	RET
