package cases

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// State is where a case stands in the loop of docs/domain.md (GB/T 30428:
// collect, file, dispatch, handle, report back, verify and close).
type State string

// States of a case. Closed and Rejected are final; every other state is open.
const (
	Reported    State = "reported"    // 信息收集: raised, not yet filed
	Filed       State = "filed"       // 案卷建立: filed, waiting for dispatch
	Dispatched  State = "dispatched"  // 任务派遣: sent to the responsible unit
	Accepted    State = "accepted"    // the unit has reported in (报到)
	Handled     State = "handled"     // 处理反馈: the unit reports it handled
	Closed      State = "closed"      // 核查结案: verified and closed
	Rejected    State = "rejected"    // 不予立案: not a case
	Transferred State = "transferred" // 移送: handed to another unit, waiting for it to accept
	Deferred    State = "deferred"    // 缓办: handling postponed
)

// States lists every state.
var States = []State{Reported, Filed, Dispatched, Accepted, Handled, Closed, Rejected, Transferred, Deferred}

// Open reports whether a case in state s still needs work.
func (s State) Open() bool { return s != Closed && s != Rejected }

// Action is something done to a case: by a person through the API, or by
// the system (file, dispatch, resolve, overdue).
type Action string

// Actions. Those marked API are the action names of
// POST /api/v1/cases/{id}/{action}.
const (
	Report   Action = "report"    // a detector raised the violation
	File     Action = "file"      // the case is filed
	Dispatch Action = "dispatch"  // API: (re)dispatch to a unit, by the table or to the unit named
	Accept   Action = "accept"    // API: the unit accepts (报到)
	Handle   Action = "handle"    // API: the unit reports it handled
	Verify   Action = "verify"    // API: a verifier checks the work: pass closes, fail sends back (rework, 返工)
	SendBack Action = "send_back" // API: the unit returns the case to the dispatcher (not its responsibility)
	Transfer Action = "transfer"  // API: hand over to another unit (移送); restarts the accept deadline
	Defer    Action = "defer"     // API: postpone (缓办), optionally moving the close deadline; counts as an extension
	Reject   Action = "reject"    // API: not a case (不予立案)
	Reopen   Action = "reopen"    // API: reopen a closed case
	Comment  Action = "comment"   // API: a note; the state does not change
	Resolve  Action = "resolve"   // the data proves the fix: verification by data closes the case
	Overdue  Action = "overdue"   // a deadline was missed
)

// APIActions are the actions a token holder may ask for.
var APIActions = []Action{Dispatch, Accept, Handle, Verify, SendBack, Transfer, Defer, Reject, Reopen, Comment}

// transition says from which states an action may be taken and where it
// leads (for Verify: where a pass leads; a fail leads to Dispatched).
type transition struct {
	from []State
	to   State // "" keeps the state
}

var transitions = map[Action]transition{
	File:     {from: []State{Reported}, to: Filed},
	Dispatch: {from: []State{Filed, Deferred}, to: Dispatched},
	Accept:   {from: []State{Dispatched, Transferred, Deferred}, to: Accepted},
	Handle:   {from: []State{Accepted, Deferred}, to: Handled},
	Verify:   {from: []State{Handled}, to: Closed},
	SendBack: {from: []State{Dispatched, Transferred, Accepted}, to: Filed},
	Transfer: {from: []State{Filed, Dispatched, Transferred, Accepted, Deferred}, to: Transferred},
	Defer:    {from: []State{Dispatched, Transferred, Accepted}, to: Deferred},
	Reject:   {from: []State{Reported, Filed, Dispatched, Transferred}, to: Rejected},
	Reopen:   {from: []State{Closed}, to: Dispatched},
	Comment:  {from: States},
	Resolve:  {from: []State{Reported, Filed, Dispatched, Accepted, Handled, Transferred, Deferred}, to: Closed},
	Overdue:  {from: []State{Reported, Filed, Dispatched, Accepted, Handled, Transferred, Deferred}},
}

// roles says who may ask for each API action (on a case they can see).
var roles = map[Action][]string{
	Dispatch: {RoleCity, RoleDistrict},
	Accept:   {RoleCity, RoleUnit},
	Handle:   {RoleCity, RoleUnit},
	Verify:   {RoleCity, RoleDistrict},
	SendBack: {RoleCity, RoleUnit},
	Transfer: {RoleCity, RoleDistrict},
	Defer:    {RoleCity, RoleDistrict},
	Reject:   {RoleCity, RoleDistrict},
	Reopen:   {RoleCity},
	Comment:  {RoleCity, RoleDistrict, RoleUnit},
}

// Errors callers branch on with errors.Is.
var (
	// ErrInvalidTransition: the action is not allowed in the case's state.
	// The error is a *TransitionError naming both.
	ErrInvalidTransition = errors.New("action not allowed in this state")
	// ErrNotFound: no such case, or one the caller may not see.
	ErrNotFound = errors.New("case not found")
	// ErrForbidden: the caller sees the case but its role may not take the action.
	ErrForbidden = errors.New("action not allowed for this role")
	// ErrBadRequest: the action is unknown or its arguments are wrong.
	ErrBadRequest = errors.New("bad request")
	// ErrConflict: the action would make a second open case for one key.
	ErrConflict = errors.New("conflict")
)

// TransitionError is an action refused in a state.
type TransitionError struct {
	Case    int64
	State   State
	Action  Action
	Allowed []Action // what may be done in State instead
}

// Error names the case, the state, the refused action and the allowed ones.
func (e *TransitionError) Error() string {
	names := make([]string, len(e.Allowed))
	for i, a := range e.Allowed {
		names[i] = string(a)
	}
	return fmt.Sprintf("case %d: cannot %s a case in state %q (allowed: %s)", e.Case, e.Action, e.State, strings.Join(names, ", "))
}

// Unwrap makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Unwrap() error { return ErrInvalidTransition }

// next returns the state action leads to from s, or a *TransitionError.
func next(id int64, s State, a Action) (State, error) {
	tr, ok := transitions[a]
	if !ok {
		return "", fmt.Errorf("%w: unknown action %q", ErrBadRequest, a)
	}
	if !slices.Contains(tr.from, s) {
		return "", &TransitionError{Case: id, State: s, Action: a, Allowed: allowed(s)}
	}
	if tr.to == "" {
		return s, nil
	}
	return tr.to, nil
}

// allowed lists the API actions possible in state s.
func allowed(s State) []Action {
	var out []Action
	for _, a := range APIActions {
		if slices.Contains(transitions[a].from, s) {
			out = append(out, a)
		}
	}
	return out
}

// ActionsFor lists the API actions who may take on c in its state: those
// Act would not refuse for role or state.
func ActionsFor(who Actor, c *Case) []Action {
	if !who.sees(c) {
		return nil
	}
	var out []Action
	for _, a := range allowed(c.State) {
		if slices.Contains(roles[a], who.Role) {
			out = append(out, a)
		}
	}
	return out
}
