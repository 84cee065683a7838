package rediscache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chryscloud/chrysalis-go/cache"
	"github.com/chryscloud/chrysalis-go/internal/annexb"
)

// Layout names a Redis key layout of the frame cache.
//
// The cloud layout is the Chrysalis Cloud streaming node's, the one the
// Python SDK read (one Redis per camera):
//
//	input_rtmp_stream        stream: frame=<access unit, Annex B, SPS/PPS in-band>
//	input_rtmp_audio_stream  stream: the camera's audio
//
// It has no keyframe index and no codec key: keyframes are found by the
// NAL unit types at the front of each frame (H.264 IDR or SPS, HEVC IRAP
// or VPS/SPS), and the codec parameters come from the in-band parameter
// sets. Its packets carry only what the layout stores:
//   - ID and Timestamp are the entry id and its millisecond;
//   - Data is the frame; CodecName is detected from its NAL headers;
//   - keyframes carry their parameter sets as Annex B Extradata and the
//     SPS's Width, Height and PixFmt, so a decoder is made from the packet
//     itself;
//   - PTS = ms*1000 + seq in a 1 µs time base, unique per entry, and DTS
//     unset (AV_NOPTS_VALUE): the decoder then hands each picture back with
//     its own packet's PTS (with a DTS equal to the PTS, FFmpeg's
//     best-effort timestamp took the decode-order DTS instead, mislabelling
//     B-frames), so every image is labelled with its own entry. The layout
//     has no presentation times: an image's Time is its entry's
//     millisecond, which with B-frames is its decode time, so Past's
//     images, in display order, do not have increasing Times there;
//   - Number is 0: readers cannot tell a gap by packet numbers and decode
//     across one (the edge layout numbers its packets);
//   - Stats.Keyframes is 0 (there is no index to count).
type Layout string

// Layouts. The zero value detects the layout per camera.
const (
	// LayoutDetect picks, per camera, the layout whose key exists: the
	// edge queue in_memory_queue_<cam> (or its codec key), or the cloud
	// stream. A camera's own edge keys win over a fixed cloud key (one
	// without {camera}, which every camera id names); when both the edge
	// keys and a per-camera cloud stream exist, the camera's calls fail
	// with ErrAmbiguousLayout. When neither exists the camera is unknown,
	// and Append starts it in the edge layout.
	LayoutDetect Layout = ""
	// LayoutEdge is the Chrysalis edge proxy's layout (package doc).
	LayoutEdge Layout = "edge"
	// LayoutCloud is the Chrysalis Cloud streaming node's layout.
	LayoutCloud Layout = "cloud"
)

// Default keys of the cloud layout.
const (
	DefaultCloudStream      = "input_rtmp_stream"
	DefaultCloudAudioStream = "input_rtmp_audio_stream"
	// CameraPlaceholder in a cloud stream key is replaced by the camera id.
	CameraPlaceholder = "{camera}"
)

// Errors of the layout choice.
var (
	// ErrUnknownLayout: a layout name other than "edge", "cloud" or "".
	ErrUnknownLayout = errors.New("rediscache: unknown layout")
	// ErrAmbiguousLayout: the camera has keys of both layouts; choose one.
	ErrAmbiguousLayout = errors.New("rediscache: the camera has keys of both the edge and the cloud layout; choose one with Layout")
	// ErrNotAnnexB: Append on the cloud layout got a packet that is not an
	// Annex B access unit (the layout's readers get no extradata).
	ErrNotAnnexB = errors.New("rediscache: the cloud layout stores Annex B access units; convert AVCC packets first (the ingest does)")
	// errNoFrame: a cloud entry without a "frame" field.
	errNoFrame = errors.New(`entry has no "frame" field (not the cloud layout?)`)
)

// ParseLayout reads "edge", "cloud" or "" (detect).
func ParseLayout(s string) (Layout, error) {
	switch l := Layout(strings.ToLower(strings.TrimSpace(s))); l {
	case LayoutDetect, LayoutEdge, LayoutCloud:
		return l, nil
	}
	return "", fmt.Errorf("%w %q: want edge, cloud or empty (detect)", ErrUnknownLayout, s)
}

// layouts is a Cache's per-camera layout choice.
type layouts struct {
	layout Layout
	video  string // cloud stream key template
	audio  string
	mu     sync.Mutex
	found  map[string]Layout // detected, per camera (a camera keeps its layout)
}

func (l *layouts) init(o *Options) {
	l.layout = o.Layout
	l.video = o.CloudStream
	if l.video == "" {
		l.video = DefaultCloudStream
	}
	l.audio = o.CloudAudioStream
	if l.audio == "" {
		l.audio = DefaultCloudAudioStream
	}
	l.found = map[string]Layout{}
}

func (l *layouts) key(tmpl, cam string) string {
	return strings.ReplaceAll(tmpl, CameraPlaceholder, cam)
}

// CloudStreamKey is camera cam's video stream key in the cloud layout.
func (c *Cache) CloudStreamKey(cam string) string { return c.lay.key(c.lay.video, cam) }

// CloudAudioKey is camera cam's audio stream key in the cloud layout.
func (c *Cache) CloudAudioKey(cam string) string { return c.lay.key(c.lay.audio, cam) }

// noPTS is FFmpeg's AV_NOPTS_VALUE: the cloud layout has no decode times.
const noPTS = math.MinInt64

// cloudCam reads and writes one camera in the cloud layout.
type cloudCam struct {
	c   *Cache
	cam string
	key string
}

// cloud returns cam's cloud handle when cam is in the cloud layout, nil
// for the edge layout (or a camera found in neither).
func (c *Cache) cloud(ctx context.Context, cam string) (*cloudCam, error) {
	l := &c.lay
	switch l.layout {
	case LayoutEdge:
		return nil, nil
	case LayoutCloud:
		return &cloudCam{c: c, cam: cam, key: c.CloudStreamKey(cam)}, nil
	case LayoutDetect:
	default:
		return nil, fmt.Errorf("%w %q", ErrUnknownLayout, l.layout)
	}
	l.mu.Lock()
	got, ok := l.found[cam]
	l.mu.Unlock()
	if !ok {
		// One EXISTS per key: on a cluster the keys sit in different
		// slots, and a multi-key EXISTS would fail with CROSSSLOT.
		pipe := c.rdb.Pipeline()
		edgeQ := pipe.Exists(ctx, QueueKey(cam))
		edgeC := pipe.Exists(ctx, CodecKey(cam))
		cl := pipe.Exists(ctx, c.CloudStreamKey(cam))
		_, _ = pipe.Exec(ctx)
		if err := errors.Join(edgeQ.Err(), edgeC.Err()); err != nil {
			return nil, classify(ctx, err)
		}
		edge := edgeQ.Val() + edgeC.Val()
		// A user whose ACL names only the camera's edge keys (an ingest's
		// least privilege) may not see the cloud key: for it, that layout
		// is not there.
		if err := cl.Err(); err != nil && !redis.IsPermissionError(err) {
			return nil, classify(ctx, err)
		}
		switch {
		case edge > 0 && cl.Val() > 0 && strings.Contains(l.video, CameraPlaceholder):
			return nil, &cache.CameraError{Camera: cam, Err: fmt.Errorf("%w (%s and %s exist)", ErrAmbiguousLayout, QueueKey(cam), c.CloudStreamKey(cam))}
		case edge > 0:
			got = LayoutEdge
		case cl.Val() > 0:
			got = LayoutCloud
		default:
			return nil, nil // not there yet: ask again next time
		}
		l.mu.Lock()
		l.found[cam] = got
		l.mu.Unlock()
	}
	if got == LayoutCloud {
		return &cloudCam{c: c, cam: cam, key: c.CloudStreamKey(cam)}, nil
	}
	return nil, nil
}

// Layout reports the layout camera cam is read in: the configured one, or
// the detected one (LayoutDetect when the camera is in neither yet).
func (c *Cache) Layout(ctx context.Context, cam string) (Layout, error) {
	if c.lay.layout != LayoutDetect {
		return c.lay.layout, nil
	}
	cl, err := c.cloud(ctx, cam)
	switch {
	case err != nil:
		return LayoutDetect, err
	case cl != nil:
		return LayoutCloud, nil
	}
	c.lay.mu.Lock()
	defer c.lay.mu.Unlock()
	return c.lay.found[cam], nil
}

func (cc *cloudCam) err(err error) error { return &cache.CameraError{Camera: cc.cam, Err: err} }

// packet turns a cloud entry into a Packet (see Layout). Data aliases the
// string go-redis returned.
func (cc *cloudCam) packet(m redis.XMessage) (cache.Packet, error) {
	id, err := cache.ParseID(m.ID)
	if err != nil {
		return cache.Packet{}, err
	}
	raw, ok := m.Values["frame"].(string)
	if !ok {
		return cache.Packet{}, fmt.Errorf("camera %q: %s entry %s: %w", cc.cam, cc.key, m.ID, errNoFrame)
	}
	data := strBytes(raw)
	p := cache.Packet{ID: id, Timestamp: int64(id.MS), Data: data, CodecName: annexb.Detect(data), FrameType: "P",
		TimeBase: 1e-6, DeviceID: cc.cam, Keyframe: annexb.Keyframe(data)}
	p.PTS = int64(id.MS)*1000 + int64(id.Seq)
	p.DTS = noPTS
	if p.CodecName == "" {
		p.CodecName = annexb.H264
	}
	if p.Keyframe {
		p.FrameType = "I"
		p.Extradata = annexb.ParamSets(p.CodecName, data)
		if sz, err := annexb.SPSSize(p.CodecName, data); err == nil {
			p.Width, p.Height, p.PixFmt = sz.Width, sz.Height, sz.PixFmt
		}
	}
	return p, nil
}

func (cc *cloudCam) packets(msgs []redis.XMessage) ([]cache.Packet, error) {
	out := make([]cache.Packet, 0, len(msgs))
	for _, m := range msgs {
		p, err := cc.packet(m)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// known reports ErrUnknownCamera when the stream key does not exist.
func (cc *cloudCam) known(ctx context.Context) error {
	n, err := cc.c.rdb.Exists(ctx, cc.key).Result()
	if err != nil {
		return classify(ctx, err)
	}
	if n == 0 {
		return cc.err(fmt.Errorf("%w (no cloud stream %s)", cache.ErrUnknownCamera, cc.key))
	}
	return nil
}

func (cc *cloudCam) result(ctx context.Context, cmd *redis.XMessageSliceCmd) ([]cache.Packet, error) {
	msgs, err := cmd.Result()
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(msgs) == 0 {
		if err := cc.known(ctx); err != nil {
			return nil, err
		}
	}
	return cc.packets(msgs)
}

func (cc *cloudCam) Range(ctx context.Context, start, end cache.ID, count int64) ([]cache.Packet, error) {
	if count > 0 {
		return cc.result(ctx, cc.c.rdb.XRangeN(ctx, cc.key, startStr(start), endStr(end), count))
	}
	return cc.result(ctx, cc.c.rdb.XRange(ctx, cc.key, startStr(start), endStr(end)))
}

func (cc *cloudCam) RevRange(ctx context.Context, end, start cache.ID, count int64) ([]cache.Packet, error) {
	if count > 0 {
		return cc.result(ctx, cc.c.rdb.XRevRangeN(ctx, cc.key, endStr(end), startStr(start), count))
	}
	return cc.result(ctx, cc.c.rdb.XRevRange(ctx, cc.key, endStr(end), startStr(start)))
}

// cloudKeyScan reads one page of the stream (XRANGE forward from ARGV[2] to
// ARGV[3], or XREVRANGE backward, ARGV[1] = 'f' | 'b', COUNT ARGV[5])
// inside Redis and returns {last id read, entries read, keyframe entries
// (at most ARGV[4])...}. iskey is annexb.Keyframe's rule. One page per
// call bounds the time the script holds the server (a page of 64 frames
// of a 1080p camera copies ~2 MB); the client pages. Scanning in Redis
// sends only keyframes over the network: for a keyframe every 2 s at 25
// fps, 1/50th of the bytes that a client-side XRANGE scan would read.
// BenchmarkCloudKeyframes (400 entries of 1080p, 8 keyframes, loopback,
// 2 shared cores): 9.5 ms per full scan here against 25 ms client-side,
// i.e. about 1.5 ms of server time per page; over a real network the
// client-side scan also moves every frame.
var cloudKeyScan = redis.NewScript(`
local function iskey(f)
  local pos, n = 1, #f
  while true do
    local s = string.find(f, '\0\0\1', pos, true)
    if s == nil or s + 3 > n then return false end
    local b0 = string.byte(f, s + 3)
    local b1 = string.byte(f, s + 4) or 0
    if b0 % 2 == 1 then
      local t = b0 % 32
      if t == 5 or t == 7 then return true end
      if t >= 1 and t <= 4 then return false end
    elseif b0 ~= 6 and b0 < 128 and b1 >= 1 and b1 <= 7 then
      local t = math.floor(b0 / 2) % 64
      if (t >= 16 and t <= 23) or t == 32 or t == 33 then return true end
      if t < 32 then return false end
    end
    pos = s + 3
  end
end
local r
if ARGV[1] == 'f' then
  r = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[5])
else
  r = redis.call('XREVRANGE', KEYS[1], ARGV[2], ARGV[3], 'COUNT', ARGV[5])
end
local want = tonumber(ARGV[4])
local out = {'', 0}
for i, e in ipairs(r) do
  out[1], out[2] = e[1], i
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'frame' then
      if iskey(f[j + 1]) then out[#out + 1] = e end
      break
    end
  end
  if #out - 2 >= want then break end
end
return out
`)

// keyScanPage is the entries one cloudKeyScan call reads.
const keyScanPage = 64

// keyScan runs one cloudKeyScan page. It returns the keyframes found, the
// last id read and how many entries were read.
func (cc *cloudCam) keyScan(ctx context.Context, fwd bool, from, to string, want int) ([]cache.Packet, cache.ID, int, error) {
	dir := "b"
	if fwd {
		dir = "f"
	}
	res, err := cloudKeyScan.Run(ctx, cc.c.rdb, []string{cc.key}, dir, from, to, want, keyScanPage).Slice()
	if err != nil {
		return nil, cache.ID{}, 0, classify(ctx, err)
	}
	if len(res) < 2 {
		return nil, cache.ID{}, 0, fmt.Errorf("rediscache: unexpected script reply of %d items", len(res))
	}
	read, _ := res[1].(int64)
	var last cache.ID
	if s, _ := res[0].(string); s != "" {
		if last, err = cache.ParseID(s); err != nil {
			return nil, cache.ID{}, 0, err
		}
	}
	var out []cache.Packet
	for _, e := range res[2:] {
		ea, ok := e.([]any)
		if !ok || len(ea) != 2 {
			return nil, cache.ID{}, 0, fmt.Errorf("rediscache: unexpected script entry %T", e)
		}
		m, err := scriptEntry(ea)
		if err != nil {
			return nil, cache.ID{}, 0, err
		}
		p, err := cc.packet(m)
		if err != nil {
			return nil, cache.ID{}, 0, err
		}
		out = append(out, p)
	}
	return out, last, int(read), nil
}

// Keyframes scans [start, end] forward in Redis (cloudKeyScan).
func (cc *cloudCam) Keyframes(ctx context.Context, start, end cache.ID, count int64) ([]cache.Packet, error) {
	var out []cache.Packet
	for from := start; ; {
		want := keyScanPage
		if count > 0 {
			want = int(count) - len(out)
		}
		kfs, last, read, err := cc.keyScan(ctx, true, startStr(from), endStr(end), want)
		if err != nil {
			return out, err
		}
		out = append(out, kfs...)
		if (count > 0 && int64(len(out)) >= count) || read < keyScanPage || last == cache.MaxID {
			break
		}
		from = last.Next()
	}
	if len(out) == 0 {
		if err := cc.known(ctx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// prevID is the largest id before id (id must not be MinID).
func prevID(id cache.ID) cache.ID {
	if id.Seq == 0 {
		return cache.ID{MS: id.MS - 1, Seq: ^uint64(0)}
	}
	return cache.ID{MS: id.MS, Seq: id.Seq - 1}
}

// KeyframeAtOrBefore scans backward from at in Redis (cloudKeyScan), up to
// keyframeScanLimit entries.
func (cc *cloudCam) KeyframeAtOrBefore(ctx context.Context, at cache.ID) (cache.Packet, error) {
	for to, scanned := at, 0; scanned < keyframeScanLimit; {
		kfs, last, read, err := cc.keyScan(ctx, false, endStr(to), "-", 1)
		if err != nil {
			return cache.Packet{}, err
		}
		if len(kfs) > 0 {
			return kfs[0], nil
		}
		scanned += read
		if read < keyScanPage || last.IsZero() {
			break
		}
		to = prevID(last)
	}
	if err := cc.known(ctx); err != nil {
		return cache.Packet{}, err
	}
	return cache.Packet{}, cc.err(cache.ErrNotFound)
}

func (cc *cloudCam) ReadAfter(ctx context.Context, after cache.ID, count int64, block time.Duration) ([]cache.Packet, error) {
	a := &redis.XReadArgs{Streams: []string{cc.key, after.String()}, Count: count, Block: -1}
	if block > 0 {
		a.Block = max(block, time.Millisecond)
	}
	res, err := cc.c.rdb.XRead(ctx, a).Result()
	msgs, err := xreadMessages(ctx, res, err, block, func() error { return cc.known(ctx) })
	if err != nil || len(msgs) == 0 {
		return nil, err
	}
	return cc.packets(msgs)
}

func (cc *cloudCam) Stats(ctx context.Context) (cache.Stats, error) {
	pipe := cc.c.rdb.Pipeline()
	n := pipe.XLen(ctx, cc.key)
	first := pipe.XRangeN(ctx, cc.key, "-", "+", 1)
	last := pipe.XRevRangeN(ctx, cc.key, "+", "-", 1)
	exists := pipe.Exists(ctx, cc.key)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return cache.Stats{}, classify(ctx, err)
	}
	if n.Val() == 0 || len(first.Val()) == 0 || len(last.Val()) == 0 {
		if exists.Val() == 0 {
			return cache.Stats{}, cc.err(fmt.Errorf("%w (no cloud stream %s)", cache.ErrUnknownCamera, cc.key))
		}
		return cache.Stats{}, cc.err(fmt.Errorf("%w (cloud stream %s has no entries)", cache.ErrEmpty, cc.key))
	}
	f, err := cache.ParseID(first.Val()[0].ID)
	if err != nil {
		return cache.Stats{}, err
	}
	l, err := cache.ParseID(last.Val()[0].ID)
	if err != nil {
		return cache.Stats{}, err
	}
	return cache.Stats{First: f, Last: l, Frames: n.Val()}, nil
}

// Codec derives the codec parameters from the newest keyframe's in-band
// parameter sets. ErrNotFound when the stream holds no keyframe, or its
// newest keyframe no SPS.
func (cc *cloudCam) Codec(ctx context.Context) (cache.Codec, error) {
	kf, err := cc.KeyframeAtOrBefore(ctx, cache.MaxID)
	if err != nil {
		return cache.Codec{}, err
	}
	sz, err := annexb.SPSSize(kf.CodecName, kf.Data)
	if err != nil {
		// A writer that keeps the parameters out of band: readers then
		// fall back to the packets' codec name.
		return cache.Codec{}, cc.err(fmt.Errorf("%w: keyframe %s has no parseable SPS (%v)", cache.ErrNotFound, kf.ID, err))
	}
	return cache.Codec{Name: kf.CodecName, LongName: longNames[kf.CodecName], Width: sz.Width, Height: sz.Height,
		PixFmt: sz.PixFmt, Extradata: kf.Extradata}, nil
}

var longNames = map[string]string{
	annexb.H264: "H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10",
	annexb.HEVC: "H.265 / HEVC (High Efficiency Video Coding)",
}

// Append writes the access unit as the cloud node did: field "frame" only,
// at "<ms>-*" (or "*" when the stream already holds a later id).
func (cc *cloudCam) Append(ctx context.Context, p *cache.Packet) (cache.ID, error) {
	if !annexb.IsAnnexB(p.Data) {
		return cache.ID{}, cc.err(ErrNotAnnexB)
	}
	ms := cc.c.appendMS(cc.cam, p)
	add := func(id string) (string, error) {
		a := &redis.XAddArgs{Stream: cc.key, ID: id, Values: []any{"frame", p.Data}}
		cc.c.trimArgs(a, ms)
		pipe := cc.c.rdb.Pipeline()
		cmd := pipe.XAdd(ctx, a)
		if r := cc.c.opts.Retention; r.MaxAge > 0 && r.MaxLen > 0 {
			pipe.XTrimMaxLen(ctx, cc.key, r.MaxLen)
		}
		_, err := pipe.Exec(ctx)
		return cmd.Val(), err
	}
	s, err := add(strconv.FormatUint(ms, 10) + "-*")
	if isIDTooSmall(err) {
		s, err = add("*")
	}
	if err != nil {
		return cache.ID{}, classify(ctx, err)
	}
	id, err := cache.ParseID(s)
	if err != nil {
		return cache.ID{}, err
	}
	cc.c.mu.Lock()
	cc.c.lastMS[cc.cam] = id.MS
	cc.c.mu.Unlock()
	return id, nil
}

// appendMS is the millisecond Append asks for: the packet's timestamp (now
// when it has none), never before the camera's last id.
func (c *Cache) appendMS(cam string, p *cache.Packet) uint64 {
	ms := uint64(p.Timestamp)
	if p.Timestamp <= 0 {
		ms = uint64(time.Now().UnixMilli())
	}
	c.mu.Lock()
	if l := c.lastMS[cam]; ms < l {
		ms = l
	}
	c.mu.Unlock()
	return ms
}

// AppendAudio adds one audio frame (AAC as ADTS in the cloud layout) to
// camera cam's cloud audio stream, field "frame", at "<ms>-*" (or "*").
func (c *Cache) AppendAudio(ctx context.Context, cam string, ms int64, frame []byte) (cache.ID, error) {
	key := c.CloudAudioKey(cam)
	add := func(id string) (string, error) {
		a := &redis.XAddArgs{Stream: key, ID: id, Values: []any{"frame", frame}}
		c.trimArgs(a, uint64(ms))
		return c.rdb.XAdd(ctx, a).Result()
	}
	s, err := add(strconv.FormatInt(ms, 10) + "-*")
	if isIDTooSmall(err) {
		s, err = add("*")
	}
	if err != nil {
		return cache.ID{}, classify(ctx, err)
	}
	return cache.ParseID(s)
}

// cloudCameras lists the cameras of the cloud layout: with a {camera} key
// template, the ids whose stream exists; with a fixed key, that key's name
// when it exists (every camera id reads it).
func (c *Cache) cloudCameras(ctx context.Context) ([]string, error) {
	tmpl := c.lay.video
	if !strings.Contains(tmpl, CameraPlaceholder) {
		n, err := c.rdb.Exists(ctx, tmpl).Result()
		if err != nil || n == 0 {
			return nil, classify(ctx, err)
		}
		return []string{tmpl}, nil
	}
	pre, post, _ := strings.Cut(tmpl, CameraPlaceholder)
	keys, err := c.scanKeys(ctx, pre+"*"+post)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if len(k) > len(pre)+len(post) && strings.HasPrefix(k, pre) && strings.HasSuffix(k, post) {
			out = append(out, k[len(pre):len(k)-len(post)])
		}
	}
	return out, nil
}

// StoresAnnexB reports whether camera cam is written in the cloud layout
// (configured, or detected from an existing cloud stream), whose Append
// takes Annex B access units only; the ingest converts for it
// (ingest.AnnexBCache).
func (c *Cache) StoresAnnexB(ctx context.Context, cam string) (bool, error) {
	cl, err := c.cloud(ctx, cam)
	return cl != nil, err
}

// AudioFrame is one entry of a cloud audio stream: an ADTS frame (AAC) at
// its capture millisecond. Data aliases the reply: read-only.
type AudioFrame = cache.AudioFrame

var _ cache.AudioReader = (*Cache)(nil)

// AudioRange returns camera cam's audio frames with start <= id <= end,
// oldest first (count <= 0: all), from the cloud audio stream; nil when the
// camera has no audio. It is the building block for muxing audio into
// exports.
func (c *Cache) AudioRange(ctx context.Context, cam string, start, end cache.ID, count int64) ([]AudioFrame, error) {
	key := c.CloudAudioKey(cam)
	var msgs []redis.XMessage
	var err error
	if count > 0 {
		msgs, err = c.rdb.XRangeN(ctx, key, startStr(start), endStr(end), count).Result()
	} else {
		msgs, err = c.rdb.XRange(ctx, key, startStr(start), endStr(end)).Result()
	}
	if err != nil {
		return nil, classify(ctx, err)
	}
	out := make([]AudioFrame, 0, len(msgs))
	for _, m := range msgs {
		id, err := cache.ParseID(m.ID)
		if err != nil {
			return out, err
		}
		raw, ok := m.Values["frame"].(string)
		if !ok {
			return out, fmt.Errorf("camera %q: %s entry %s: %w", cam, key, m.ID, errNoFrame)
		}
		out = append(out, AudioFrame{ID: id, Data: strBytes(raw)})
	}
	return out, nil
}
