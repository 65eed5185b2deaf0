package xla

// Runner executes programs on its devices, numbered 0 to Devices()-1: a
// program on device 0, or a data-parallel one (Program.Replicas = R > 1)
// on devices 0 to R-1, replica r on device r. The XLA trainer backend
// (xla/trainer) drives one; xla/device implements it on a PJRT plugin (cgo)
// and internal/hlorunner on the pure-Go evaluator (tests and in-repo tools
// only). Implementations need not be safe for concurrent use.
type Runner interface {
	// Devices is the number of devices (at least 1).
	Devices() int
	// Compile prepares p for execution on devices 0 to p.Replicas-1.
	Compile(p *Program) (Executable, error)
	// Upload copies flat to device as a value of a's type: flat is
	// []float32, []float64, []int32 or []uint8 as a.DType is, with
	// prod(a.Shape) values (one for a scalar).
	Upload(device int, a Arg, flat any) (Buffer, error)
	// Close releases the device; its buffers and executables are invalid
	// afterwards.
	Close() error
}

// Executable is a compiled program.
type Executable interface {
	// Run executes the program once per replica, in lockstep: in holds
	// each replica's inputs in turn (one buffer per input, in Inputs
	// order; replica r's on device r) and the result each replica's
	// outputs in turn (in Outputs order). The inputs whose indices (in
	// Inputs) are in donate are consumed on every replica (their storage
	// may hold the outputs that alias them) and must not be used again.
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
