// bbolt-check: Debian's go.etcd.io/bbolt (the version etcd 3.4.23 links)
// as the judge of the bbolt files etcd-ts writes, and as a writer of files
// for etcd-ts to read. bbolt-go.test.ts drives it.
//
//	bbolt-check check <file>          tx.Check(), then every bucket and entry
//	bbolt-check modify <file> <seed>  puts and deletes over several commits
//	bbolt-check write <file> <seed> [pageSize]  a new db over several commits
//
// check and write print the dump: "size <tx.Size()>", "inline <number of
// inline buckets>", then per bucket "bucket <hex name>" followed by
// "<hex key> <hex value>" lines; every problem is a line starting "ERROR".
// modify prints nothing on success.
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand"
	"os"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

func main() {
	if len(os.Args) < 3 {
		fail("usage: bbolt-check check|modify|write <file> [seed] [pageSize]")
	}
	var err error
	switch os.Args[1] {
	case "check":
		err = check(os.Args[2])
	case "modify":
		err = modify(os.Args[2], seedArg())
	case "write":
		pageSize := 0
		if len(os.Args) > 4 {
			pageSize, err = strconv.Atoi(os.Args[4])
			if err != nil {
				fail(err.Error())
			}
		}
		if err = write(os.Args[2], seedArg(), pageSize); err == nil {
			err = check(os.Args[2])
		}
	default:
		fail("unknown command " + os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func seedArg() int64 {
	if len(os.Args) < 4 {
		fail("a seed is needed")
	}
	seed, err := strconv.ParseInt(os.Args[3], 10, 64)
	if err != nil {
		fail(err.Error())
	}
	return seed
}

func fail(msg string) {
	fmt.Println("ERROR " + msg)
	os.Exit(1)
}

// check opens the file read-only as etcdctl snapshot status does, runs
// tx.Check, and dumps every bucket. Every entry is also looked up with Get,
// which goes down the branch pages by their keys, as a put or a range does.
func check(path string) error {
	db, err := bolt.Open(path, 0400, &bolt.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer db.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer out.Flush()
	return db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			fmt.Fprintf(out, "ERROR check: %v\n", e)
		}
		fmt.Fprintf(out, "size %d\n", tx.Size())
		inline := 0
		_ = tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			if b.Root() == 0 {
				inline++
			}
			return nil
		})
		fmt.Fprintf(out, "inline %d\n", inline)
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			fmt.Fprintf(out, "bucket %s\n", hex.EncodeToString(name))
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					fmt.Fprintf(out, "ERROR nested bucket %x in %x\n", k, name)
					return nil
				}
				if got := b.Get(k); !bytes.Equal(got, v) {
					fmt.Fprintf(out, "ERROR Get %x in %x gives a different value\n", k, name)
				}
				fmt.Fprintf(out, "%s %s\n", hex.EncodeToString(k), hex.EncodeToString(v))
				return nil
			})
		})
	})
}

// modify writes to an existing file as a later etcd would: in several
// commits, it deletes runs of keys (pages merge and are freed), puts new
// keys between old ones and at the end (pages split, the file grows), puts
// a value of several pages, and adds and removes buckets.
func modify(path string, seed int64) error {
	db, err := bolt.Open(path, 0600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	rng := rand.New(rand.NewSource(seed))
	for round := 0; round < 3; round++ {
		err := db.Update(func(tx *bolt.Tx) error {
			var names [][]byte
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, append([]byte(nil), name...))
				return nil
			})
			for _, name := range names {
				if err := modifyBucket(tx.Bucket(name), rng, round); err != nil {
					return err
				}
			}
			return modifyBuckets(tx, names, rng, round)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func modifyBucket(b *bolt.Bucket, rng *rand.Rand, round int) error {
	var keys [][]byte
	_ = b.ForEach(func(k, _ []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		return nil
	})
	// Delete a run of keys and every third key of the rest of the first half.
	if n := len(keys); n > 0 {
		start := rng.Intn(n)
		for i := start; i < n && i < start+n/4+1; i++ {
			if err := b.Delete(keys[i]); err != nil {
				return err
			}
		}
		for i := 0; i < n/2; i += 3 {
			if err := b.Delete(keys[i]); err != nil {
				return err
			}
		}
	}
	// Keys between the old ones (an extra byte after a kept key) and past the end.
	for i := 0; i < len(keys); i += 2 {
		k := append(append([]byte(nil), keys[i]...), byte(round))
		if err := b.Put(k, randomValue(rng, 300)); err != nil {
			return err
		}
	}
	for i := 0; i < 200; i++ {
		k := []byte(fmt.Sprintf("\xffmodified-%d-%05d", round, i))
		if err := b.Put(k, randomValue(rng, 100)); err != nil {
			return err
		}
	}
	return b.Put([]byte(fmt.Sprintf("\xfflarge-%d", round)), randomValue(rng, 3*4096+rng.Intn(20000)))
}

// modifyBuckets adds a bucket each round and deletes the one added two rounds before.
func modifyBuckets(tx *bolt.Tx, names [][]byte, rng *rand.Rand, round int) error {
	b, err := tx.CreateBucket([]byte(fmt.Sprintf("added-%d", round)))
	if err != nil {
		return err
	}
	for i := 0; i < 50*round; i++ {
		if err := b.Put([]byte(fmt.Sprintf("k%04d", i)), randomValue(rng, 80)); err != nil {
			return err
		}
	}
	if round == 2 {
		return tx.DeleteBucket([]byte("added-0"))
	}
	return nil
}

func randomValue(rng *rand.Rand, max int) []byte {
	v := make([]byte, rng.Intn(max+1))
	rng.Read(v)
	return v
}

// write builds a new db over several commits: etcd's bucket names, random
// small buckets (bbolt inlines them), empty buckets, 50,000 keys in one
// bucket, values of 1 MiB, and deletes, so that the freelist is not empty.
func write(path string, seed int64, pageSize int) error {
	db, err := bolt.Open(path, 0600, &bolt.Options{PageSize: pageSize})
	if err != nil {
		return err
	}
	defer db.Close()
	rng := rand.New(rand.NewSource(seed))
	etcd := []string{"key", "meta", "lease", "alarm", "cluster", "members", "members_removed", "auth", "authUsers", "authRoles"}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range etcd {
			if _, err := tx.CreateBucket([]byte(name)); err != nil {
				return err
			}
		}
		for i := 0; i < 5; i++ {
			name := randomValue(rng, 12)
			if b, _ := tx.CreateBucketIfNotExists(append(name, 'r')); b != nil {
				for j := 0; j < rng.Intn(6); j++ {
					_ = b.Put(append(randomValue(rng, 8), 'k'), randomValue(rng, 40))
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	rev := uint64(0)
	for round := 0; round < 6 && err == nil; round++ {
		err = db.Update(func(tx *bolt.Tx) error {
			return writeRound(tx, rng, round, &rev)
		})
	}
	return err
}

func revKey(main uint64) []byte {
	k := make([]byte, 17)
	binary.BigEndian.PutUint64(k, main)
	k[8] = '_'
	return k
}

func writeRound(tx *bolt.Tx, rng *rand.Rand, round int, rev *uint64) error {
	key := tx.Bucket([]byte("key"))
	n := 10000
	for i := 0; i < n; i++ {
		*rev++
		if err := key.Put(revKey(*rev), randomValue(rng, 120)); err != nil {
			return err
		}
	}
	// Compaction: drop a stretch of old revisions.
	for i := 0; i < n/3; i++ {
		if err := key.Delete(revKey(uint64(rng.Intn(int(*rev)) + 1))); err != nil {
			return err
		}
	}
	meta := tx.Bucket([]byte("meta"))
	if err := meta.Put([]byte("consistent_index"), revKey(*rev)[:8]); err != nil {
		return err
	}
	if err := meta.Put([]byte(fmt.Sprintf("large-%d", round)), randomValue(rng, 1<<20)); err != nil {
		return err
	}
	if round%2 == 1 {
		if err := meta.Delete([]byte(fmt.Sprintf("large-%d", round-1))); err != nil {
			return err
		}
	}
	lease := tx.Bucket([]byte("lease"))
	for i := 0; i < 20; i++ {
		if err := lease.Put(randomValue(rng, 8), randomValue(rng, 30)); err != nil && err != bolt.ErrKeyRequired {
			return err
		}
	}
	return nil
}
