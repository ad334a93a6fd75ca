// Package desk is the ticket desk: it takes the mail mailin brings in
// (customer mail, agents' replies, notes and commands), operators' actions
// and the lifecycle sweep, has rules decide what each means for its
// ticket, and commits the change with the mail it asks for (composed by
// mailout) in one store transaction.
package desk
