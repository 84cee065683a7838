package chrysalis

import (
	"context"
	"time"

	"github.com/chryscloud/chrysalis-go/cache"
)

// PacketsAfter returns up to count cached packets with id > after, oldest
// (decode) order, waiting up to block for the first one when there is none
// yet: the blocking read a follower that writes every packet (a recorder)
// needs. An empty result with a nil error means nothing arrived in time;
// a camera missing or empty is also waited for. Packets share their Data
// with the cache (read-only).
func (c *Camera) PacketsAfter(ctx context.Context, after cache.ID, count int64, block time.Duration) ([]cache.Packet, error) {
	return c.cl.cache.ReadAfter(ctx, c.id, after, count, block)
}
