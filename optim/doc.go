// Package optim owns parameter updates and learning-rate schedules: SGD with
// momentum, weight decay and Nesterov (PyTorch semantics), an optional LARS
// layer-wise trust ratio, and SupContrast's cosine / step-decay schedule with
// linear warm-up.
//
// Parameters are gorgonia tensors addressed by name (PyTorch state_dict
// names); the optimizer keeps its momentum buffers by the same names so a
// checkpoint can save and restore them exactly. The package does no I/O and
// must not import messages, bus, store or any stage.
package optim
