package clustertest

import (
	"slices"
	"testing"
)

func TestEpochStats(t *testing.T) {
	out := `time=T level=INFO msg=step stage=train step=1 epoch=1
time=T level=INFO msg="epoch trained" stage=train epoch=1 samples=5 dropped=1 duplicates=2 steps=1 seconds=1.5 trained_ids=0-2,4-5 dropped_ids=3
time=T level=INFO msg="epoch trained" stage=train epoch=2 samples=6 dropped=0 duplicates=0 steps=1 seconds=1.5 trained_ids=0-5 dropped_ids=""
time=T level=INFO msg="epoch trained" stage=train epoch=2 samples=6 dropped=0 duplicates=1 steps=1
`
	got := EpochStats(out)
	e1 := got[1]
	if e1.Samples != 5 || e1.Dropped != 1 || e1.Duplicates != 2 || !slices.Equal(e1.TrainedIDs, []uint64{0, 1, 2, 4, 5}) ||
		!slices.Equal(e1.DroppedIDs, []uint64{3}) {
		t.Errorf("epoch 1: %+v", e1)
	}
	if e2 := got[2]; e2.Duplicates != 1 || e2.TrainedIDs != nil {
		t.Errorf("epoch 2: %+v; want the later line, which has no ids", e2)
	}
}
