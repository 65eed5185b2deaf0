// Package loss owns the training objectives of supflow: the Supervised
// Contrastive loss (SupCon, Khosla et al. 2020, as the official SupContrast
// SupConLoss computes it, including its no-positive fix) and softmax
// cross-entropy for the linear probe and the cross-entropy baseline.
//
// Each loss comes in two layers:
//
//   - a pure kernel over flat slices, generic in float32/float64, returning
//     the loss and its gradient with respect to the input ([SupCon],
//     [CrossEntropy]);
//   - a gorgonia op wrapping the kernel so the loss can sit at the end of a
//     graph and be differentiated symbolically ([SupConNode],
//     [CrossEntropyNode]).
//
// The package is pure computation: it must not import messages, bus, store
// or any stage, and it does no I/O.
package loss
