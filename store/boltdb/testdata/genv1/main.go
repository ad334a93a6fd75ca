// Command genv1 writes testdata/v1.db, a schema-1 database, with the store
// package as it was at commit 51f5005 (before store/boltdb existed):
//
//	git worktree add /tmp/v1 51f5005
//	cp -r store/boltdb/testdata/genv1 /tmp/v1/genv1 && cd /tmp/v1
//	go run ./genv1 /path/to/store/boltdb/testdata/v1.db
//
// It lives under testdata so the current tree does not build it. The
// migration test in store/boltdb checks every record written here.
package main

import (
	"log"
	"os"
	"time"

	"ticketgate/rules"
	"ticketgate/store"
)

func main() {
	path := os.Args[1]
	os.Remove(path)
	s, err := store.Open(path, store.Options{}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	err = s.UpdateNow(func(tx store.Tx) error {
		raw1 := []byte("From: ann@customer.example\r\nSubject: printer\r\n\r\nIt is on fire.\r\n> quoted <b>\r\n")
		h1, err := tx.PutBlob(raw1)
		if err != nil {
			return err
		}
		att, err := tx.PutBlob([]byte("%PDF-1.4 fake"))
		if err != nil {
			return err
		}
		closed := t0.Add(48 * time.Hour)
		tickets := []*store.Ticket{
			{ID: "HS-000001", Subject: "printer on fire", Status: rules.StatusOpen, Priority: rules.PriorityHigh,
				Queue: "support", Route: "support@example.com", Requester: "ann@customer.example", RequesterName: "Ann",
				CC: []string{"bob@customer.example"}, Assignee: "agent@example.com", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
				LastInID: "m1@customer.example", Thread: []string{"m1@customer.example", "r1@example.com"}, Due: t0.Add(4 * time.Hour)},
			{ID: "HS-000002", Subject: "invoice <copy> & more", Status: rules.StatusClosed, Priority: rules.PriorityLow,
				Queue: "billing", Route: "billing@example.com", Requester: "cy@customer.example", CC: []string{},
				CreatedAt: t0.Add(time.Hour), UpdatedAt: closed, ClosedAt: &closed,
				Satisfaction: &store.Satisfaction{Score: 5, Comment: "great > expected", At: closed}, SurveySent: true},
			{ID: "HS-000003", Subject: "waiting", Status: rules.StatusWaiting, Priority: rules.PriorityMedium,
				Route: "support@example.com", Requester: "dee@customer.example", CC: []string{}, CreatedAt: t0.Add(2 * time.Hour),
				UpdatedAt: t0.Add(2 * time.Hour), Due: t0.Add(72 * time.Hour)},
		}
		for _, t := range tickets {
			if err := tx.PutTicket(t); err != nil {
				return err
			}
		}
		msgs := []struct {
			id string
			m  store.Message
		}{
			{"HS-000001", store.Message{MessageID: "m1@customer.example", Direction: "in", Kind: "customer", From: "ann@customer.example",
				To: []string{"support@example.com"}, Cc: []string{"bob@customer.example"}, Subject: "printer",
				Text: "It is on fire.\n> quoted <b>", VisibleText: "It is on fire.", CreatedAt: t0, Raw: h1,
				Attachments: []store.Attachment{{Filename: "photo.pdf", ContentType: "application/pdf", Size: 13, SHA256: att}},
				Notes:       []string{"charset guessed"}}},
			{"HS-000001", store.Message{MessageID: "r1@example.com", Direction: "out", Kind: "agent", From: "support@example.com",
				To: []string{"ann@customer.example"}, Subject: "Re: printer", Text: "Unplug it.", VisibleText: "Unplug it.",
				CreatedAt: t0.Add(time.Hour), Attachments: []store.Attachment{}}},
			{"HS-000002", store.Message{MessageID: "m2@customer.example", Direction: "in", Kind: "customer", From: "cy@customer.example",
				To: []string{"billing@example.com"}, Subject: "invoice", Text: "Send a copy.", VisibleText: "Please, a copy",
				CreatedAt: t0.Add(time.Hour), Attachments: []store.Attachment{}}},
		}
		for _, m := range msgs {
			if err := tx.AddMessage(m.id, &m.m); err != nil {
				return err
			}
		}
		for _, e := range []struct {
			id string
			e  store.Event
		}{
			{"HS-000001", store.Event{At: t0, Type: "created", Detail: "from ann@customer.example"}},
			{"HS-000001", store.Event{At: t0.Add(time.Hour), Type: "reply", Detail: "agent replied", Actor: "agent@example.com"}},
			{"HS-000002", store.Event{At: closed, Type: "status", Detail: "open → closed"}},
		} {
			if err := tx.AddEvent(e.id, e.e); err != nil {
				return err
			}
		}
		if err := tx.Enqueue(&store.OutMail{TicketID: "HS-000001", Kind: "agent", From: "bounces+1@example.com",
			To: []string{"ann@customer.example"}, Raw: []byte("Subject: Re: printer\r\n\r\nUnplug it.\r\n"), Created: t0.Add(time.Hour)}); err != nil {
			return err
		}
		if err := tx.Enqueue(&store.OutMail{TicketID: "HS-000002", Kind: "auto", From: "bounces+2@example.com",
			To: []string{"cy@customer.example"}, Raw: []byte("Subject: survey\r\n\r\nHow did we do?\r\n"), Attempts: 2,
			NextAt: t0.Add(5 * time.Hour), Created: t0.Add(2 * time.Hour), LastErr: "451 try later"}); err != nil {
			return err
		}
		if err := tx.Sent(&store.OutMail{ID: 77, TicketID: "HS-000003", To: []string{"dee@customer.example"}}); err != nil {
			return err
		}
		if err := tx.PutCheckpoint(store.Checkpoint{Mailbox: "support", UIDValidity: 42, UID: 1234}); err != nil {
			return err
		}
		if err := tx.PutRateTimes("auto:ann@customer.example", []time.Time{t0, t0.Add(time.Minute)}); err != nil {
			return err
		}
		return tx.MarkBouncing("gone@customer.example", t0.Add(60*24*time.Hour))
	})
	if err != nil {
		log.Fatal(err)
	}
}
