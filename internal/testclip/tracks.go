package testclip

import (
	"bytes"
	"encoding/json"
	"math"
	"os/exec"
	"strconv"
	"testing"
)

// Track is one stream of a media file as ffprobe reads it, timed by its
// packets (after the demuxer's edit lists): Start is the earliest packet's
// presentation time, End the latest packet's time plus its duration, in
// seconds.
type Track struct {
	Type, Codec string
	SampleRate  int
	Packets     int
	Start, End  float64
	// StreamStart and StreamDuration are ffprobe's stream start_time and
	// duration fields (seconds; NaN when absent).
	StreamStart, StreamDuration float64
	// Steps are the PTS differences between consecutive packets (in file
	// order), in the stream's time base (the MP4 muxer derives durations
	// from them, so a hole shows here, not in the durations).
	Steps []int64
}

// OddSteps counts the Steps other than step.
func (t Track) OddSteps(step int64) int {
	n := 0
	for _, s := range t.Steps {
		if s != step {
			n++
		}
	}
	return n
}

// Duration is End - Start.
func (t Track) Duration() float64 { return t.End - t.Start }

// Tracks runs ffprobe -show_streams -show_packets on the file at path and
// returns its streams by type ("video", "audio"; the first of each).
func Tracks(t testing.TB, path string) map[string]Track {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries",
		"stream=index,codec_type,codec_name,sample_rate,start_time,duration:packet=stream_index,pts,duration,pts_time,duration_time", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var po struct {
		Streams []struct {
			Index      int    `json:"index"`
			Type       string `json:"codec_type"`
			Codec      string `json:"codec_name"`
			SampleRate string `json:"sample_rate"`
			Start      string `json:"start_time"`
			Duration   string `json:"duration"`
		} `json:"streams"`
		Packets []struct {
			Stream int    `json:"stream_index"`
			PTS    string `json:"pts_time"`
			Dur    string `json:"duration_time"`
			PTSTB  int64  `json:"pts"`
		} `json:"packets"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&po); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	byIndex := map[int]*Track{}
	last := map[*Track]int64{}
	res := map[string]Track{}
	for _, s := range po.Streams {
		if _, ok := res[s.Type]; ok {
			continue
		}
		sr, _ := strconv.Atoi(s.SampleRate)
		tr := &Track{Type: s.Type, Codec: s.Codec, SampleRate: sr, StreamStart: parseOrNaN(s.Start), StreamDuration: parseOrNaN(s.Duration)}
		byIndex[s.Index] = tr
		res[s.Type] = Track{} // placeholder: filled below
	}
	for _, p := range po.Packets {
		tr := byIndex[p.Stream]
		if tr == nil {
			continue
		}
		pts, err := strconv.ParseFloat(p.PTS, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: packet pts %q", path, p.PTS)
		}
		dur, _ := strconv.ParseFloat(p.Dur, 64)
		if tr.Packets > 0 {
			tr.Steps = append(tr.Steps, p.PTSTB-last[tr])
		}
		last[tr] = p.PTSTB
		if tr.Packets == 0 || pts < tr.Start {
			tr.Start = pts
		}
		tr.End = max(tr.End, pts+dur)
		tr.Packets++
	}
	for _, tr := range byIndex {
		res[tr.Type] = *tr
	}
	return res
}

func parseOrNaN(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}
