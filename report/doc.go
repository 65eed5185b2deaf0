// Package report owns the record of one supflow run, report.json, and its
// human view, report.html: pretraining curves, kNN accuracy over epochs,
// linear-probe results and per-stage throughput.
//
// A Report is plain data filled in by whoever ran the pipeline; this package
// only validates, serializes and renders it. It must not import models,
// messages, storage or transport. The HTML is self-contained (inline CSS and
// SVG, no scripts, no external assets) and every text from the Report is
// escaped by html/template.
package report
