// Package optim owns parameter updates and learning-rate schedules: SGD with
// momentum, weight decay and Nesterov (PyTorch semantics), an optional LARS
// layer-wise trust ratio, and SupContrast's cosine / step-decay schedule with
// linear warm-up.
//
// Parameters are gorgonia tensors addressed by name (PyTorch state_dict
// names); the optimizer keeps its momentum buffers by the same names so a
// checkpoint can save and restore them exactly.
//
// [Config] and [Schedule] declare their keys of pipeline.yaml's train
// section (momentum, weight_decay, optimizer; lr, schedule, warm,
// warm_epochs) with their YAML tags and ranges (Validate, whose errors name
// the keys through config/field); engine.TrainConfig inlines them there.
//
// The package does no I/O and must not import messages, bus, store or any
// stage.
package optim
