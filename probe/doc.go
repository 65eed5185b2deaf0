// Package probe owns the evaluation math of supflow: the linear probe (a
// softmax classifier trained with SGD on frozen features, as in SupContrast's
// main_linear.py), the weighted kNN monitor of the self-supervised literature,
// and the scores both report (top-1, top-5, per-class accuracy, confusion
// matrix).
//
// It works on plain row-major float32 feature matrices and int labels, so it
// knows nothing about models, messages, storage or transport, and must not
// import them. GEMMs go through gonum's blas32; a binary that imports
// internal/blasimpl makes them use OpenBLAS.
package probe
