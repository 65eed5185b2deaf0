package store_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/supflow/supflow/store"
)

// An embedded endpoint is reached through the same client as a real MinIO.
func Example() {
	ctx := context.Background()
	e, err := store.StartEmbedded(ctx, "") // in memory
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close()
	c, err := store.New(e.Config("example"))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.EnsureBucket(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Put(ctx, "greeting.txt", []byte("hello"), store.PutOptions{ContentType: "text/plain"}); err != nil {
		fmt.Println(err)
		return
	}
	data, err := c.Get(ctx, "greeting.txt")
	fmt.Println(string(data), err)
	_, err = c.Get(ctx, "missing.txt")
	fmt.Println(err != nil && errors.Is(err, store.ErrNotFound))
	// Output:
	// hello <nil>
	// true
}
