package bench

import (
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
)

// treeFile is one synthetic package of the benchmark tree.
type treeFile struct {
	Rel    string // repository path
	Size   int64
	SHA256 [sha256.Size]byte
}

// sizeSigma is the spread (log-normal sigma) of package sizes. Package
// sizes of a distribution update are close to log-normal with a heavy tail:
// most packages weigh tens to hundreds of KiB, a few weigh tens of MiB. With
// sigma 2 the largest of 1,000 packages is ~20% of the total and the median
// is ~15% of the mean.
const sizeSigma = 2.0

// minFileSize keeps the smallest packages realistic (an RPM header alone is
// a few KiB).
const minFileSize = 2 << 10

// drawSizes returns count sizes drawn log-normally, scaled so that they add
// up to total exactly, sorted from small to large.
func drawSizes(rng *rand.Rand, count int, total int64) ([]int64, error) {
	if count <= 0 || total < int64(count)*minFileSize {
		return nil, fmt.Errorf("cannot make %d files of at least %d bytes from %d bytes", count, minFileSize, total)
	}
	raw := make([]float64, count)
	var sum float64
	for i := range raw {
		raw[i] = math.Exp(sizeSigma * rng.NormFloat64())
		sum += raw[i]
	}
	// Every file gets minFileSize, the rest is shared out by weight.
	spare := float64(total - int64(count)*minFileSize)
	sizes := make([]int64, count)
	var got int64
	for i, w := range raw {
		sizes[i] = minFileSize + int64(spare*w/sum)
		got += sizes[i]
	}
	slices.Sort(sizes)
	sizes[count-1] += total - got // rounding goes to the largest file
	return sizes, nil
}

// makeTree writes a repository tree of count files adding up to total bytes
// under root, with random (incompressible) content, and returns the files in
// a random order.
func makeTree(root string, seed int64, count int, total int64) ([]treeFile, error) {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x706b67))
	sizes, err := drawSizes(rng, count, total)
	if err != nil {
		return nil, err
	}
	rng.Shuffle(len(sizes), func(i, j int) { sizes[i], sizes[j] = sizes[j], sizes[i] })
	files := make([]treeFile, count)
	buf := make([]byte, 1<<20)
	for i, size := range sizes {
		letter := 'a' + rune(rng.IntN(26))
		rel := fmt.Sprintf("os/Packages/%c/%c%s-%d.%d-%d.fc41.x86_64.rpm", letter, letter, word(rng), rng.IntN(20), rng.IntN(10), i)
		files[i] = treeFile{Rel: rel, Size: size}
		if files[i].SHA256, err = writeRandom(filepath.Join(root, filepath.FromSlash(rel)), size, rng, buf); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func word(rng *rand.Rand) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 3+rng.IntN(8))
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// writeRandom writes size random bytes to path and returns their sha256.
func writeRandom(path string, size int64, rng *rand.Rand, buf []byte) (sum [sha256.Size]byte, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return sum, fmt.Errorf("making tree: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return sum, fmt.Errorf("making tree: %w", err)
	}
	h := sha256.New()
	for left := size; left > 0; {
		n := min(left, int64(len(buf)))
		for i := 0; i+8 <= int(n); i += 8 {
			v := rng.Uint64()
			buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
			buf[i+4], buf[i+5], buf[i+6], buf[i+7] = byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
		}
		h.Write(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return sum, fmt.Errorf("making tree: %w", err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return sum, fmt.Errorf("making tree: %w", err)
	}
	h.Sum(sum[:0])
	return sum, nil
}

func totalSize(files []treeFile) int64 {
	var t int64
	for _, f := range files {
		t += f.Size
	}
	return t
}
