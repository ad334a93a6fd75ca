package desk

import (
	"testing"

	"ticketgate/rules"
)

// TestCommandsFromAPhoneInAnotherLanguageMailNoCustomer: an agent sets a
// status from their phone, which adds its footer in the phone's language
// ("Verstuurd vanaf mijn iPhone"). A mail of commands and the footer is
// a mail of commands: the customer was mailed the footer alone.
func TestCommandsFromAPhoneInAnotherLanguageMailNoCustomer(t *testing.T) {
	for _, footer := range []string{
		"Verstuurd vanaf mijn iPhone",
		"iPhoneから送信",
		"Отправлено с iPhone",
		"Wysłane z iPhone'a",
		"发自我的iPhone",
	} {
		t.Run(footer, func(t *testing.T) {
			g := startDesk(t)
			tk := agOpen(t, g, "Printer on fire", "It is really on fire.")
			before := len(g.relay.Mails())
			agReply(g, "ana@example.com", agSigned(t, agKey, rules.TokenReply, tk.ID, "ana@example.com"), tk, "#status on_hold\n\n"+footer)
			if l := agMailsTo(g, before, "alice@customer.example"); len(l) != 0 {
				t.Errorf("the customer was mailed:\n%s", agBody(t, l[0].Data))
			}
			if tk = g.ticket(tk.ID); tk.Status != rules.StatusOnHold {
				t.Errorf("status %s", tk.Status)
			}
		})
	}
}
