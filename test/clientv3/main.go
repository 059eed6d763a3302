// Go's clientv3, as Debian ships it with etcd 3.4.23 (golang-etcd-server-dev),
// run against a server: the program a Go user of etcd would write. Each check
// prints "ok <name>" or "FAIL <name>: <why>"; the exit status is 1 if any
// check failed. Errors are compared with rpctypes' values (err == ErrX), which
// only holds when the server sends etcd's exact gRPC code and message.
//
//	clientv3-check api <endpoints>        KV, txn, watch, lease, concurrency, cluster, maintenance, auth
//	clientv3-check failover <endpoints>   puts and a watch while the test kills a member; reads "kill" handshakes on stdin
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/concurrency"
	"go.etcd.io/etcd/etcdserver/api/v3rpc/rpctypes"
	"go.etcd.io/etcd/mvcc/mvccpb"
)

var failed bool

func check(name string, err error) {
	if err != nil {
		failed = true
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	fmt.Printf("ok %s\n", name)
}

func expect(cond bool, format string, args ...interface{}) error {
	if cond {
		return nil
	}
	return fmt.Errorf(format, args...)
}

func newClient(endpoints []string, user, password string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Username:    user,
		Password:    password,
	})
	if err != nil {
		fmt.Printf("FAIL connect: %v\n", err)
		os.Exit(1)
	}
	return cli
}

func ctxFor(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func kv(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(10 * time.Second)
	defer cancel()
	p1, err := cli.Put(ctx, "kv/a", "1")
	if err != nil {
		return err
	}
	r1 := p1.Header.Revision
	g, err := cli.Get(ctx, "kv/a")
	if err != nil {
		return err
	}
	if err := expect(len(g.Kvs) == 1 && string(g.Kvs[0].Value) == "1" && g.Kvs[0].CreateRevision == r1 &&
		g.Kvs[0].ModRevision == r1 && g.Kvs[0].Version == 1, "get after put: %v", g.Kvs); err != nil {
		return err
	}
	p2, err := cli.Put(ctx, "kv/a", "2", clientv3.WithPrevKV())
	if err != nil {
		return err
	}
	if err := expect(p2.PrevKv != nil && string(p2.PrevKv.Value) == "1" && p2.Header.Revision == r1+1,
		"put prev_kv: %v at %d", p2.PrevKv, p2.Header.Revision); err != nil {
		return err
	}
	for _, k := range []string{"kv/b", "kv/c"} {
		if _, err := cli.Put(ctx, k, k); err != nil {
			return err
		}
	}
	page, err := cli.Get(ctx, "kv/", clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(2))
	if err != nil {
		return err
	}
	if err := expect(len(page.Kvs) == 2 && string(page.Kvs[0].Key) == "kv/c" && string(page.Kvs[1].Key) == "kv/b" &&
		page.More && page.Count == 3, "sorted page: %v more=%v count=%d", page.Kvs, page.More, page.Count); err != nil {
		return err
	}
	count, err := cli.Get(ctx, "kv/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return err
	}
	if err := expect(count.Count == 3 && len(count.Kvs) == 0, "count only: %d %v", count.Count, count.Kvs); err != nil {
		return err
	}
	keys, err := cli.Get(ctx, "kv/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	if err := expect(len(keys.Kvs) == 3 && len(keys.Kvs[0].Value) == 0, "keys only: %v", keys.Kvs); err != nil {
		return err
	}
	old, err := cli.Get(ctx, "kv/a", clientv3.WithRev(r1))
	if err != nil {
		return err
	}
	if err := expect(len(old.Kvs) == 1 && string(old.Kvs[0].Value) == "1", "get at %d: %v", r1, old.Kvs); err != nil {
		return err
	}
	del, err := cli.Delete(ctx, "kv/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil {
		return err
	}
	return expect(del.Deleted == 3 && len(del.PrevKvs) == 3, "delete prefix: %d %v", del.Deleted, del.PrevKvs)
}

func txn(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(10 * time.Second)
	defer cancel()
	create := func() (*clientv3.TxnResponse, error) {
		return cli.Txn(ctx).
			If(clientv3.Compare(clientv3.Version("txn/x"), "=", 0)).
			Then(clientv3.OpPut("txn/x", "first")).
			Else(clientv3.OpGet("txn/x")).
			Commit()
	}
	t1, err := create()
	if err != nil {
		return err
	}
	if err := expect(t1.Succeeded, "first create did not succeed"); err != nil {
		return err
	}
	t2, err := create()
	if err != nil {
		return err
	}
	if err := expect(!t2.Succeeded && len(t2.Responses) == 1, "second create: %v", t2); err != nil {
		return err
	}
	got := t2.Responses[0].GetResponseRange()
	if err := expect(got != nil && len(got.Kvs) == 1 && string(got.Kvs[0].Value) == "first", "else branch: %v", got); err != nil {
		return err
	}
	_, err = cli.Txn(ctx).Then(clientv3.OpPut("txn/d", "1"), clientv3.OpPut("txn/d", "2")).Commit()
	return expect(err == rpctypes.ErrDuplicateKey, "duplicate key in txn: %v", err)
}

func serverErrors(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(10 * time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "", "v"); err != rpctypes.ErrEmptyKey {
		return fmt.Errorf("empty key: %v", err)
	}
	p, err := cli.Put(ctx, "err/k", "v1")
	if err != nil {
		return err
	}
	if _, err := cli.Put(ctx, "err/k", "v2"); err != nil {
		return err
	}
	if _, err := cli.Compact(ctx, p.Header.Revision+1, clientv3.WithCompactPhysical()); err != nil {
		return err
	}
	if _, err := cli.Get(ctx, "err/k", clientv3.WithRev(p.Header.Revision)); err != rpctypes.ErrCompacted {
		return fmt.Errorf("read below compaction: %v", err)
	}
	if _, err := cli.Get(ctx, "err/k", clientv3.WithRev(p.Header.Revision+1000)); err != rpctypes.ErrFutureRev {
		return fmt.Errorf("future revision: %v", err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(0x7777)); err != rpctypes.ErrLeaseNotFound {
		return fmt.Errorf("revoke unknown lease: %v", err)
	}
	return nil
}

func nextEvent(ch clientv3.WatchChan, timeout time.Duration) (*clientv3.Event, error) {
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, errors.New("watch channel closed")
		}
		if err := resp.Err(); err != nil {
			return nil, err
		}
		if len(resp.Events) != 1 {
			return nil, fmt.Errorf("want one event per response here, got %d", len(resp.Events))
		}
		return resp.Events[0], nil
	case <-time.After(timeout):
		return nil, errors.New("no watch event in time")
	}
}

func watch(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	start, err := cli.Get(ctx, "w/")
	if err != nil {
		return err
	}
	ch := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(start.Header.Revision+1))
	deletesOnly := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithRev(start.Header.Revision+1))
	if _, err := cli.Put(ctx, "w/1", "a"); err != nil {
		return err
	}
	if _, err := cli.Put(ctx, "w/1", "b"); err != nil {
		return err
	}
	if _, err := cli.Delete(ctx, "w/1"); err != nil {
		return err
	}
	var last int64
	for i, want := range []struct {
		typ       mvccpb.Event_EventType
		value     string
		prevValue string
	}{{mvccpb.PUT, "a", ""}, {mvccpb.PUT, "b", "a"}, {mvccpb.DELETE, "", "b"}} {
		ev, err := nextEvent(ch, 5*time.Second)
		if err != nil {
			return fmt.Errorf("event %d: %v", i, err)
		}
		prev := ""
		if ev.PrevKv != nil {
			prev = string(ev.PrevKv.Value)
		}
		if ev.Type != want.typ || string(ev.Kv.Value) != want.value || prev != want.prevValue || ev.Kv.ModRevision <= last {
			return fmt.Errorf("event %d: %v %q prev %q at %d", i, ev.Type, ev.Kv.Value, prev, ev.Kv.ModRevision)
		}
		last = ev.Kv.ModRevision
	}
	ev, err := nextEvent(deletesOnly, 5*time.Second)
	if err != nil {
		return fmt.Errorf("filtered watch: %v", err)
	}
	if ev.Type != mvccpb.DELETE || ev.Kv.ModRevision != last {
		return fmt.Errorf("filtered watch: %v at %d", ev.Type, ev.Kv.ModRevision)
	}

	progress := cli.Watch(ctx, "w/progress")
	if err := cli.RequestProgress(ctx); err != nil {
		return err
	}
	select {
	case resp := <-progress:
		if !resp.IsProgressNotify() || resp.Header.Revision < last {
			return fmt.Errorf("progress notify: %v at %d", resp.IsProgressNotify(), resp.Header.Revision)
		}
	case <-time.After(5 * time.Second):
		return errors.New("no progress notification")
	}

	if _, err := cli.Compact(ctx, last); err != nil {
		return err
	}
	compacted := cli.Watch(ctx, "w/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	select {
	case resp := <-compacted:
		if resp.Err() != rpctypes.ErrCompacted || resp.CompactRevision != last {
			return fmt.Errorf("watch below compaction: %v, compact revision %d", resp.Err(), resp.CompactRevision)
		}
	case <-time.After(5 * time.Second):
		return errors.New("no compaction answer for a watch below it")
	}
	return nil
}

func lease(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	g, err := cli.Grant(ctx, 30)
	if err != nil {
		return err
	}
	if err := expect(g.TTL == 30, "granted TTL %d", g.TTL); err != nil {
		return err
	}
	if _, err := cli.Put(ctx, "lease/k", "v", clientv3.WithLease(g.ID)); err != nil {
		return err
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil {
		return err
	}
	if err := expect(ttl.GrantedTTL == 30 && ttl.TTL > 0 && len(ttl.Keys) == 1 && string(ttl.Keys[0]) == "lease/k",
		"time to live: %+v", ttl); err != nil {
		return err
	}
	once, err := cli.KeepAliveOnce(ctx, g.ID)
	if err != nil {
		return err
	}
	if err := expect(once.TTL == 30, "keepalive once TTL %d", once.TTL); err != nil {
		return err
	}
	kctx, kcancel := context.WithCancel(ctx)
	ka, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		kcancel()
		return err
	}
	select {
	case r := <-ka:
		if r == nil || r.ID != g.ID {
			kcancel()
			return fmt.Errorf("keepalive response: %v", r)
		}
	case <-time.After(5 * time.Second):
		kcancel()
		return errors.New("no keepalive response")
	}
	kcancel()
	list, err := cli.Leases(ctx)
	if err != nil {
		return err
	}
	found := false
	for _, l := range list.Leases {
		found = found || l.ID == g.ID
	}
	if err := expect(found, "lease %x not listed", g.ID); err != nil {
		return err
	}
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		return err
	}
	gone, err := cli.Get(ctx, "lease/k")
	if err != nil {
		return err
	}
	if err := expect(len(gone.Kvs) == 0, "key of a revoked lease still there"); err != nil {
		return err
	}

	// A lease nobody keeps alive expires and takes its key with it.
	short, err := cli.Grant(ctx, 2)
	if err != nil {
		return err
	}
	p, err := cli.Put(ctx, "lease/short", "v", clientv3.WithLease(short.ID))
	if err != nil {
		return err
	}
	w := cli.Watch(ctx, "lease/short", clientv3.WithRev(p.Header.Revision+1))
	ev, err := nextEvent(w, 15*time.Second)
	if err != nil {
		return fmt.Errorf("expiry: %v", err)
	}
	return expect(ev.Type == mvccpb.DELETE, "expiry event %v", ev.Type)
}

// twoSessions: two contenders, each with its own lease.
func twoSessions(cli *clientv3.Client) (*concurrency.Session, *concurrency.Session, error) {
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		return nil, nil, err
	}
	s2, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		s1.Close()
		return nil, nil, err
	}
	return s1, s2, nil
}

func mutex(cli *clientv3.Client) error {
	s1, s2, err := twoSessions(cli)
	if err != nil {
		return err
	}
	defer s1.Close()
	defer s2.Close()
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	m1 := concurrency.NewMutex(s1, "lock/m")
	m2 := concurrency.NewMutex(s2, "lock/m")
	if err := m1.Lock(ctx); err != nil {
		return err
	}
	acquired := make(chan error, 1)
	go func() { acquired <- m2.Lock(ctx) }()
	select {
	case err := <-acquired:
		return fmt.Errorf("second holder got the lock while the first held it (%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := m1.Unlock(ctx); err != nil {
		return err
	}
	select {
	case err := <-acquired:
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return errors.New("second holder never got the lock")
	}
	return m2.Unlock(ctx)
}

func election(cli *clientv3.Client) error {
	s1, s2, err := twoSessions(cli)
	if err != nil {
		return err
	}
	defer s1.Close()
	defer s2.Close()
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	e1 := concurrency.NewElection(s1, "elect/e")
	e2 := concurrency.NewElection(s2, "elect/e")
	if err := e1.Campaign(ctx, "one"); err != nil {
		return err
	}
	leader, err := e1.Leader(ctx)
	if err != nil {
		return err
	}
	if err := expect(string(leader.Kvs[0].Value) == "one", "leader %q", leader.Kvs[0].Value); err != nil {
		return err
	}
	observed := e1.Observe(ctx)
	select {
	case r := <-observed:
		if string(r.Kvs[0].Value) != "one" {
			return fmt.Errorf("first observed leader %q", r.Kvs[0].Value)
		}
	case <-time.After(10 * time.Second):
		return errors.New("observe reported no leader")
	}
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "two") }()
	if err := e1.Proclaim(ctx, "one again"); err != nil {
		return err
	}
	if err := e1.Resign(ctx); err != nil {
		return err
	}
	select {
	case err := <-won:
		if err != nil {
			return err
		}
	case <-time.After(10 * time.Second):
		return errors.New("the second candidate never won")
	}
	var seen []string
	for len(seen) < 2 {
		select {
		case r := <-observed:
			seen = append(seen, string(r.Kvs[0].Value))
		case <-time.After(10 * time.Second):
			return fmt.Errorf("observed only %q", seen)
		}
	}
	return expect(strings.Join(seen, ",") == "one again,two", "observed %q after the first leader", seen)
}

func stm(cli *clientv3.Client) error {
	ctx, cancel := ctxFor(30 * time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "stm/n", "0"); err != nil {
		return err
	}
	const workers, each = 3, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
					n, err := strconv.Atoi(s.Get("stm/n"))
					if err != nil {
						return err
					}
					s.Put("stm/n", strconv.Itoa(n+1))
					return nil
				}, concurrency.WithAbortContext(ctx))
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		return err
	}
	g, err := cli.Get(ctx, "stm/n")
	if err != nil {
		return err
	}
	return expect(string(g.Kvs[0].Value) == strconv.Itoa(workers*each), "counter %q after %d increments", g.Kvs[0].Value, workers*each)
}

func maintenance(cli *clientv3.Client, endpoints []string) error {
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	members, err := cli.MemberList(ctx)
	if err != nil {
		return err
	}
	if err := expect(len(members.Members) == len(endpoints), "%d members listed for %d endpoints", len(members.Members), len(endpoints)); err != nil {
		return err
	}
	st, err := cli.Status(ctx, endpoints[0])
	if err != nil {
		return err
	}
	if err := expect(st.Version == "3.4.23" && st.Leader != 0 && st.DbSize > 0 && st.RaftIndex > 0,
		"status %+v", st); err != nil {
		return err
	}
	h, err := cli.HashKV(ctx, endpoints[0], 0)
	if err != nil {
		return err
	}
	if err := expect(h.Hash != 0 && h.Header.Revision > 0, "hashkv %+v", h); err != nil {
		return err
	}
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		return err
	}
	if err := expect(len(alarms.Alarms) == 0, "alarms %v", alarms.Alarms); err != nil {
		return err
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		return err
	}
	n, err := io.Copy(ioutil.Discard, rc)
	rc.Close()
	if err != nil {
		return err
	}
	return expect(n > 0, "empty snapshot")
}

func auth(cli *clientv3.Client, endpoints []string) error {
	ctx, cancel := ctxFor(20 * time.Second)
	defer cancel()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "app"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "app", "app/", clientv3.GetPrefixRangeEnd("app/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "app"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			return fmt.Errorf("setup step %d: %v", i, err)
		}
	}
	alice := newClient(endpoints, "alice", "alicepw")
	defer alice.Close()
	root := newClient(endpoints, "root", "rootpw")
	defer root.Close()
	defer root.AuthDisable(context.Background())
	if _, err := alice.Put(ctx, "app/x", "1"); err != nil {
		return fmt.Errorf("granted put: %v", err)
	}
	if _, err := alice.Put(ctx, "other", "1"); err != rpctypes.ErrPermissionDenied {
		return fmt.Errorf("put outside the grant: %v", err)
	}
	if _, err := cli.Put(ctx, "app/y", "1"); err != rpctypes.ErrUserEmpty {
		return fmt.Errorf("put without a user: %v", err)
	}
	if _, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Username: "alice", Password: "wrong"}); err != rpctypes.ErrAuthFailed {
		return fmt.Errorf("wrong password: %v", err)
	}
	if _, err := root.AuthDisable(ctx); err != nil {
		return err
	}
	_, err := cli.Put(ctx, "app/z", "1")
	return err
}

func api(endpoints []string) {
	cli := newClient(endpoints, "", "")
	defer cli.Close()
	check("kv", kv(cli))
	check("txn", txn(cli))
	check("server errors", serverErrors(cli))
	check("watch", watch(cli))
	check("lease", lease(cli))
	check("mutex", mutex(cli))
	check("election", election(cli))
	check("stm", stm(cli))
	check("maintenance", maintenance(cli, endpoints))
	check("auth", auth(cli, endpoints))
}

// failover: a writer and a watcher through one client over every endpoint;
// after "killed" arrives on stdin (the test killed a member) the writer keeps
// going. Every put is retried until it succeeds (a put in flight when its
// member dies may fail); at the end the watch must have seen every put, in
// order, each revision once, and a linearizable read must see them all.
func failover(endpoints []string) {
	cli := newClient(endpoints, "", "")
	defer cli.Close()
	ctx, cancel := ctxFor(60 * time.Second)
	defer cancel()
	const total = 60
	start, err := cli.Get(ctx, "fo/")
	if err != nil {
		check("failover start", err)
		return
	}
	events := cli.Watch(ctx, "fo/", clientv3.WithPrefix(), clientv3.WithRev(start.Header.Revision+1))
	put := func(i int) error {
		for attempt := 0; ; attempt++ {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := cli.Put(pctx, fmt.Sprintf("fo/%03d", i), strconv.Itoa(i))
			pcancel()
			if err == nil || attempt == 20 {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	var putErr error
	for i := 0; i < total && putErr == nil; i++ {
		if i == total/2 {
			fmt.Println("kill")
			if !in.Scan() || in.Text() != "killed" {
				check("failover handshake", errors.New("no \"killed\" on stdin"))
				return
			}
		}
		putErr = put(i)
	}
	check("failover puts", putErr)
	// A put whose member died after applying it but before answering is
	// applied again by its retry: two events with one value, at two
	// revisions. The watch itself must deliver each revision once, in order.
	var seen []string
	var lastRev int64
	var order error
	for len(seen) < total && order == nil {
		select {
		case r := <-events:
			if err := r.Err(); err != nil {
				check("failover watch", err)
				return
			}
			for _, ev := range r.Events {
				if ev.Kv.ModRevision <= lastRev {
					order = fmt.Errorf("revision %d delivered after %d", ev.Kv.ModRevision, lastRev)
					break
				}
				lastRev = ev.Kv.ModRevision
				v := string(ev.Kv.Value)
				if len(seen) > 0 && seen[len(seen)-1] == v {
					continue
				}
				if v != strconv.Itoa(len(seen)) {
					order = fmt.Errorf("put %s arrived where put %d was due", v, len(seen))
					break
				}
				seen = append(seen, v)
			}
		case <-time.After(15 * time.Second):
			order = fmt.Errorf("saw %d of %d puts", len(seen), total)
		}
	}
	check("failover watch", order)
	all, err := cli.Get(ctx, "fo/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err == nil {
		err = expect(all.Count == total, "%d of %d keys after failover", all.Count, total)
	}
	check("failover read", err)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: clientv3-check api|failover <endpoint,...>")
		os.Exit(2)
	}
	endpoints := strings.Split(os.Args[2], ",")
	switch os.Args[1] {
	case "api":
		api(endpoints)
	case "failover":
		failover(endpoints)
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n", os.Args[1])
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}
