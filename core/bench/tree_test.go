package bench

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"testing"
)

// The tree's files carry the sha256 of what was written: the bursts pass
// it in their batch lines, and pkgtorrent-get refuses a file that differs.
func TestMakeTreeSums(t *testing.T) {
	root := t.TempDir()
	files, err := makeTree(root, 7, 20, 3<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f.Rel)))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != f.Size || sha256.Sum256(b) != f.SHA256 {
			t.Errorf("%s: %d bytes, sha256 %x; the tree says %d, %x", f.Rel, len(b), sha256.Sum256(b), f.Size, f.SHA256)
		}
	}
}
