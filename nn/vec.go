package nn

// vecLoops are float32 loops of batch norm, the elementwise ops and the
// transposes, each the same function as a generic Go one (named by its
// comment); vecLoops32 (vec_amd64.go, vec_other.go) holds versions in
// assembly where the CPU has them. The batch norm ones walk consecutive
// planes of hw values, plane j belonging to p[j]: one image's run of
// channels.
type vecLoops struct {
	moments    func(x []float32, hw int, p []bnChannel)                    // momentsPlanes
	centredDot func(x, dy []float32, hw int, relu bool, p []bnChannel)     // centredDotPlanes
	normalize  func(y, x []float32, hw int, relu bool, p []bnChannel)      // normalizePlanes
	gradX      func(dx, x, dy []float32, hw int, relu bool, p []bnChannel) // gradXPlanes
	addReLU    func(dst, a, b []float32)                                   // addReLU
	reluGrad   func(dst, x, dy []float32)                                  // reluGrad32
	// transpose16 is transposeTile's 16x16 block, on pointers it checked.
	transpose16 func(dst *float32, ldd int, a, b *float32, lds int)
}

// vecLoops32 are the float32 loops in use: cpuVecLoops32 unless SetSIMD
// turned them off.
var vecLoops32 = cpuVecLoops32

// SetSIMD chooses whether float32 batch norm, ReLU and transposes run on
// nn's AVX-512 assembly where the CPU has it (true, the default) or on the
// portable Go loops (false, for comparisons). The ops read the choice
// without synchronisation: call it at startup, before any op runs.
func SetSIMD(on bool) {
	vecLoops32 = nil
	if on {
		vecLoops32 = cpuVecLoops32
	}
}

// vec32 returns x and vecLoops32 where T is float32 and vecLoops32 is
// set, else nil and nil.
func vec32[T float](x []T) ([]float32, *vecLoops) {
	if x32, ok := any(x).([]float32); ok && vecLoops32 != nil {
		return x32, vecLoops32
	}
	return nil, nil
}
