package boltdb

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"ticketgate/store"
)

// TestBlobsAppendInOrderAndGoAtZero: each new content gets the next
// number in blob.data, the same content counts a second reference
// instead of a second copy, and the last release deletes the content.
func TestBlobsAppendInOrderAndGoAtZero(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	first, second := []byte("first mail\r\n"), []byte("second mail\r\n")
	var h1, h2 string
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		var err error
		if h1, err = st.PutBlob(first); err != nil {
			return err
		}
		if h2, err = st.PutBlob(second); err != nil {
			return err
		}
		_, err = st.PutBlob(first)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var keys [][]byte
	eachEntry(d, bucketBlobData, func(k, _ []byte) { keys = append(keys, clone(k)) })
	if len(keys) != 2 || bytes.Compare(keys[0], keys[1]) >= 0 {
		t.Fatalf("blob.data keys %x, want two in increasing order", keys)
	}
	d.View(bg, func(st store.Tx) error {
		if n := st.(*tx).blobRefs(h1); n != 2 {
			t.Errorf("first content: %d references, want 2", n)
		}
		for h, want := range map[string][]byte{h1: first, h2: second} {
			if got, err := st.Blob(h); err != nil || !bytes.Equal(got, want) {
				t.Errorf("Blob(%s) = %q, %v; want %q", h, got, err, want)
			}
		}
		return nil
	})

	release := func(h string) {
		t.Helper()
		if err := d.UpdateNow(bg, func(st store.Tx) error { return st.(*tx).releaseBlob(h) }); err != nil {
			t.Fatal(err)
		}
	}
	release(h1)
	release(h2)
	d.View(bg, func(st store.Tx) error {
		if _, err := st.Blob(h1); err != nil {
			t.Errorf("first content after one of two releases: %v", err)
		}
		if _, err := st.Blob(h2); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second content after its only release: %v, want not found", err)
		}
		return nil
	})
	release(h1)
	if n := keysIn(d, bucketBlobData); n != 0 {
		t.Errorf("%d contents left in blob.data after every release", n)
	}
	expectClean(t, d, "after every release")
}

// TestBlobStoredBeforeSchema8: content kept in blobs under its hash with
// a count alone still reads, counts another reference of the same
// content without a second copy, and goes at its last release.
func TestBlobStoredBeforeSchema8(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	old := []byte("kept by an older version\r\n")
	h := sha(old)
	if err := d.db.Update(func(btx *bolt.Tx) error {
		if err := btx.Bucket(bucketBlobs).Put([]byte(h), old); err != nil {
			return err
		}
		return btx.Bucket(bucketBlobRefs).Put([]byte(h), u64(1))
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		got, err := st.PutBlob(old)
		if got != h {
			t.Errorf("PutBlob = %s, want %s", got, h)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := keysIn(d, bucketBlobData); n != 0 {
		t.Errorf("old content copied into blob.data (%d entries)", n)
	}
	expectClean(t, d, "with an old blob counted twice")
	for i := 0; i < 2; i++ {
		d.View(bg, func(st store.Tx) error {
			if got, err := st.Blob(h); err != nil || !bytes.Equal(got, old) {
				t.Errorf("before release %d: Blob = %q, %v", i+1, got, err)
			}
			return nil
		})
		if err := d.UpdateNow(bg, func(st store.Tx) error { return st.(*tx).releaseBlob(h) }); err != nil {
			t.Fatal(err)
		}
	}
	d.db.View(func(btx *bolt.Tx) error {
		if btx.Bucket(bucketBlobs).Get([]byte(h)) != nil || btx.Bucket(bucketBlobRefs).Get([]byte(h)) != nil {
			t.Error("old blob or its count left after its last release")
		}
		return nil
	})
}

// TestBlobsPackedWhenItPays: a mail's text is kept packed (a 9-byte key
// and fewer bytes than the mail), content that does not pack is kept as
// it is, both read back whole, the last release deletes both, and a
// packed content whose bytes were damaged is reported rather than handed
// out.
func TestBlobsPackedWhenItPays(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	text := []byte("From: ann@customer.example\r\nSubject: printer\r\n\r\n" +
		strings.Repeat("The printer on the third floor jams on every second page.\r\n", 70))
	noise := randomish(3072, 0) // under chunkFrom: one value
	var hText, hNoise string
	if err := d.UpdateNow(bg, func(st store.Tx) error {
		var err error
		if hText, err = st.PutBlob(text); err != nil {
			return err
		}
		hNoise, err = st.PutBlob(noise)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	stored := map[int]int{} // key length → value length
	eachEntry(d, bucketBlobData, func(k, v []byte) { stored[len(k)] = len(v) })
	if n, ok := stored[9]; !ok || n >= len(text)/2 {
		t.Errorf("the mail's text: stored %v (key length → bytes), want a packed entry under half its %d bytes", stored, len(text))
	}
	if n, ok := stored[8]; !ok || n != len(noise) {
		t.Errorf("content that does not pack: stored %v, want %d bytes under an 8-byte key", stored, len(noise))
	}
	d.View(bg, func(st store.Tx) error {
		for h, want := range map[string][]byte{hText: text, hNoise: noise} {
			if got, err := st.Blob(h); err != nil || !bytes.Equal(got, want) {
				t.Errorf("Blob(%s): %d bytes, %v; want the %d stored", h, len(got), err, len(want))
			}
		}
		return nil
	})
	expectClean(t, d, "with a packed blob")

	d.db.Update(func(btx *bolt.Tx) error {
		r, _ := decodeBlobRef(btx.Bucket(bucketBlobRefs).Get([]byte(hText)))
		return btx.Bucket(bucketBlobData).Put(r.at, []byte("\xffnot s2"))
	})
	d.View(bg, func(st store.Tx) error {
		if got, err := st.Blob(hText); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("damaged packed blob: %q, %v; want not found", got, err)
		}
		return nil
	})
	if problems, _ := d.Check(bg); len(problems) == 0 {
		t.Error("check finds nothing wrong with a packed blob that does not unpack")
	}

	for _, h := range []string{hText, hNoise} {
		if err := d.UpdateNow(bg, func(st store.Tx) error { return st.(*tx).releaseBlob(h) }); err != nil {
			t.Fatal(err)
		}
	}
	if n := keysIn(d, bucketBlobData); n != 0 {
		t.Errorf("%d contents left in blob.data after every release", n)
	}
}

// randomish is n bytes that look random to s2, different for each seed.
func randomish(n int, seed byte) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		sum := sha256.Sum256([]byte{seed, byte(i), byte(i >> 8), byte(i >> 16)})
		b = append(b, sum[:]...)
	}
	return b[:n]
}

// TestLargeBlobsKeptInChunks: a large content, packed or not, is kept in
// chunks that read back whole; storing another large content writes
// about its own size, not the earlier contents again (they used to share
// a leaf that each commit rewrote); a missing chunk is reported, never
// handed out as a shorter file; the last release deletes every chunk.
func TestLargeBlobsKeptInChunks(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	var text []byte // packs, and stays above chunkFrom packed
	for i := 0; len(text) < 60000; i++ {
		text = fmt.Appendf(text, "line %d: job %x stuck at page %d\r\n", i, sha256.Sum256([]byte{byte(i), byte(i >> 8)}), i*7)
	}
	files := [][]byte{randomish(200<<10, 1), randomish(200<<10, 2), randomish(200<<10, 3), text}
	hashes := make([]string, len(files))
	written := make([]int64, len(files))
	for i, f := range files {
		st := d.db.Stats()
		before := st.TxStats.GetPageAlloc()
		if err := d.UpdateNow(bg, func(st store.Tx) error {
			var err error
			hashes[i], err = st.PutBlob(f)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		st = d.db.Stats()
		written[i] = st.TxStats.GetPageAlloc() - before
	}
	for i := 1; i < 3; i++ {
		if written[i] > int64(len(files[i]))*5/4 {
			t.Errorf("storing file %d (%d bytes) wrote %d bytes of pages, want about its size", i, len(files[i]), written[i])
		}
	}
	chunks := map[int]int{} // key length → keys
	eachEntry(d, bucketBlobData, func(k, v []byte) {
		chunks[len(k)]++
		if len(v) > blobChunk {
			t.Errorf("blob.data %x: %d bytes, more than a chunk", k, len(v))
		}
	})
	if want := 3*((200<<10+blobChunk-1)/blobChunk) + 1; chunks[13] < want || len(chunks) != 1 {
		t.Errorf("blob.data keys by length: %v, want only chunks (13 bytes), at least %d", chunks, want)
	}
	d.View(bg, func(st store.Tx) error {
		for i, h := range hashes {
			if got, err := st.Blob(h); err != nil || !bytes.Equal(got, files[i]) {
				t.Errorf("Blob(file %d): %d bytes, %v; want the %d stored", i, len(got), err, len(files[i]))
			}
		}
		return nil
	})
	expectClean(t, d, "with chunked blobs")

	// A chunk goes missing from the middle of the first file, and the
	// last chunk of the second.
	d.db.Update(func(btx *bolt.Tx) error {
		for i, h := range hashes[:2] {
			r, _ := decodeBlobRef(btx.Bucket(bucketBlobRefs).Get([]byte(h)))
			at := chunkKey(r.at, 5)
			if i == 1 {
				at = chunkKey(r.at, (r.size-1)/blobChunk)
			}
			if err := btx.Bucket(bucketBlobData).Delete(at); err != nil {
				return err
			}
		}
		return nil
	})
	d.View(bg, func(st store.Tx) error {
		for _, h := range hashes[:2] {
			if got, err := st.Blob(h); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("a blob with a chunk missing: %d bytes, %v; want not found", len(got), err)
			}
		}
		return nil
	})
	if problems, _ := d.Check(bg); len(problems) < 2 {
		t.Errorf("check found %q, want both blobs with a chunk missing", problems)
	}

	for _, h := range hashes {
		if err := d.UpdateNow(bg, func(st store.Tx) error { return st.(*tx).releaseBlob(h) }); err != nil {
			t.Fatal(err)
		}
	}
	if n := keysIn(d, bucketBlobData); n != 0 {
		t.Errorf("%d chunks left in blob.data after every release", n)
	}
}

// TestRawCopiesCountedInStoringOrder: ten raw mails stored in one commit
// are counted next to each other, so the commit writes pages for one
// place in blobrefs instead of ten; the same ten stored as PutBlob
// (counted under their hashes, among 20,000 others) write a page each.
// Both read back, and the database checks whole.
func TestRawCopiesCountedInStoringOrder(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "t.db"))
	defer d.Close()
	for start := 0; start < 20000; start += 5000 {
		err := d.UpdateNow(bg, func(st store.Tx) error {
			for i := start; i < start+5000; i++ {
				if _, err := st.PutBlob(fmt.Appendf(nil, "logo %d", i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	mail := func(kind string, i int) []byte {
		return fmt.Appendf(nil, "From: ann%d@x\r\nSubject: %s %d\r\n\r\n%s", i, kind, i, randomish(1500, byte(i)))
	}
	// store10 puts ten mails in one commit and returns their ids and the
	// bytes of pages the commit wrote.
	store10 := func(kind string, put func(store.Tx, []byte) (string, error)) (ids []string, written int64) {
		t.Helper()
		stats := d.db.Stats()
		before := stats.TxStats.GetPageAlloc()
		err := d.UpdateNow(bg, func(st store.Tx) error {
			ids = ids[:0]
			for i := range 10 {
				id, err := put(st, mail(kind, i))
				if err != nil {
					return err
				}
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stats = d.db.Stats()
		return ids, stats.TxStats.GetPageAlloc() - before
	}
	hashed, byHash := store10("hashed", store.Tx.PutBlob)
	raw, byNumber := store10("raw", store.Tx.PutRawBlob)
	if page := int64(d.db.Info().PageSize); byNumber > byHash-5*page {
		t.Errorf("ten raw mails wrote %d bytes of pages, ten counted by hash %d; want at least five pages fewer", byNumber, byHash)
	}
	t.Logf("pages written for ten mails: %d bytes counted by number, %d by hash", byNumber, byHash)
	if !slices.IsSorted(raw) || len(slices.Compact(slices.Clone(raw))) != 10 {
		t.Errorf("raw mail ids %v, want ten, in the order stored", raw)
	}
	d.View(bg, func(st store.Tx) error {
		for i := range 10 {
			for kind, id := range map[string]string{"hashed": hashed[i], "raw": raw[i]} {
				if got, err := st.Blob(id); err != nil || !bytes.Equal(got, mail(kind, i)) {
					t.Errorf("Blob(%s) of %s mail %d: %d bytes, %v", id, kind, i, len(got), err)
				}
			}
		}
		return nil
	})
	expectClean(t, d, "with raw mails counted by number")
}
