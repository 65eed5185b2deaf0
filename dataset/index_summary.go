package dataset

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"
	"time"
)

// WriteSummary writes what the index found, for people: the counts of the
// stored report (ReportKey), per split and class. bucket names the bucket
// in the s3:// addresses.
func (rep IndexReport) WriteSummary(w io.Writer, bucket string) {
	from := "list " + rep.List
	if rep.List == "" {
		from = "layout <split>/<class>/<file>"
	}
	fmt.Fprintf(w, "data set s3://%s/%s: images under s3://%s/%s, %s\n", bucket, rep.Prefix, bucket, rep.Path, from)
	if rep.Unchanged {
		fmt.Fprintf(w, "unchanged since %s (same keys, sizes and ETags): listed, nothing read or written\n", rep.Indexed.Format(time.RFC3339))
	}
	sk := rep.Skipped
	fmt.Fprintf(w, "listed %d objects: %d images indexed, %d refused, skipped %d not images by extension, %d hidden, %d outside the layout, %d invalid keys\n",
		rep.Listed, rep.Images, rep.Refused, sk.Extension, sk.Hidden, sk.Layout, sk.InvalidKey)
	for _, r := range rep.RefusedKeys {
		fmt.Fprintf(w, "  refused %s: %s\n", r.Key, r.Reason)
	}
	if more := rep.Refused - len(rep.RefusedKeys); more > 0 {
		fmt.Fprintf(w, "  and %d more refused (see the log)\n", more)
	}
	fmt.Fprintf(w, "mean %.4f std %.4f from a sample of %d images of split %s (%d read when indexed; no other image is read)\n",
		rep.Info.Mean, rep.Info.Std, rep.Info.Sampled, rep.Info.StatsSplit, rep.Sampled)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "split\tclass\timages")
	for _, split := range slices.Sorted(maps.Keys(rep.Counts)) {
		for _, class := range slices.Sorted(maps.Keys(rep.Counts[split])) {
			fmt.Fprintf(tw, "%s\t%s\t%d\n", split, class, rep.Counts[split][class])
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "report: s3://%s/%s\n", bucket, ReportKey(rep.Prefix))
}

// WriteSummary writes what the ingest did, for people: the counts, what
// was left out by kind, and the files left out with their reasons (the
// first of them, as the stored report holds). bucket names the bucket in
// the s3:// addresses.
func (rep Report) WriteSummary(w io.Writer, bucket string) {
	when := ""
	if rep.Unchanged {
		when = "as ingested at " + rep.Ingested.Format(time.RFC3339) + ": "
	}
	fmt.Fprintf(w, "data set s3://%s/%s from %s: %d images (%s%d written, %d already stored), %d refused, %d left out",
		bucket, rep.Prefix, rep.Source, rep.Images, when, rep.Written, rep.Skipped, rep.Refused, rep.leftOutTotal())
	for i, kind := range slices.Sorted(maps.Keys(rep.LeftOut)) {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		fmt.Fprintf(w, "%s%d %s", sep, rep.LeftOut[kind], kind)
	}
	fmt.Fprintln(w)
	if rep.Unchanged {
		fmt.Fprintln(w, "unchanged since that ingest (same files, sizes and modification times, same settings): nothing read or written this time")
	}
	for _, s := range rep.LeftOutFiles {
		fmt.Fprintf(w, "  %s %s: %s\n", s.Kind, s.Path, s.Reason)
	}
	if more := rep.leftOutTotal() + rep.Refused - len(rep.LeftOutFiles); more > 0 {
		fmt.Fprintf(w, "  and %d more (see the log)\n", more)
	}
	fmt.Fprintf(w, "report: s3://%s/%s\n", bucket, ReportKey(rep.Prefix))
}

func (rep Report) leftOutTotal() int {
	n := 0
	for _, c := range rep.LeftOut {
		n += c
	}
	return n
}
