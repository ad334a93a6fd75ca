package boltdb

import (
	"bytes"
	"errors"
	"path/filepath"
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
	d.db.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketBlobData).ForEach(func(k, v []byte) error {
			keys = append(keys, clone(k))
			return nil
		})
	})
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
