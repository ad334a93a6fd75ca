package rules

import (
	"testing"
	"time"
)

func TestRetentionDue(t *testing.T) {
	closed := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	before, after := closed.Add(-time.Hour), closed.Add(time.Hour)
	r := Retention{After: 30 * 24 * time.Hour}
	for _, c := range []struct {
		name    string
		r       Retention
		st      Status
		closed  *time.Time
		deleted *time.Time
		want    time.Time
	}{
		{"off", Retention{}, StatusClosed, &closed, nil, time.Time{}},
		{"closed", r, StatusClosed, &closed, nil, closed.Add(30 * 24 * time.Hour)},
		{"open again", r, StatusOpen, &closed, nil, time.Time{}},
		{"resolved", r, StatusResolved, nil, nil, time.Time{}},
		{"deleted already", r, StatusClosed, &closed, &after, time.Time{}},
		{"closed again after a deletion", r, StatusClosed, &closed, &before, closed.Add(30 * 24 * time.Hour)},
	} {
		if got := c.r.Due(c.st, c.closed, c.deleted); !got.Equal(c.want) {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}
