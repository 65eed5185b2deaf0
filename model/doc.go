// Package model owns supflow's network: SupConResNet as in SupContrast's
// networks/resnet_big.py, a ResNet encoder (BasicBlock or Bottleneck, CIFAR
// or ImageNet stem) followed by a projection head and row L2 normalisation.
//
// A [Model] holds the parameter tensors and batch-norm states, named exactly
// like the PyTorch state_dict, so that optimizers and checkpoints work by
// name. [Model.Build] unrolls the network for one input shape into a
// gorgonia graph of package nn's ops, with every parameter node bound to the
// model's persistent tensor: an optimizer that updates those tensors in
// place is seen by every graph. [Model.Forward] runs such a graph for
// inference.
//
// [Model.State] and [Model.LoadState] copy the whole state_dict out and in
// as statedict tensors in the model's own dtype, and [Model.ParamInfos] and
// [Model.BufferInfos] list its names and shapes. They are the model's half of
// the one checkpoint path: package engine hands that state, with the
// optimizer's, to package checkpoint, which owns the file format. The name,
// shape and tensor types live in package statedict because this package may
// not import checkpoint.
//
// [Config] is pipeline.yaml's model section but for dtype (which the
// engine adds, engine.ModelConfig): its YAML tags are the keys, DefaultConfig
// the defaults and Validate, whose errors name the keys (config/field), the
// ranges.
//
// The package does no I/O and knows nothing of transport, storage, losses or
// optimizers; it imports nn, statedict, config/field and gorgonia.
package model
