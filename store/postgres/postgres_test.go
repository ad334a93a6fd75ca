package postgres

import (
	"context"
	"testing"

	"ticketgate/store"
	"ticketgate/store/postgres/pgtest"
	"ticketgate/store/storetest"
)

var bg = context.Background()

func openTest(t testing.TB, dsn string) *DB {
	t.Helper()
	d, err := Open(bg, dsn, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSuite(t *testing.T) {
	c := pgtest.Start(t)
	dsns := map[store.Store]string{}
	storetest.Run(t,
		func(t *testing.T) store.Store {
			dsn := c.NewDatabase(t)
			d := openTest(t, dsn)
			dsns[d] = dsn
			return d
		},
		func(t *testing.T, s store.Store) store.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			d := openTest(t, dsns[s])
			dsns[d] = dsns[s]
			return d
		})
}
