package model

// Counts are what a network costs, counted from its Config without
// building it (no tensor is allocated).
type Counts struct {
	// Params is the number of learnable parameters: convolution and
	// linear weights, linear biases, batch-norm weights and biases.
	Params int64
	// Buffers is the number of batch-norm running statistics.
	Buffers int64
	// Activations is the number of elements the convolutions (stem,
	// blocks, shortcuts) and the max-pool output for one h x w image:
	// what a batch's forward pass holds per image, a few times over in a
	// training step. A float64: for the largest valid configurations it
	// exceeds what an int64 counts once multiplied by a batch.
	Activations float64
}

// Count returns the Counts of the network c describes, with New's defaults
// applied, for input images of h x w (the engine's view size). It returns
// the error New would for an invalid c.
func (c Config) Count(h, w int) (Counts, error) {
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return Counts{}, err
	}
	a := newArch(c)
	var n Counts
	act := func(l convLayer, h, w int) (int, int) {
		ho, wo := (h+2*l.pad-l.k)/l.stride+1, (w+2*l.pad-l.k)/l.stride+1
		ho, wo = max(ho, 1), max(wo, 1)
		n.Activations += float64(l.cout) * float64(ho) * float64(wo)
		return ho, wo
	}
	a.walk(func(l any) {
		switch l := l.(type) {
		case convLayer:
			n.Params += int64(l.cout) * int64(l.cin) * int64(l.k) * int64(l.k)
		case bnLayer:
			n.Params += 2 * int64(l.c)
			n.Buffers += 2 * int64(l.c)
		case linearLayer:
			n.Params += int64(l.out)*int64(l.in) + int64(l.out)
		}
	})
	h, w = act(a.stem, h, w)
	if a.maxPool {
		h, w = max((h+2-3)/2+1, 1), max((w+2-3)/2+1, 1)
		n.Activations += float64(a.stem.cout) * float64(h) * float64(w)
	}
	for _, b := range a.blocks {
		bh, bw := h, w
		for _, l := range b.convs {
			bh, bw = act(l, bh, bw)
		}
		if b.shortcut != nil {
			act(*b.shortcut, h, w)
		}
		h, w = bh, bw
	}
	return n, nil
}
