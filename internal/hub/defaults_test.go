package hub

import (
	"reflect"
	"testing"
	"time"
)

// TestDefaults_AZeroSettingTakesItsDefault: every setting Defaults gives
// is what New uses when the setting is left zero, and a setting given is
// kept. A default added to Defaults without its fill fails here.
func TestDefaults_AZeroSettingTakesItsDefault(t *testing.T) {
	d := reflect.ValueOf(Defaults())
	filled := reflect.ValueOf(Config{}.withDefaults())
	for i := range d.NumField() {
		name := d.Type().Field(i).Name
		if d.Field(i).IsZero() {
			continue
		}
		if !reflect.DeepEqual(filled.Field(i).Interface(), d.Field(i).Interface()) {
			t.Errorf("%s left zero becomes %v, want the default %v", name, filled.Field(i).Interface(), d.Field(i).Interface())
		}
	}
	given := Config{Listen: "127.0.0.1:1", CASTimeout: time.Second, MaxWorkers: 3, IssuerAudiences: []string{"x"}}.withDefaults()
	if given.Listen != "127.0.0.1:1" || given.CASTimeout != time.Second || given.MaxWorkers != 3 || given.IssuerAudiences[0] != "x" {
		t.Errorf("given settings were replaced: %+v", given)
	}
}

// TestPollSchedule_GrowsFromTheFirstWait: the default first wait gives the
// schedule docs/transit.md states, and another first wait scales it.
func TestPollSchedule_GrowsFromTheFirstWait(t *testing.T) {
	ms := time.Millisecond
	for first, want := range map[time.Duration][]time.Duration{
		Defaults().WalletPoll: {100 * ms, 200 * ms, 500 * ms, time.Second, 2 * time.Second, 5 * time.Second},
		2 * ms:                {2 * ms, 4 * ms, 10 * ms, 20 * ms, 40 * ms, 100 * ms},
	} {
		if got := pollSchedule(first); !reflect.DeepEqual(got, want) {
			t.Errorf("pollSchedule(%v) = %v, want %v", first, got, want)
		}
	}
}
