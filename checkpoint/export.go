package checkpoint

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/supflow/supflow/safetensors"
)

// EncoderPrefix is the state_dict prefix of SupConResNet's encoder; the
// rest of the model is its projection head.
const EncoderPrefix = "encoder."

// keyExport marks an export; its value says what the file holds.
const keyExport = "supflow.export"

// ExportEncoder returns the frozen encoder of s as a safetensors
// state_dict for PyTorch: the "encoder." tensors with that prefix removed
// (conv1.weight, layer1.0.bn1.running_mean, ...), as SupConResNet's
// encoder module names them, so that model.encoder.load_state_dict(sd,
// strict=True) takes it; no projection head, no optimizer state. The
// metadata keeps "format" = "pt", the dtype, step, epoch and model
// configuration, and "supflow.export" = "encoder". It is not a checkpoint:
// Decode refuses it (no format version), and training cannot resume from
// it.
func ExportEncoder(s State) ([]byte, error) {
	if err := validate(s); err != nil {
		return nil, err
	}
	f := safetensors.New()
	for name, t := range s.Tensors {
		if rest, ok := strings.CutPrefix(name, EncoderPrefix); ok {
			put(f, rest, t)
		}
	}
	if len(f.Tensors) == 0 {
		return nil, fmt.Errorf("%w: no %q tensors to export", ErrFormat, EncoderPrefix)
	}
	m := f.Metadata
	m[keyFormat] = "pt"
	m[keyExport] = "encoder"
	m[keyStep] = strconv.FormatInt(s.Meta.Step, 10)
	m[keyEpoch] = strconv.Itoa(s.Meta.Epoch)
	m[keyDType] = s.Meta.DType
	if len(s.Meta.Model) > 0 {
		m[keyModel] = string(s.Meta.Model)
	}
	return f.Bytes()
}
