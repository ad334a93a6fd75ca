// Package storetest is the test suite every store backend passes: a new
// backend is done when Run is green against it. Each case opens a fresh,
// empty store.
package storetest

import (
	"context"
	"testing"

	"ticketgate/store"
)

// Backend tells the suite how to get stores.
type Backend struct {
	// Open returns a new, empty store; the suite closes it (or hands it
	// to Reopen).
	Open func(t *testing.T) store.Store
	// Reopen closes s and opens the same database again, as a restarted
	// process would. Nil skips the durability cases.
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the suite against the backend open creates; reopen (nil to skip
// those cases) closes a store and opens its database again.
func Run(t *testing.T, open func(t *testing.T) store.Store, reopen func(t *testing.T, s store.Store) store.Store) {
	RunBackend(t, Backend{Open: open, Reopen: reopen})
}

// RunBackend runs the suite against b.
func RunBackend(t *testing.T, b Backend) {
	cases := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"CommittedTicketSurvivesReopen", testCommittedTicketSurvivesReopen},
		{"TicketRecordAndFull", testTicketRecordAndFull},
		{"PutTicketKeepsStatusIndex", testPutTicketKeepsStatusIndex},
		{"DueIndexFollowsEveryTicketChange", testDueIndexFollowsEveryTicketChange},
		{"DueIsIndexedAsGiven", testDueIsIndexedAsGiven},
		{"TicketsNewestFirstInPages", testTicketsNewestFirstInPages},
		{"TicketsPagedByStatus", testTicketsPagedByStatus},
		{"TicketIDsNeverCollide", testTicketIDsNeverCollide},
		{"LookupsOfStrayBytesFindNothing", testLookupsOfStrayBytesFindNothing},
		{"TicketsOfAddress", testTicketsOfAddress},
		{"ViewsListTheirTickets", testViewsListTheirTickets},
		{"FiltersCombine", testFiltersCombine},
		{"SearchFindsWords", testSearchFindsWords},
		{"SortOrders", testSortOrders},
		{"ViewPagesEachTicketOnce", testViewPagesEachTicketOnce},
		{"MessagesKeepEveryField", testMessagesKeepEveryField},
		{"MessageByIDReturnsTheStoredMessage", testMessageByIDReturnsTheStoredMessage},
		{"MessageIDIndex", testMessageIDIndex},
		{"MessageIDOfNothing", testMessageIDOfNothing},
		{"MergeRedirect", testMergeRedirect},
		{"EventsInOrder", testEventsInOrder},
		{"Blobs", testBlobs},
		{"RawBlobs", testRawBlobs},
		{"ReplaceMessagesErases", testReplaceMessagesErases},
		{"ReplaceMessagesSharingWords", testReplaceMessagesSharingWords},
		{"ReplaceEventsAndEraseAddress", testReplaceEventsAndEraseAddress},
		{"OutboxKeepsMailUntilDequeued", testOutboxKeepsMailUntilDequeued},
		{"OutboxDueOnly", testOutboxDueOnly},
		{"OutboxRequeueKeepsMail", testOutboxRequeueKeepsMail},
		{"OutboxKeepsDoneRecipients", testOutboxKeepsDoneRecipients},
		{"OutboxKeepsCarriedMessage", testOutboxKeepsCarriedMessage},
		{"OutboxQueueDueInOrder", testOutboxQueueDueInOrder},
		{"OutboxQueueLimitTakesHeads", testOutboxQueueLimitTakesHeads},
		{"OutboxReservedID", testOutboxReservedID},
		{"OutboxClaims", testOutboxClaims},
		{"OutboxClaimsConcurrent", testOutboxClaimsConcurrent},
		{"SentMap", testSentMap},
		{"TicketMail", testTicketMail},
		{"CheckpointNeverMovesBack", testCheckpointNeverMovesBack},
		{"RateCounters", testRateCounters},
		{"RatesListedInPages", testRatesListedInPages},
		{"Leases", testLeases},
		{"LeasesConcurrent", testLeasesConcurrent},
		{"PollTriesSurviveReopen", testPollTriesSurviveReopen},
		{"Instances", testInstances},
		{"Bouncing", testBouncing},
		{"DryRunLeavesNothing", testDryRunLeavesNothing},
		{"FailedUpdateLeavesNothing", testFailedUpdateLeavesNothing},
		{"ConcurrentUpdatesAllCommitted", testConcurrentUpdatesAllCommitted},
		{"UpdateSoon", testUpdateSoon},
		{"ReopenKeepsEverything", testReopenKeepsEverything},
		{"DoneContext", testDoneContext},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, b) })
	}
}

var bg = context.Background()

// openT opens a store closed when the test ends (unless reopened).
func (b Backend) openT(t *testing.T) *handle {
	t.Helper()
	h := &handle{s: b.Open(t)}
	t.Cleanup(func() { h.s.Close() })
	return h
}

// handle follows a store across reopens.
type handle struct{ s store.Store }

func (b Backend) reopen(t *testing.T, h *handle) {
	t.Helper()
	if b.Reopen == nil {
		t.Skip("backend has no reopen")
	}
	h.s = b.Reopen(t, h.s)
}

func update(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.UpdateNow(bg, fn); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, s store.Store, fn func(tx store.Tx) error) {
	t.Helper()
	if err := s.View(bg, fn); err != nil {
		t.Fatal(err)
	}
}
