// Package promtest reads a /metrics endpoint in tests with the Prometheus
// text-format parser (github.com/prometheus/common/expfmt).
package promtest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families are parsed metric families by name.
type Families map[string]*dto.MetricFamily

// Scrape GETs url (with header "Authorization: Bearer token" when token is
// not empty), checks a 200 text-format answer and parses it, failing t
// otherwise.
func Scrape(t testing.TB, url, token string) Families {
	t.Helper()
	f, err := Get(url, token)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Get is Scrape returning its error, for use off the test goroutine.
func Get(url, token string) (Families, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("scrape %s: %s, Content-Type %q", url, resp.Status, ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", url, err)
	}
	return fams, nil
}

// Find returns the metric of family name whose labels include every
// name=value pair of labels ("camera", "cam1", ...), or nil.
func (f Families) Find(name string, labels ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// Value is the value of a counter, gauge or untyped metric (the sample
// count of a histogram); ok is false when the series is missing.
func (f Families) Value(name string, labels ...string) (v float64, ok bool) {
	m := f.Find(name, labels...)
	switch {
	case m == nil:
		return 0, false
	case m.Counter != nil:
		return m.Counter.GetValue(), true
	case m.Gauge != nil:
		return m.Gauge.GetValue(), true
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount()), true
	case m.Untyped != nil:
		return m.Untyped.GetValue(), true
	}
	return 0, false
}

// Must is Value that fails t when the series is missing.
func (f Families) Must(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	v, ok := f.Value(name, labels...)
	if !ok {
		t.Fatalf("series %s%v missing", name, labels)
	}
	return v
}
