package xla

// Runner executes programs on one device. The XLA trainer backend
// (xla/trainer) drives one; xla/device implements it on a PJRT plugin (cgo)
// and internal/hlorunner on the pure-Go evaluator (tests and in-repo tools
// only). Implementations need not be safe for concurrent use.
type Runner interface {
	// Compile prepares p for execution.
	Compile(p *Program) (Executable, error)
	// Upload copies flat to the device as a value of a's type: flat is
	// []float32, []float64, []int32 or []uint8 as a.DType is, with
	// prod(a.Shape) values (one for a scalar).
	Upload(a Arg, flat any) (Buffer, error)
	// Close releases the device; its buffers and executables are invalid
	// afterwards.
	Close() error
}

// Executable is a compiled program.
type Executable interface {
	// Run executes the program on in (one buffer per input, in Inputs
	// order) and returns one buffer per output, in Outputs order. The
	// inputs whose indices are in donate are consumed (their storage may
	// hold the outputs that alias them) and must not be used again.
	Run(in []Buffer, donate []int) ([]Buffer, error)
}

// Buffer is a value on a Runner's device.
type Buffer interface {
	// Download copies the value to the host as float64, exact for every
	// element type a program outputs.
	Download() ([]float64, error)
	// Free releases the value's device memory; the buffer is invalid
	// afterwards.
	Free() error
}

// Donated is the indices of p's inputs that an output of the same name
// replaces (parameters, momentum, running statistics), each with that
// output's index: running p with these inputs donated updates the state
// in place.
func Donated(p *Program) (ins, outs []int) {
	byName := make(map[string]int, len(p.Outputs))
	for i, a := range p.Outputs {
		byName[a.Name] = i
	}
	for i, a := range p.Inputs {
		if o, ok := byName[a.Name]; ok {
			ins, outs = append(ins, i), append(outs, o)
		}
	}
	return ins, outs
}
