package mailout

import (
	"errors"
	"slices"

	"github.com/emersion/go-smtp"
)

// split divides refused recipients into those refused for good (all of
// them once the message has waited too long) and those to retry.
func split(refused []RcptError, expired bool) (final, later []RcptError) {
	for _, r := range refused {
		if expired || rcptPermanent(r.Err) {
			final = append(final, r)
		} else {
			later = append(later, r)
		}
	}
	return final, later
}

// rcptPermanent reports whether err, the relay's refusal of a
// recipient, is for good: a 5xx answer but 552, which RFC 821 had relays
// give for "too many recipients" (and some give for a full mailbox) and
// RFC 5321 (4.5.3.1.10) has clients take as 452, for now.
func rcptPermanent(err error) bool {
	var se *smtp.SMTPError
	return Permanent(err) && !(errors.As(err, &se) && se.Code == 552)
}

// done returns prev plus the recipients of rcpts the relay took (those
// not in refused) and those in final, in rcpts' order after prev's.
func done(prev, rcpts []string, refused, final []RcptError) []string {
	out := slices.Clone(prev)
	in := func(l []RcptError, r string) bool {
		return slices.ContainsFunc(l, func(e RcptError) bool { return e.Rcpt == r })
	}
	for _, r := range rcpts {
		if !in(refused, r) && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	for _, e := range final {
		if !slices.Contains(out, e.Rcpt) {
			out = append(out, e.Rcpt)
		}
	}
	return out
}
