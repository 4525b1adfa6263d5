package refusal_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/provhub/provhub/internal/refusal"
)

type kindA int
type kindB int

func TestKindOf_FindsTheKindThroughWrapsAndOnlyForItsOwnType(t *testing.T) {
	err := fmt.Errorf("register card: %w", refusal.New(kindA(3), "card %s is taken", "C1"))
	if got := refusal.KindOf[kindA](err); got != 3 {
		t.Errorf("KindOf = %d, want 3", got)
	}
	if got := refusal.KindOf[kindB](err); got != 0 {
		t.Errorf("another domain's kind matched: %d", got)
	}
	if got := refusal.KindOf[kindA](errors.New("plain")); got != 0 {
		t.Errorf("a plain error has kind %d", got)
	}
	if err.Error() != "register card: card C1 is taken" {
		t.Errorf("message %q", err)
	}
}
