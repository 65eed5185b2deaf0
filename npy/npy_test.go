package npy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestWriteMatchesNumPy: the bytes are those numpy 1.24's np.save wrote for
// the same arrays (Debian's python3-numpy).
func TestWriteMatchesNumPy(t *testing.T) {
	const (
		f32 = "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c2032292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000c03f000000c000000000000050400000e04000000041"
		i64 = "934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0300000000000000ffffffffffffffff0000000000010000"
	)
	var b bytes.Buffer
	if err := Write(&b, []int{3, 2}, []float32{1.5, -2, 0, 3.25, 7, 8}); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b.Bytes()); got != f32 {
		t.Errorf("float32 [3,2]:\n got %s\nwant %s", got, f32)
	}
	b.Reset()
	if err := Write(&b, []int{3}, []int64{3, -1, 1 << 40}); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b.Bytes()); got != i64 {
		t.Errorf("int64 [3]:\n got %s\nwant %s", got, i64)
	}
	for _, shape := range [][]int{{2, 2}, {-1}, {}} {
		if err := Write(&b, shape, []int64{1, 2, 3}); !errors.Is(err, ErrShape) {
			t.Errorf("shape %v for 3 elements: %v, want ErrShape", shape, err)
		}
	}
}
