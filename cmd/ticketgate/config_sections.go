package main

// PlanConfig is one [[plan]]: customers matched by address or @domain and
// the highest priority they may ask for.
type PlanConfig struct {
	Name        string   `toml:"name"`
	Match       []string `toml:"match"`
	MaxPriority string   `toml:"max_priority"`
}

// LifecycleConfig is the [lifecycle] section: the awaiting-customer clock
// and the scheduler.
type LifecycleConfig struct {
	Schedule           string `toml:"schedule"`             // cron spec, default "@every 5m"
	RemindAfter        string `toml:"remind_after"`         // default 72h
	WaitingAfter       string `toml:"waiting_after"`        // default 168h
	CloseAfter         string `toml:"close_after"`          // default 336h
	ResolvedCloseAfter string `toml:"resolved_close_after"` // default 168h
}

// SLAConfig is the [sla] section.
type SLAConfig struct {
	WarnBefore string `toml:"warn_before"` // "" = no warning
	// CriticalUpdateEvery is how long a critical ticket may go without a
	// public update before its people are reminded; "" is 3h, "0s" off.
	CriticalUpdateEvery string                                `toml:"critical_update_every"`
	Hours               BusinessHoursConfig                   `toml:"business_hours"`
	Targets             map[string]SLATargetConfig            `toml:"targets"` // by priority
	Plans               map[string]map[string]SLATargetConfig `toml:"plans"`   // plan → priority → target
}

// BusinessHoursConfig says when the desk works.
type BusinessHoursConfig struct {
	Days     []string `toml:"days"`     // e.g. ["mon","tue","wed","thu","fri"]
	Start    string   `toml:"start"`    // "09:00"
	End      string   `toml:"end"`      // "17:00"
	TimeZone string   `toml:"timezone"` // IANA name, e.g. "Europe/Berlin"
	Holidays []string `toml:"holidays"` // dates the desk is closed, "2026-12-25"
}

// QueueConfig is one [queues.NAME]: what a queue's tickets count in.
type QueueConfig struct {
	Calendar string `toml:"calendar"` // a [calendars.NAME]; "" = [sla.business_hours]
}

// EscalationConfig is the [escalation] section: level 2.
type EscalationConfig struct {
	Queue         string `toml:"queue"`          // queue escalated tickets move to; "" keeps theirs
	Calendar      string `toml:"calendar"`       // a [calendars.NAME]; "" = [sla.business_hours]
	FirstResponse string `toml:"first_response"` // level 2's targets, from the escalation; default 2h
	Resolution    string `toml:"resolution"`     // default 24h
	OnBreach      bool   `toml:"on_breach"`      // a level-1 SLA breach escalates the ticket
}

// SLATargetConfig is a pair of targets: "4h" calendar hours, "8bh"
// business hours, "5bd" business days.
type SLATargetConfig struct {
	FirstResponse string `toml:"first_response"`
	Resolution    string `toml:"resolution"`
}

// LimitsConfig is the [limits] section: loops, floods and attachments.
type LimitsConfig struct {
	AutoRepliesPerHour  int    `toml:"auto_replies_per_hour"` // per address, default 10
	AutoRepliesPerDay   int    `toml:"auto_replies_per_day"`  // per address, default 40
	InboundPerSender    int    `toml:"inbound_per_sender_per_hour"`
	InboundPerDomain    int    `toml:"inbound_per_domain_per_hour"`
	InboundPerTicket    int    `toml:"inbound_per_ticket_per_hour"`
	BounceHold          string `toml:"bounce_hold"` // default 1440h (60 days)
	MaxAttachments      int    `toml:"max_attachments"`
	MaxAttachmentBytes  int64  `toml:"max_attachment_bytes"`
	MaxAttachmentsTotal int64  `toml:"max_attachments_total_bytes"`
}

// RetentionConfig is the [retention] section: how long the bodies and
// attachments of closed tickets are kept.
type RetentionConfig struct {
	ClosedAfter string `toml:"closed_after"` // "" or "0s": kept for ever (default)
}
