package southbound_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/provhub/provhub/internal/southbound"
)

type oneFamily struct{}

func (oneFamily) Name() string            { return "one" }
func (oneFamily) Text(code int) string    { return fmt.Sprintf("text of %d", code) }
func (oneFamily) Retryable(code int) bool { return code == 321 }

type otherFamily struct{}

func (otherFamily) Name() string            { return "other" }
func (otherFamily) Text(int) string         { return "" }
func (otherFamily) Retryable(code int) bool { return true }

var errDown = errors.New("down")

func TestStatusError_SaysItsFamilyAndIsNeverTakenForAnothers(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("call: %w", &southbound.StatusError[oneFamily]{Op: "sendScript", Code: 112})
	if got, want := err.Error(), "call: one sendScript: status 112: text of 112"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	withMessage := &southbound.StatusError[oneFamily]{Op: "getTaskStatus", Code: 921, Message: "said by the server"}
	if got, want := withMessage.Error(), "one getTaskStatus: status 921: said by the server"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	var other *southbound.StatusError[otherFamily]
	if errors.As(err, &other) {
		t.Fatal("a status of one family was taken for another's")
	}
	var mine *southbound.StatusError[oneFamily]
	if !errors.As(err, &mine) || mine.Code != 112 {
		t.Fatalf("errors.As found %v, want the status 112", mine)
	}
}

func TestRetryable_FollowsTheFamilysRuleAndTheClientsSentinel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"a retryable code", &southbound.StatusError[oneFamily]{Code: 321}, true},
		{"a final code", &southbound.StatusError[oneFamily]{Code: 112}, false},
		{"wrapped", fmt.Errorf("x: %w", &southbound.StatusError[oneFamily]{Code: 321}), true},
		{"unavailable", fmt.Errorf("post: %w", errDown), true},
		{"another family's code, always retryable there", &southbound.StatusError[otherFamily]{Code: 112}, false},
		{"anything else", errors.New("bad answer"), false},
		{"nil", nil, false},
	} {
		if got := southbound.Retryable[oneFamily](tc.err, errDown); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
