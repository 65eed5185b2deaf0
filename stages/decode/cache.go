package decode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"
	"strconv"

	"github.com/supflow/supflow/imgdecode"
)

// Cache stores decoded images so that later epochs skip fetching the
// original and decoding it: one entry per loose object, one decoded shard
// per data shard (shardcache.go). cmd/supflow backs it with the bucket
// (entries are ordinary objects under cache/<data set prefix>/). GetRange
// reads bytes [off, off+n) of an entry, failing when they are not all
// there.
type Cache interface {
	Get(ctx context.Context, key string) ([]byte, error)
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	Put(ctx context.Context, key string, data []byte) error
}

// cacheMagic starts every cache entry: "SFPX", a layout version byte, then
// height, width (u32 little-endian), channels (u8) and the pixels.
var cacheMagic = [5]byte{'S', 'F', 'P', 'X', 1}

const cacheHeader = len(cacheMagic) + 4 + 4 + 1

var errCacheEntry = errors.New("decode: malformed cache entry")

// cacheKey names the entry of an object (ext ".px") or the decoded shard
// of a data shard (".pxs") under the decode settings that shape its
// pixels, so a change of settings never reads a stale entry.
func (s *Stage) cacheKey(key, ext string) string {
	gray := "rgb"
	if s.cfg.Gray {
		gray = "gray"
	}
	return path.Join(s.prefix, "r"+strconv.Itoa(s.cfg.ResizeShorter)+"-"+gray, key+ext)
}

func encodeCacheEntry(img imgdecode.Image) []byte {
	return appendCacheEntry(make([]byte, 0, cacheHeader+len(img.Pix)), img)
}

// appendCacheEntry appends img's entry to b.
func appendCacheEntry(b []byte, img imgdecode.Image) []byte {
	b = append(b, cacheMagic[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(img.Height))
	b = binary.LittleEndian.AppendUint32(b, uint32(img.Width))
	b = append(b, byte(img.Channels))
	return append(b, img.Pix...)
}

func decodeCacheEntry(b []byte, maxPixels int64) (imgdecode.Image, error) {
	if len(b) < cacheHeader || [5]byte(b[:5]) != cacheMagic {
		return imgdecode.Image{}, errCacheEntry
	}
	h, w, c := int64(binary.LittleEndian.Uint32(b[5:])), int64(binary.LittleEndian.Uint32(b[9:])), int64(b[13])
	if h < 1 || w < 1 || (c != 1 && c != 3) || (maxPixels > 0 && h*w > maxPixels) || int64(len(b)-cacheHeader) != h*w*c {
		return imgdecode.Image{}, fmt.Errorf("%w: %dx%dx%d in %d bytes", errCacheEntry, h, w, c, len(b))
	}
	return imgdecode.Image{Height: int(h), Width: int(w), Channels: int(c), Pix: b[cacheHeader:]}, nil
}

// cached returns the cached image of key, if there is a usable entry.
func (s *Stage) cached(ctx context.Context, key string) (imgdecode.Image, bool) {
	b, err := s.cache.Get(ctx, s.cacheKey(key, ".px"))
	if err != nil {
		return imgdecode.Image{}, false
	}
	img, err := decodeCacheEntry(b, s.cfg.MaxPixels)
	if err != nil {
		return imgdecode.Image{}, false
	}
	return img, true
}

// store writes key's entry. A failed cache read or write never fails a
// decode; it only costs the decode the cache would have saved.
func (s *Stage) store(ctx context.Context, key string, img imgdecode.Image) {
	_ = s.cache.Put(ctx, s.cacheKey(key, ".px"), encodeCacheEntry(img))
}
