// Package checkpoint owns the on-disk training state of supflow: model
// tensors under their PyTorch state_dict names, the optimizer's momentum
// buffers, and metadata (format version, step, epoch, dtype, model and
// optimizer configuration, RNG state), in one safetensors file.
//
// Layout:
//
//   - model tensors under their state_dict names, F32 or F64 as the model's
//     dtype; BatchNorm num_batches_tracked counters as I64, as PyTorch keeps
//     them;
//   - momentum buffers under "optimizer.momentum.<parameter name>", same
//     dtype and shape as the parameter;
//   - "__metadata__" strings: "format" = "pt" and the "supflow.*" keys
//     below, plus any caller-defined extras.
//
// Stripping the "optimizer." tensors leaves a state_dict that PyTorch's
// load_state_dict(strict=True) accepts for SupContrast's SupConResNet of the
// same widths. testdata/load_in_torch.py demonstrates it:
//
//	/usr/bin/python3 checkpoint/testdata/load_in_torch.py CKPT.safetensors
//
// (Debian's python3-torch; no safetensors package needed). [ExportEncoder]
// writes the encoder alone, without head and optimizer state, under the
// names SupConResNet.encoder uses (the "encoder." prefix removed), for
// model.encoder.load_state_dict(sd, strict=True). TestLoadInTorch runs the
// script on checkpoints built from the resnet fixtures and on their
// exports when an interpreter
// with torch is found ($SUPFLOW_TORCH_PYTHON, /usr/bin/python3, python3) and
// skips otherwise.
//
// This is supflow's one checkpoint path: engine.CPU.Save puts the model's
// state_dict (model.State) and the optimizer's momentum buffers, both in the
// model's dtype, into a [State]; [Encode] writes those arrays in that dtype,
// and engine.CPU.Load comes back the same way through [Decode] and [Check].
//
// The package knows nothing about the model: it stores named, shaped arrays
// and refuses ones that do not match an expected list ([Check]). It must
// not import messages, bus, store, model or any stage. The array type
// (statedict.Tensor) and the expected list's entries (statedict.Info) come
// from package statedict, which model shares, so that neither package
// imports the other; safetensors.Tensor is the raw bytes of a file entry,
// which this package translates to and from.
package checkpoint
