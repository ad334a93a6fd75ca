package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"ticketgate/desk"
	"ticketgate/desk/view"
	"ticketgate/rules"
	"ticketgate/store"
)

// agentSetup loads the agent key and wires agents and plans into the pipeline.
func (a *app) agentSetup() error {
	cfg := a.cfg
	if err := validateAgents(cfg); err != nil {
		return err
	}
	plans, err := buildPlans(cfg.Plans)
	if err != nil {
		return err
	}
	keys, err := loadAgentKeys(cfg, a.key)
	if err != nil {
		return err
	}
	agents := cfg.AgentsConf.ApplyAuth(cfg.Agents)
	for i := range agents {
		agents[i].Email = strings.ToLower(strings.TrimSpace(agents[i].Email))
	}
	a.pipeline.Agents = agents
	a.pipeline.Plans = plans
	a.pipeline.Signer = rules.Signer{Keys: keys}
	types, err := requestTypes(cfg.RequestTypes)
	if err != nil {
		return err
	}
	a.pipeline.RequestTypes = types
	return nil
}

// requestTypes checks [[request_type]] (each needs tags; a priority must be
// one; a name is listed once, a tag names one type) and merges it with the
// shipped types: a configured type replaces the shipped one of the same
// name, the others are added after them.
func requestTypes(list []rules.RequestType) ([]rules.RequestType, error) {
	var errs []string
	for i, rt := range list {
		if len(rt.Tags) == 0 {
			errs = append(errs, fmt.Sprintf("request_type[%d] (%s) needs tags = [\"Feature Request\", ...]", i, rt.Name))
		}
		if _, ok := rules.ParsePriority(string(rt.Priority)); rt.Priority != "" && !ok {
			errs = append(errs, fmt.Sprintf("request_type[%d] (%s) priority %q must be low, medium, high or critical", i, rt.Name, rt.Priority))
		}
		// The second would replace the first, tags and all.
		if slices.ContainsFunc(list[:i], func(d rules.RequestType) bool { return strings.EqualFold(d.Name, rt.Name) }) {
			errs = append(errs, fmt.Sprintf("request_type[%d] %q is listed twice", i, rt.Name))
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	out := rules.DefaultRequestTypes()
	for _, rt := range list {
		if i := slices.IndexFunc(out, func(d rules.RequestType) bool { return strings.EqualFold(d.Name, rt.Name) }); i >= 0 {
			out[i] = rt
		} else {
			out = append(out, rt)
		}
	}
	// A subject tag names the first type that has it: a later type with
	// the same tag would never be named by it.
	for i, rt := range list {
		for _, tag := range rt.Tags {
			if first, _ := rules.TypeOfTag(out, tag); !strings.EqualFold(first.Name, rt.Name) {
				errs = append(errs, fmt.Sprintf("request_type[%d] (%s) tag %q is already request type %q's: give one of them another tag, or name this one %q to replace that one",
					i, rt.Name, tag, first.Name, first.Name))
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// validateAgents checks [[agent]] and [agents] with errors that name the entry.
func validateAgents(cfg *Config) error {
	var errs []string
	bad := func(f string, a ...any) { errs = append(errs, fmt.Sprintf(f, a...)) }
	if to := strings.ToLower(strings.TrimSpace(cfg.AgentsConf.TakeOver)); to != "" && to != "managers" && to != "agents" {
		bad("agents.takeover %q must be \"managers\" or \"agents\"", cfg.AgentsConf.TakeOver)
	}
	queues := map[string]bool{}
	for _, r := range cfg.Routes {
		if r.Queue != "" {
			queues[strings.ToLower(r.Queue)] = true
		}
	}
	seen := map[string]bool{}
	for i, ag := range cfg.Agents {
		addr := strings.ToLower(strings.TrimSpace(ag.Email))
		if at := strings.LastIndexByte(addr, '@'); at <= 0 || at == len(addr)-1 || strings.ContainsAny(addr, " <>,") {
			bad("agent[%d].email %q must be a plain address like ana@example.com", i, ag.Email)
		}
		if seen[addr] {
			bad("agent %s is listed twice", addr)
		}
		seen[addr] = true
		for _, r := range cfg.Routes {
			if strings.EqualFold(r.Address, addr) {
				bad("agent[%d].email %s is a routing address", i, addr)
			}
		}
		for _, q := range ag.Queues {
			if !queues[strings.ToLower(q)] {
				bad("agent[%d] (%s) lists queue %q, which no [[route]] has", i, addr, q)
			}
		}
	}
	if cfg.AgentsConf.RequireAuth && strings.TrimSpace(cfg.AgentsConf.TrustedAuthservID) == "" {
		bad("agents.require_auth needs agents.trusted_authserv_id (the authserv-id your MX writes in Authentication-Results)")
	}
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// buildPlans turns [[plan]] into rules plans.
func buildPlans(list []PlanConfig) ([]rules.Plan, error) {
	var out []rules.Plan
	var errs []string
	for i, pc := range list {
		if strings.TrimSpace(pc.Name) == "" {
			errs = append(errs, fmt.Sprintf("plan[%d] needs a name", i))
		}
		if len(pc.Match) == 0 {
			errs = append(errs, fmt.Sprintf("plan[%d] (%s) needs match = [\"@example.com\", \"vip@example.org\"]", i, pc.Name))
		}
		for _, m := range pc.Match {
			if !strings.Contains(m, "@") {
				errs = append(errs, fmt.Sprintf("plan[%d] (%s) match %q must be \"@domain\" or an address", i, pc.Name, m))
			}
		}
		mp, ok := rules.ParsePriority(strings.ToLower(pc.MaxPriority))
		if pc.MaxPriority == "" {
			mp, ok = rules.PriorityHigh, true
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("plan[%d] (%s) max_priority %q must be low, medium, high or critical", i, pc.Name, pc.MaxPriority))
		}
		out = append(out, rules.Plan{Name: pc.Name, Match: pc.Match, MaxPriority: mp})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return out, nil
}

// agentKeyFile is where the signing key lives: [agents] secret_file, or
// agent.key next to the database.
func agentKeyFile(cfg *Config) string {
	if f := cfg.AgentsConf.SecretFile; f != "" {
		return f
	}
	return filepath.Join(filepath.Dir(cfg.Store.Path), "agent.key")
}

// loadAgentKeys reads the current key with load (loadOrCreateKey
// generates it, 0600, when missing), and the previous key kept for a
// grace period after a rotation.
func loadAgentKeys(cfg *Config, load func(string) ([]byte, error)) ([][]byte, error) {
	cur, err := load(agentKeyFile(cfg))
	if err != nil {
		return nil, fmt.Errorf("agents.secret_file: %w", err)
	}
	keys := [][]byte{cur}
	if f := cfg.AgentsConf.PreviousSecretFile; f != "" {
		prev, err := readKey(f)
		if err != nil {
			return nil, fmt.Errorf("agents.previous_secret_file: %w", err)
		}
		keys = append(keys, prev)
	}
	return keys, nil
}

// runAction is "ticketgate assign|status|priority|note -config F HS-123456 ...".
func runAction(name string) func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	return func(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
		fs, cfgPath := flags(name)
		as := fs.String("as", "operator", "who acts (recorded on the ticket); an agent address for \"assign me\"")
		asJSON := fs.Bool("json", false, "print the ticket as JSON")
		// note takes its text as any number of words, or from stdin.
		min, max := 2, 2
		if name == "note" {
			min, max = 1, -1
		}
		if err := parseFlags(fs, args, min, max); err != nil {
			return err
		}
		rest := fs.Args()
		act := desk.Action{Name: name, Actor: *as}
		// A text too long is refused whole, as serve refuses it, never
		// stored cut short.
		tooLong := &exitError{code: exDataErr, err: fmt.Errorf("%s: the text is over %d bytes", name, maxActionValue)}
		if len(rest) > 1 {
			act.Value = strings.Join(rest[1:], " ")
		} else {
			// "ticketgate note HS-1 < text": the note from stdin.
			b, err := io.ReadAll(io.LimitReader(stdin, maxActionValue+1))
			if err != nil {
				return &exitError{code: exTempFail, err: fmt.Errorf("read note: %w", err)}
			}
			if len(b) > maxActionValue {
				return tooLong
			}
			act.Value = strings.TrimSpace(string(b))
		}
		if len(act.Value) > maxActionValue {
			return tooLong
		}
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return &exitError{code: exConfig, err: err}
		}
		id := strings.ToUpper(rest[0])
		var res view.ActionResult
		err = withStore(cfg, newLogger(os.Stderr), writes,
			func(a *app) error {
				r, err := a.pipeline.Act(ctx, id, act)
				if err == nil {
					res = view.NewActionResult(r.Ticket, r.Events)
				}
				return err
			},
			func(c *adminClient) error {
				body, _ := json.Marshal(act)
				return c.do(ctx, "POST", "/api/tickets/"+id+"/actions", nil, body, &res)
			})
		if err != nil {
			return actionExit(id, err)
		}
		return printAction(stdout, res, *asJSON)
	}
}

// actionExit maps errors to exit codes: 1 unknown ticket, 65 a refused or
// malformed action, 75 and others as they come.
func actionExit(id string, err error) error {
	var ae *apiError
	switch {
	case errors.Is(err, store.ErrNotFound), errors.As(err, &ae) && ae.Status == http.StatusNotFound:
		return &exitError{code: 1, err: fmt.Errorf("no ticket %s", id)}
	case errors.Is(err, desk.ErrBadAction), errors.As(err, &ae) && ae.Status == http.StatusUnprocessableEntity:
		return &exitError{code: exDataErr, err: err}
	}
	return err
}

func printAction(w io.Writer, res view.ActionResult, asJSON bool) error {
	if asJSON {
		return view.Encode(w, res.Ticket)
	}
	t := res.Ticket
	if len(res.Events) == 0 {
		fmt.Fprintf(w, "%s unchanged\n", t.ID)
	}
	for _, e := range res.Events {
		fmt.Fprintf(w, "%s %s: %s\n", t.ID, e.Type, safeText(e.Detail))
	}
	fmt.Fprintf(w, "%s status %s · priority %s · assignee %s\n", t.ID, t.Status, t.Priority, dash(t.Assignee))
	return nil
}

// maxActionValue is the longest value (a note's text) an operator action
// takes, from the command line and the admin API alike.
const maxActionValue = 1 << 20

// maxActionBody bounds an action's JSON body: room for a value of
// maxActionValue bytes each escaped as \u00XX, so that the limit is the
// value's and not its encoding's.
const maxActionBody = 6*maxActionValue + 64<<10

// handleAction is POST /api/tickets/{id}/actions, the handover for runAction.
func (a *app) handleAction(w http.ResponseWriter, r *http.Request) {
	var act desk.Action
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(&act)
	if err == nil {
		err = endOfBody(dec)
	}
	if err != nil {
		badJSONBody(w, err, `{"action":..., "value":..., "actor":...}`)
		return
	}
	if len(act.Value) > maxActionValue {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("value over %d bytes", maxActionValue))
		return
	}
	// The token is the operator's: an action names an agent only as the
	// CLI's -as does, and the events say whose token it came with.
	act.Actor, act.Via = apiActor(act.Actor)
	res, err := a.pipeline.Act(r.Context(), r.PathValue("id"), act)
	writeActionResult(w, res, err)
}

// apiActor is who an operator action through the admin API is by, and the
// words saying how it came: the token's principal when the request names
// nobody, else the one it names, acting with the principal's token.
func apiActor(actor string) (who, via string) {
	switch strings.ToLower(strings.TrimSpace(actor)) {
	case "":
		return adminPrincipal, "the admin API"
	case adminPrincipal:
		return actor, "the admin API"
	}
	return actor, "the admin API with the " + adminPrincipal + "'s token"
}

// writeActionResult answers an operator action through the admin API:
// res as JSON, or err as its status (400 no address, 404 no ticket, 422
// an action the desk refuses, 503 anything else).
func writeActionResult(w http.ResponseWriter, res any, err error) {
	switch {
	case errors.Is(err, desk.ErrNotAddress):
		httpError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotFound):
		httpError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, desk.ErrBadAction):
		httpError(w, http.StatusUnprocessableEntity, err.Error())
	case err != nil:
		httpError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, res)
	}
}
