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
// inference. [Model.MarshalState] and [FromState] are the checkpoint bytes
// (safetensors, PyTorch names).
//
// The package does no I/O and knows nothing of transport, storage, losses or
// optimizers; it imports nn, safetensors and gorgonia.
package model
