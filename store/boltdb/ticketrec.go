package boltdb

import (
	"time"

	"ticketgate/rules"
	"ticketgate/store"
	"ticketgate/store/binrec"
)

// ticketRecV1 begins a ticket record in encodeTicket's binary form. A
// record written before it is JSON, and begins with '{'.
const ticketRecV1 = 1

// encodeTicket is tk as the tickets bucket keeps it (its messages and
// events are kept apart, and not written): the version byte, then its
// fields in their declared order as binrec writes them, an optional time
// or part as a flag and its fields, durations as varints. A ticket's
// record is written by every change to it and read by every message on
// it; JSON was 2% of the gateway's CPU.
func encodeTicket(tk *store.Ticket) []byte {
	b := make([]byte, 0, 384+len(tk.Subject))
	b = append(b, ticketRecV1)
	b = binrec.AppendStrings(b, tk.ID, tk.Subject, string(tk.Status), string(tk.Priority), tk.Queue, tk.Route,
		tk.Category, tk.Plan, tk.Requester, tk.RequesterName)
	b = binrec.AppendListOrNil(b, tk.CC)
	b = binrec.AppendStrings(b, tk.Assignee)
	b = binrec.AppendBool(b, tk.Escalated)
	b = binrec.AppendListOrNil(b, tk.Watchers)
	b = binrec.AppendListOrNil(b, tk.Linked)
	b = binrec.AppendStrings(b, tk.MergedInto)
	b = binrec.AppendTimes(b, tk.CreatedAt, tk.UpdatedAt)
	b = appendOptTime(b, tk.ClosedAt)
	b = binrec.AppendStrings(b, tk.LastInID)
	b = binrec.AppendListOrNil(b, tk.Thread)
	b = appendClock(b, tk.Clock)
	b = appendSLA(b, tk.SLA)
	b = binrec.AppendBool(b, tk.Satisfaction != nil)
	if s := tk.Satisfaction; s != nil {
		b = binrec.AppendVarint(b, int64(s.Score))
		b = binrec.AppendStrings(b, s.Comment)
		b = binrec.AppendTimes(b, s.At)
	}
	b = binrec.AppendBool(b, tk.SurveySent)
	b = binrec.AppendVarint(b, int64(tk.Files))
	b = binrec.AppendVarint(b, tk.FileBytes)
	b = binrec.AppendTimes(b, tk.Due)
	return appendOptTime(b, tk.BodiesDeletedAt)
}

// decodeTicket reads a ticket record in either form: binary
// (encodeTicket) or the JSON of records written before it.
func decodeTicket(v []byte, tk *store.Ticket) error {
	d, err := readRecord(v, ticketRecV1, '{', tk)
	if d == nil {
		return err
	}
	tk.ID, tk.Subject = d.String(), d.String()
	tk.Status, tk.Priority = rules.Status(d.String()), rules.Priority(d.String())
	tk.Queue, tk.Route, tk.Category, tk.Plan = d.String(), d.String(), d.String(), d.String()
	tk.Requester, tk.RequesterName = d.String(), d.String()
	tk.CC = d.ListOrNil()
	tk.Assignee = d.String()
	tk.Escalated = d.Bool()
	tk.Watchers, tk.Linked = d.ListOrNil(), d.ListOrNil()
	tk.MergedInto = d.String()
	tk.CreatedAt, tk.UpdatedAt = d.Time(), d.Time()
	tk.ClosedAt = readOptTime(d)
	tk.LastInID = d.String()
	tk.Thread = d.ListOrNil()
	tk.Clock = readClock(d)
	tk.SLA = readSLA(d)
	if d.Bool() {
		tk.Satisfaction = &store.Satisfaction{Score: int(d.Varint()), Comment: d.String(), At: d.Time()}
	}
	tk.SurveySent = d.Bool()
	tk.Files = int(d.Varint())
	tk.FileBytes = d.Varint()
	tk.Due = d.Time()
	tk.BodiesDeletedAt = readOptTime(d)
	return d.Err()
}

// appendOptTime appends whether t is set, then *t.
func appendOptTime(b []byte, t *time.Time) []byte {
	b = binrec.AppendBool(b, t != nil)
	if t != nil {
		b = binrec.AppendTimes(b, *t)
	}
	return b
}

func readOptTime(d *binrec.Reader) *time.Time {
	if !d.Bool() {
		return nil
	}
	t := d.Time()
	return &t
}

func appendClock(b []byte, c rules.Clock) []byte {
	b = binrec.AppendStrings(b, string(c.Status))
	b = binrec.AppendTimes(b, c.AwaitingSince)
	b = binrec.AppendBool(b, c.Reminded)
	return binrec.AppendTimes(b, c.ResolvedAt)
}

func readClock(d *binrec.Reader) rules.Clock {
	return rules.Clock{Status: rules.Status(d.String()), AwaitingSince: d.Time(), Reminded: d.Bool(), ResolvedAt: d.Time()}
}

func appendSLA(b []byte, s *rules.SLA) []byte {
	b = binrec.AppendBool(b, s != nil)
	if s == nil {
		return b
	}
	b = binrec.AppendTimes(b, s.FirstResponseDue, s.ResolutionDue)
	b = appendOptTime(b, s.FirstResponseAt)
	b = binrec.AppendListOrNil(b, s.Breached)
	b = binrec.AppendListOrNil(b, s.Warned)
	b = binrec.AppendTimes(b, s.CreatedAt)
	b = binrec.AppendStrings(b, string(s.Priority), s.Plan)
	b = binrec.AppendTimes(b, s.PausedAt)
	b = binrec.AppendVarint(b, int64(s.PausedFor))
	b = binrec.AppendVarint(b, int64(s.PausedBusiness))
	b = binrec.AppendTimes(b, s.ResolvedAt)
	b = binrec.AppendStrings(b, s.Calendar)
	b = binrec.AppendBool(b, s.Escalation != nil)
	if e := s.Escalation; e != nil {
		b = binrec.AppendVarint(b, int64(e.Level))
		b = binrec.AppendTimes(b, e.At, e.FirstResponseDue)
		b = appendOptTime(b, e.FirstResponseAt)
		b = binrec.AppendTimes(b, e.ResolutionDue)
		b = binrec.AppendListOrNil(b, e.Breached)
		b = binrec.AppendListOrNil(b, e.Warned)
	}
	return binrec.AppendTimes(b, s.PublicAt, s.FollowedAt)
}

func readSLA(d *binrec.Reader) *rules.SLA {
	if !d.Bool() {
		return nil
	}
	s := &rules.SLA{}
	s.FirstResponseDue, s.ResolutionDue = d.Time(), d.Time()
	s.FirstResponseAt = readOptTime(d)
	s.Breached, s.Warned = d.ListOrNil(), d.ListOrNil()
	s.CreatedAt = d.Time()
	s.Priority, s.Plan = rules.Priority(d.String()), d.String()
	s.PausedAt = d.Time()
	s.PausedFor, s.PausedBusiness = time.Duration(d.Varint()), time.Duration(d.Varint())
	s.ResolvedAt = d.Time()
	s.Calendar = d.String()
	if d.Bool() {
		e := &rules.Escalation{Level: int(d.Varint())}
		e.At, e.FirstResponseDue = d.Time(), d.Time()
		e.FirstResponseAt = readOptTime(d)
		e.ResolutionDue = d.Time()
		e.Breached, e.Warned = d.ListOrNil(), d.ListOrNil()
		s.Escalation = e
	}
	s.PublicAt, s.FollowedAt = d.Time(), d.Time()
	return s
}
