package rules

// EventType names an entry in a ticket's activity log. The values are the
// "type" of the events in the ticket JSON, a public contract: add new ones,
// never rename.
type EventType string

// The event types, grouped by what writes them.
const (
	// A message arrived or was kept.
	EventCreated             EventType = "created"               // the ticket was opened
	EventMessage             EventType = "message"               // a message joined the ticket
	EventLinked              EventType = "linked"                // a related ticket was linked
	EventRedacted            EventType = "redacted"              // card or social security numbers removed
	EventAttachmentsRefused  EventType = "attachments_refused"   // files over the limits were not kept
	EventSecurity            EventType = "security"              // a forged or unverifiable claim was refused
	EventSatisfaction        EventType = "satisfaction"          // the customer rated the ticket
	EventAutoReply           EventType = "auto_reply"            // the confirmation was queued
	EventAutoReplySuppressed EventType = "auto_reply_suppressed" // no confirmation, and why
	EventMailSuppressed      EventType = "mail_suppressed"       // automatic mail held back, and why
	EventNotified            EventType = "notified"              // agents were told of a message
	EventParticipantsLimited EventType = "participants_limited"  // To/Cc past max_participants left out

	// The state machine and the changes people make.
	EventStatus          EventType = "status"           // status changed: "from → to (why)"
	EventReopened        EventType = "reopened"         // a closed ticket opened again
	EventPriority        EventType = "priority"         // priority changed
	EventCategory        EventType = "category"         // category set from a subject tag
	EventAssigned        EventType = "assigned"         // an agent took the ticket
	EventUnassigned      EventType = "unassigned"       // nobody owns the ticket any more
	EventCc              EventType = "cc"               // a participant was added or removed
	EventNote            EventType = "note"             // an internal note
	EventReply           EventType = "reply"            // an agent's reply was queued to the customer
	EventReplyHeld       EventType = "reply_held"       // another agent's reply kept as a note (ownership)
	EventNotice          EventType = "notice"           // the customer was told of a status change
	EventCommandsRefused EventType = "commands_refused" // an agent's mail was refused whole
	EventMerged          EventType = "merged"           // one ticket was merged into another

	// Escalation.
	EventEscalated           EventType = "escalated"            // moved up, managers watching
	EventEscalationRequested EventType = "escalation_requested" // asked again after escalation
	EventEscalationAck       EventType = "escalation_ack"       // the customer was told

	// The sweep and the outbox.
	EventReminderSent     EventType = "reminder_sent"     // the customer was reminded
	EventSurveySent       EventType = "survey_sent"       // the satisfaction survey was queued
	EventSLABreach        EventType = "sla_breach"        // an SLA target passed
	EventSLAWarning       EventType = "sla_warning"       // an SLA target is near
	EventCriticalReminder EventType = "critical_reminder" // a critical ticket went without a public update
	EventDeliveryFailed   EventType = "delivery_failed"   // mail could not be delivered
	EventRelayTLSFailed   EventType = "relay_tls_failed"  // the relay's TLS failed; mail waits

	// Data protection: an operator's erasure (its actor is who asked) and
	// the sweep's retention.
	EventErased        EventType = "erased"         // a customer's personal data was erased (forget)
	EventBodiesDeleted EventType = "bodies_deleted" // retention deleted the messages' bodies and files
)

// EventTypes lists every event type, for documentation and tests.
var EventTypes = []EventType{
	EventCreated, EventMessage, EventLinked, EventRedacted, EventAttachmentsRefused, EventSecurity,
	EventSatisfaction, EventAutoReply, EventAutoReplySuppressed, EventMailSuppressed, EventNotified, EventParticipantsLimited,
	EventStatus, EventReopened, EventPriority, EventCategory, EventAssigned, EventUnassigned, EventCc,
	EventNote, EventReply, EventReplyHeld, EventNotice, EventCommandsRefused, EventMerged,
	EventEscalated, EventEscalationRequested, EventEscalationAck,
	EventReminderSent, EventSurveySent, EventSLABreach, EventSLAWarning, EventCriticalReminder, EventDeliveryFailed,
	EventRelayTLSFailed,
	EventErased, EventBodiesDeleted,
}
