// Package statedict is a PyTorch state_dict in memory: the names, shapes
// and values that package model produces and loads and package checkpoint
// stores. It sits below both because neither may import the other (model
// knows nothing of files, checkpoint nothing of the network), and it is the
// one place for the two types they share:
//
//   - [Info], a tensor's state_dict name and shape: what a model expects
//     and what a checkpoint is checked against;
//   - [Tensor], one array in its own element type (float32, float64 or
//     int64), so that a model's state travels to a checkpoint and back
//     without conversion. It carries no name: a state is a
//     map[string]Tensor keyed by state_dict name.
//
// The raw little-endian bytes of a file are package safetensors' Tensor, a
// file-format concern that package checkpoint translates to and from.
// statedict imports only gorgonia's tensor package and must not import any
// other supflow package.
package statedict
