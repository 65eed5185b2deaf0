package report_test

import (
	"fmt"
	"os"
	"time"

	"github.com/supflow/supflow/report"
)

func ExampleWriteJSON() {
	r := &report.Report{
		RunID:   "demo",
		Started: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Dataset: "mnist",
		Model:   report.Model{Arch: "resnet18", Params: 11_173_962},
		Method:  "supcon",
		// A diverged step: its loss is not a number and is written as null.
		Pretrain:   []report.Point{{Step: 100, Epoch: 0.5, Loss: report.Missing, LR: 0.05, SamplesPerSec: 812, DataWaitSeconds: 0.01}},
		KNN:        []report.KNNPoint{{Epoch: 1, Top1: 0.91, Top5: 0.99}},
		Throughput: []report.Stage{{Name: "decode", SamplesPerSec: 2400}},
	}
	if err := report.WriteJSON(os.Stdout, r); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {
	//   "run_id": "demo",
	//   "started": "2026-03-01T12:00:00Z",
	//   "dataset": "mnist",
	//   "model": {
	//     "arch": "resnet18",
	//     "params": 11173962
	//   },
	//   "method": "supcon",
	//   "pretrain": [
	//     {
	//       "step": 100,
	//       "epoch": 0.5,
	//       "loss": null,
	//       "lr": 0.05,
	//       "samples_per_sec": 812,
	//       "data_wait_seconds": 0.01
	//     }
	//   ],
	//   "knn": [
	//     {
	//       "epoch": 1,
	//       "top1": 0.91,
	//       "top5": 0.99
	//     }
	//   ],
	//   "throughput": [
	//     {
	//       "name": "decode",
	//       "samples_per_sec": 2400
	//     }
	//   ]
	// }
}
