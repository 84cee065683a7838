package cache

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is the in-process frame cache: same semantics as the Redis layout
// (ids, keyframe index, retention, blocking reads), no server. The zero
// value is not usable; call NewMemory.
type Memory struct {
	ret Retention
	now func() time.Time

	mu     sync.Mutex
	cams   map[string]*memCam
	closed bool
	done   chan struct{}
}

type memCam struct {
	pkts   []Packet // oldest first; pkts[head:] are live
	head   int
	index  []ID // the keyframe index: ids of the keyframe packets, sorted
	ihead  int
	codec  *Codec
	last   ID
	notify chan struct{} // closed and replaced on every append
}

var _ Cache = (*Memory)(nil)

// NewMemory returns an in-process cache that applies ret to every camera.
// A zero Retention keeps everything (use it only for bounded inputs).
func NewMemory(ret Retention) *Memory {
	return &Memory{ret: ret, now: time.Now, cams: map[string]*memCam{}, done: make(chan struct{})}
}

func (m *Memory) cam(camera string, create bool) (*memCam, error) {
	if m.closed {
		return nil, ErrClosed
	}
	c := m.cams[camera]
	if c == nil {
		if !create {
			return nil, camErr(camera, ErrUnknownCamera)
		}
		c = &memCam{notify: make(chan struct{})}
		m.cams[camera] = c
	}
	return c, nil
}

func (c *memCam) live() []Packet  { return c.pkts[c.head:] }
func (c *memCam) liveIndex() []ID { return c.index[c.ihead:] }

// Append implements Cache. It takes ownership of p.Data.
func (m *Memory) Append(ctx context.Context, camera string, p *Packet) (ID, error) {
	if err := ctx.Err(); err != nil {
		return ID{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, true)
	if err != nil {
		return ID{}, err
	}
	ms := uint64(p.Timestamp)
	if p.Timestamp <= 0 {
		ms = uint64(m.now().UnixMilli())
	}
	id := NextID(c.last, ms)
	q := *p
	q.ID = id
	c.pkts = append(c.pkts, q)
	c.last = id
	if p.Keyframe {
		// In process the index can name its packet exactly, so lookups
		// stay exact when many packets share a millisecond (the Redis
		// layout's separately numbered index stream cannot).
		c.index = append(c.index, id)
	}
	m.trim(c)
	close(c.notify)
	c.notify = make(chan struct{})
	return id, nil
}

func (m *Memory) trim(c *memCam) {
	live := c.live()
	drop := 0
	if m.ret.MaxLen > 0 && int64(len(live)) > m.ret.MaxLen {
		drop = len(live) - int(m.ret.MaxLen)
	}
	var minID ID
	if m.ret.MaxAge > 0 {
		newest := c.last.MS
		age := uint64(m.ret.MaxAge.Milliseconds())
		if newest > age {
			minID = ID{MS: newest - age}
		}
		n, _ := slices.BinarySearchFunc(live, minID, func(p Packet, id ID) int { return p.ID.Compare(id) })
		drop = max(drop, n)
	}
	if drop > 0 {
		clear(c.pkts[c.head : c.head+drop]) // release Data for the GC
		c.head += drop
		if c.head > 1024 && c.head > len(c.pkts)/2 {
			c.pkts = append(c.pkts[:0:0], c.pkts[c.head:]...)
			c.head = 0
		}
		// Index entries before the oldest live packet go too, as XADD
		// MINID on the index stream does.
		first := ID{}
		if l := c.live(); len(l) > 0 {
			first = l[0].ID
		}
		li := c.liveIndex()
		k, _ := slices.BinarySearchFunc(li, first, func(a, b ID) int { return a.Compare(b) })
		c.ihead += k
		if c.ihead > 1024 && c.ihead > len(c.index)/2 {
			c.index = append(c.index[:0:0], c.index[c.ihead:]...)
			c.ihead = 0
		}
	}
}

// SetCodec implements Cache.
func (m *Memory) SetCodec(ctx context.Context, camera string, cd Codec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, true)
	if err != nil {
		return err
	}
	cd.Extradata = slices.Clone(cd.Extradata)
	c.codec = &cd
	return nil
}

// Codec implements Cache.
func (m *Memory) Codec(ctx context.Context, camera string) (Codec, error) {
	if err := ctx.Err(); err != nil {
		return Codec{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return Codec{}, err
	}
	if c.codec == nil {
		return Codec{}, camErr(camera, ErrNotFound)
	}
	return *c.codec, nil
}

func searchPkt(live []Packet, id ID) int {
	n, _ := slices.BinarySearchFunc(live, id, func(p Packet, id ID) int { return p.ID.Compare(id) })
	return n
}

// Range implements Cache.
func (m *Memory) Range(ctx context.Context, camera string, start, end ID, count int64) ([]Packet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return nil, err
	}
	live := c.live()
	i, j := searchPkt(live, start), searchPkt(live, end.Next())
	if end == MaxID {
		j = len(live)
	}
	if i >= j {
		return nil, nil
	}
	if count > 0 && int64(j-i) > count {
		j = i + int(count)
	}
	return slices.Clone(live[i:j]), nil
}

// RevRange implements Cache.
func (m *Memory) RevRange(ctx context.Context, camera string, end, start ID, count int64) ([]Packet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return nil, err
	}
	live := c.live()
	i, j := searchPkt(live, start), searchPkt(live, end.Next())
	if end == MaxID {
		j = len(live)
	}
	if i >= j {
		return nil, nil
	}
	if count > 0 && int64(j-i) > count {
		i = j - int(count)
	}
	out := slices.Clone(live[i:j])
	slices.Reverse(out)
	return out, nil
}

// keyframeFor returns the keyframe packet an index entry names.
func keyframeFor(live []Packet, id ID) (Packet, bool) {
	if k := searchPkt(live, id); k < len(live) && live[k].ID == id {
		return live[k], true
	}
	return Packet{}, false
}

// Keyframes implements Cache.
func (m *Memory) Keyframes(ctx context.Context, camera string, start, end ID, count int64) ([]Packet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return nil, err
	}
	live := c.live()
	var out []Packet
	li := c.liveIndex()
	k, _ := slices.BinarySearchFunc(li, start, func(a, b ID) int { return a.Compare(b) })
	for _, iid := range li[k:] {
		p, ok := keyframeFor(live, iid)
		if !ok {
			continue
		}
		if p.ID.Compare(end) > 0 {
			break
		}
		if p.ID.Compare(start) < 0 {
			continue
		}
		out = append(out, p)
		if count > 0 && int64(len(out)) >= count {
			break
		}
	}
	return out, nil
}

// KeyframeAtOrBefore implements Cache.
func (m *Memory) KeyframeAtOrBefore(ctx context.Context, camera string, at ID) (Packet, error) {
	if err := ctx.Err(); err != nil {
		return Packet{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return Packet{}, err
	}
	live, li := c.live(), c.liveIndex()
	k := len(li)
	if at != MaxID {
		k, _ = slices.BinarySearchFunc(li, at.Next(), func(a, b ID) int { return a.Compare(b) })
	}
	for k--; k >= 0; k-- {
		if p, ok := keyframeFor(live, li[k]); ok && p.ID.Compare(at) <= 0 {
			return p, nil
		}
	}
	return Packet{}, camErr(camera, ErrNotFound)
}

// ReadAfter implements Cache.
func (m *Memory) ReadAfter(ctx context.Context, camera string, after ID, count int64, block time.Duration) ([]Packet, error) {
	var timer <-chan time.Time
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrClosed
		}
		c := m.cams[camera]
		var wait chan struct{}
		if c == nil {
			// Unknown yet: a blocking read waits for the camera to appear,
			// as XREAD BLOCK on a missing key does.
			if block <= 0 {
				m.mu.Unlock()
				return nil, camErr(camera, ErrUnknownCamera)
			}
			c = &memCam{notify: make(chan struct{})}
			m.cams[camera] = c
		}
		live := c.live()
		i := searchPkt(live, after.Next())
		if i < len(live) {
			j := len(live)
			if count > 0 && int64(j-i) > count {
				j = i + int(count)
			}
			out := slices.Clone(live[i:j])
			m.mu.Unlock()
			return out, nil
		}
		wait = c.notify
		m.mu.Unlock()
		if block <= 0 {
			return nil, nil
		}
		if timer == nil {
			t := time.NewTimer(block)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-wait:
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.done:
			return nil, ErrClosed
		}
	}
}

// Stats implements Cache.
func (m *Memory) Stats(ctx context.Context, camera string) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.cam(camera, false)
	if err != nil {
		return Stats{}, err
	}
	live := c.live()
	if len(live) == 0 {
		if c.codec == nil {
			return Stats{}, camErr(camera, ErrUnknownCamera)
		}
		return Stats{}, camErr(camera, ErrEmpty)
	}
	return Stats{First: live[0].ID, Last: live[len(live)-1].ID, Frames: int64(len(live)), Keyframes: int64(len(c.liveIndex()))}, nil
}

// Cameras implements Cache.
func (m *Memory) Cameras(ctx context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	var out []string
	for k, c := range m.cams {
		if c.codec != nil {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Close implements Cache. Blocked readers return ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.done)
	}
	return nil
}
