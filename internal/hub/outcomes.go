package hub

import (
	"context"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// outcomeSource is one domain's outcome counts.
type outcomeSource struct {
	domain string
	count  func(ctx context.Context, since time.Time) (map[string]int, error)
}

// outcomeCollector reports, at each scrape, the domains' outcomes of the
// last 24 hours as the console's dashboard shows them, read from the
// database: the same figures on every instance (take one, or the max,
// across instances; never their sum).
type outcomeCollector struct {
	desc    *prometheus.Desc
	sources []outcomeSource
	now     func() time.Time
}

func newOutcomeCollector(now func() time.Time, sources ...outcomeSource) *outcomeCollector {
	return &outcomeCollector{
		desc: prometheus.NewDesc("provhub_outcomes_last_24h",
			"Domain outcomes of the last 24 hours, read from the database (the same on every instance): CRM requests by life-cycle state and error code, wallet tasks and device operations by status and status code, issuer operations by status and error code.",
			[]string{"domain", "state", "code"}, nil),
		sources: sources, now: now,
	}
}

func (c *outcomeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *outcomeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	since := c.now().Add(-24 * time.Hour)
	for _, s := range c.sources {
		counts, err := s.count(ctx, since)
		if err != nil {
			continue // the database is away: /readyz says so; the rest of /metrics still answers
		}
		for key, n := range counts {
			state, code, _ := strings.Cut(key, " ")
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s.domain, state, code)
		}
	}
}
