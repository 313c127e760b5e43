// Package benchtest holds what the project's benchmarks share: test files
// of a given size and per-iteration latencies, for the percentiles that a
// benchmark's mean hides.
package benchtest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// PNG is a real PNG of exactly size bytes: pixels of noise, which
// deflate cannot shrink, then a text chunk padding it to size, then a
// small text chunk holding a serial number (SetPNGSerial) so that each
// upload can be new bytes, then the end.
func PNG(tb testing.TB, size int) []byte {
	tb.Helper()
	const h = 512
	w := (size - 8<<10) / (4 * h)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i+8 <= len(img.Pix); i += 8 {
		binary.LittleEndian.PutUint64(img.Pix[i:], r.Uint64())
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	enc := buf.Bytes()
	iend := enc[len(enc)-12:]
	out := slices.Clone(enc[:len(enc)-12])
	const serialChunk = 12 + 10 // length, type, "n\x00", 8 digits, CRC
	pad := size - len(out) - serialChunk - len(iend) - 12 - len("Comment\x00")
	if pad < 0 {
		tb.Fatalf("noise alone is %d bytes, more than %d", len(enc), size)
	}
	out = appendChunk(out, "tEXt", append([]byte("Comment\x00"), bytes.Repeat([]byte{'.'}, pad)...))
	out = appendChunk(out, "tEXt", []byte("n\x0000000000"))
	out = append(out, iend...)
	if len(out) != size {
		tb.Fatalf("PNG of %d bytes, want %d", len(out), size)
	}
	if _, err := png.Decode(bytes.NewReader(out)); err != nil {
		tb.Fatal(err)
	}
	return out
}

func appendChunk(p []byte, typ string, data []byte) []byte {
	p = binary.BigEndian.AppendUint32(p, uint32(len(data)))
	start := len(p)
	p = append(p, typ...)
	p = append(p, data...)
	return binary.BigEndian.AppendUint32(p, crc32.ChecksumIEEE(p[start:]))
}

// SetPNGSerial writes i into a PNG's serial chunk, in place.
func SetPNGSerial(p []byte, i int) {
	c := p[len(p)-12-22 : len(p)-12]
	copy(c[10:18], fmt.Appendf(nil, "%08d", i%100_000_000))
	binary.BigEndian.PutUint32(c[18:], crc32.ChecksumIEEE(c[4:18]))
}

// Latencies are the durations of a benchmark's iterations, for the
// percentiles that its mean (ns/op) hides.
type Latencies []time.Duration

// Time runs f and records how long it took.
func (l *Latencies) Time(f func()) {
	start := time.Now()
	f()
	*l = append(*l, time.Since(start))
}

// Report adds the median and the 99th percentile (nearest rank) to the
// benchmark's results, in milliseconds.
func (l Latencies) Report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(p int) float64 {
		i := max((p*len(s)+99)/100-1, 0)
		return float64(s[i]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(50), "p50-ms")
	b.ReportMetric(at(99), "p99-ms")
}
