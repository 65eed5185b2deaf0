package clustertest

import (
	"regexp"
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

func TestGoroutines(t *testing.T) {
	dump := `
PC=0x49dc01 m=0 sigcode=0

goroutine 0 gp=0x2b36880 m=0 mp=0x2b38c80 [idle]:
runtime.futex(0x2b38dd8, 0x80, 0x0, 0x0, 0x0, 0x0)
	/usr/local/go/src/runtime/sys_linux_amd64.s:569 +0x21 fp=0x7ffe9bc4eb20 sp=0x7ffe9bc4eb18 pc=0x49dc01

goroutine 38 gp=0x2f7bab22af00 m=nil [sync.Mutex.Lock, 3 minutes]:
runtime.gopark(0x8a57e63fa60?, 0x2?, 0x40?, 0x0?, 0x8a57e63f6c4?)
	/usr/local/go/src/runtime/proc.go:462 +0xce
sync.(*Mutex).Lock(...)
	/usr/local/go/src/sync/mutex.go:46
github.com/supflow/supflow/bus.(*ackable).isSettled(0x2f7bab13ff80?)
	/work/main/bus/route.go:165 +0x45 fp=0x2f7baaf6df00 sp=0x2f7baaf6dee8 pc=0x8f1e25
`
	want := `goroutine 38 [sync.Mutex.Lock, 3 minutes]:
sync.(*Mutex).Lock(...)
	/usr/local/go/src/sync/mutex.go:46
github.com/supflow/supflow/bus.(*ackable).isSettled(0x2f7bab13ff80?)
	/work/main/bus/route.go:165 +0x45

`
	if got := Goroutines(dump); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if got := Goroutines("no traceback"); got != "" {
		t.Errorf("got %q from output without a traceback", got)
	}
}

func TestLogLine(t *testing.T) {
	tests := []struct {
		re   *regexp.Regexp
		line string
		want bool
	}{
		{LogLine("epoch trained", "epoch", 2), `time=T level=INFO msg="epoch trained" stage=train epoch=2 samples=6`, true},
		{LogLine("epoch trained", "epoch", 2), `time=T level=INFO msg="epoch trained" stage=train epoch=20 samples=6`, false},
		{LogLine("epoch trained", "epoch", 2), `time=T level=INFO msg="epoch fed" stage=feeder epoch=2 samples=6`, false},
		{LogLine("step", "step", 1), `time=T level=INFO msg=step stage=train step=1 epoch=1`, true},
		{LogLine("step", "step", 1), `time=T level=INFO msg=step stage=train step=10 epoch=1`, false},
	}
	for _, tt := range tests {
		if got := tt.re.MatchString(tt.line); got != tt.want {
			t.Errorf("%s on %q: %v, want %v", tt.re, tt.line, got, tt.want)
		}
	}
}
