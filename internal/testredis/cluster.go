package testredis

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters on loopback, made with
// `redis-cli --cluster create`.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n masters (n >= 3) with cluster-enabled, joins them
// and waits until every node reports cluster_state:ok and knows every
// slot's owner. The nodes stop at test cleanup.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	Require(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Fatalf("redis-cli not found: %v", err)
	}
	c := &Cluster{}
	addrs := make([]string, n)
	for i := range n {
		s := Start(t, Options{Conf: "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 2000\n"})
		c.Nodes = append(c.Nodes, s)
		addrs[i] = s.Addr()
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range c.Nodes {
		rdb := redis.NewClient(&redis.Options{Addr: s.Addr()})
		for {
			info, err := rdb.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n)) {
				break
			}
			select {
			case <-ctx.Done():
				rdb.Close()
				t.Fatalf("cluster node %s not ready: %v\n%s", s.Addr(), err, info)
			case <-time.After(50 * time.Millisecond):
			}
		}
		rdb.Close()
	}
	return c
}

// URL is the cluster's URL in go-redis's cluster form:
// redis://node1?addr=node2&addr=node3.
func (c *Cluster) URL() string {
	var b strings.Builder
	b.WriteString("redis://" + c.Nodes[0].Addr())
	for i, s := range c.Nodes[1:] {
		if i == 0 {
			b.WriteString("?")
		} else {
			b.WriteString("&")
		}
		b.WriteString("addr=" + s.Addr())
	}
	return b.String()
}

// Sentinels is a master, its replica and three sentinels watching them,
// with a quick failover (down after 1 s).
type Sentinels struct {
	Master, Replica *Server
	Sentinels       []*Server
	Name            string
}

// StartSentinels starts a master, a replica of it and three sentinels
// monitoring it as name (quorum 2), and waits until the replica is in sync
// and every sentinel knows the replica and the other two sentinels.
func StartSentinels(t testing.TB, name string) *Sentinels {
	t.Helper()
	Require(t)
	st := &Sentinels{Name: name}
	st.Master = Start(t, Options{})
	st.Replica = Start(t, Options{Conf: fmt.Sprintf("replicaof 127.0.0.1 %d\n", st.Master.Port)})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitInfo(t, ctx, st.Replica.Addr(), "replication", "master_link_status:up")
	for range 3 {
		st.Sentinels = append(st.Sentinels, Start(t, Options{Sentinel: true, Conf: fmt.Sprintf(
			"sentinel monitor %[1]s 127.0.0.1 %[2]d 2\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 4000\nsentinel parallel-syncs %[1]s 1\n",
			name, st.Master.Port)}))
	}
	for _, s := range st.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		for {
			m, err := sc.Master(ctx, name).Result()
			if err == nil && m["num-slaves"] == "1" && m["num-other-sentinels"] == "2" {
				break
			}
			select {
			case <-ctx.Done():
				sc.Close()
				t.Fatalf("sentinel %s not ready: %v %v", s.Addr(), err, m)
			case <-time.After(50 * time.Millisecond):
			}
		}
		sc.Close()
	}
	return st
}

// URL is the redis+sentinel:// URL of the master (rediscache.ParseURL).
func (st *Sentinels) URL() string {
	addrs := make([]string, len(st.Sentinels))
	for i, s := range st.Sentinels {
		addrs[i] = s.Addr()
	}
	return "redis+sentinel://" + strings.Join(addrs, ",") + "/" + st.Name
}

// MasterAddr asks the first live sentinel for the master's address.
func (st *Sentinels) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, s := range st.Sentinels {
		sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
		a, err := sc.GetMasterAddrByName(ctx, st.Name).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		last = err
	}
	return "", last
}

// waitInfo waits until INFO section of addr contains want.
func waitInfo(t testing.TB, ctx context.Context, addr, section, want string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	for {
		info, err := rdb.Info(ctx, section).Result()
		if err == nil && strings.Contains(info, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: INFO %s never showed %q: %v\n%s", addr, section, want, err, info)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
