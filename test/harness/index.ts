/**
 * harness: real etcd 3.4 and etcd-ts members as child processes, for the e2e,
 * cluster, robustness and differential tests.
 *
 * Promises:
 * - Members listen on 127.0.0.1 ports found free just before the start (etcd
 *   cannot listen on port 0); a start that lost its port to someone else is
 *   retried with new ports (startCluster, up to 3 times).
 * - Readiness is a bounded poll of GET /health (`until: 'healthy'`, a leader and
 *   no alarm) or of any HTTP answer (`until: 'serving'`, for members without
 *   quorum); a member that exits first fails the wait at once with its log tail.
 * - Each member's stdout+stderr is appended to its log file (one marker line per
 *   start). A Workspace keeps data dirs and logs when a test failed and removes
 *   them otherwise.
 * - Every spawned process (members and etcdctl) is SIGKILLed when the test
 *   process exits, even on an uncaught error or SIGTERM from the test runner.
 *
 * API:
 *
 *   // members and clusters
 *   type MemberKind = 'etcd' | 'etcd-ts'
 *   startCluster(opts: ClusterOptions): Promise<Cluster>
 *     ClusterOptions { kind; size?=1; extraFlags?; names?; dir?; readyTimeoutMs?=60000; until?; env?; memberEnv?(name); faultProxy?; nodeArgs?; tls? }
 *   class Cluster { kind; dir; members: Member[]; endpoints; clientUrls; peerUrls;
 *     member(i); leader(timeoutMs?): Promise<Member>; net (FaultNet, with faultProxy); stop(); close({ keepFiles? });
 *     replaceMember(i, specChanges): Member (a new process spec in slot i: member replacement) }
 *   class Member { kind; name; dataDir; logFile; endpoint ('127.0.0.1:P'); clientUrl;
 *     peerUrl; pid; running; exitInfo; flags(): string[];
 *     start({ wait?, timeoutMs?, until?, env? }); waitReady({ timeoutMs?, until? });
 *     stop(timeoutMs?=10000) (SIGTERM, then SIGKILL); kill() (SIGKILL); restart();
 *     pause() / resume() (SIGSTOP / SIGCONT); signal(sig); waitExit(); logTail(lines) }
 *   getHealth(clientUrl, timeoutMs?, tls?, query?): Promise<'true' | 'false' | undefined>
 *   MemberTls { client?; peer?; ca?; cert?; key? }   // ClusterOptions.tls: https URLs, and
 *     what the harness presents to check health (certificate flags go in extraFlags)
 *
 *   // peer faults (fault-proxy.ts): with faultProxy, each member advertises a proxy's port as its
 *   // peer URL and listens on listenPeerUrl; links are directed and named by member names
 *   class FaultNet { block(from, to); unblock(from, to); delay(from, to, ms); set(from, to, verdict);
 *     isolate(name); heal(); verdict(from, to) }   // usable alone: new FaultNet({ routes, members })
 *
 *   // files and cleanup, per test file
 *   useWorkspace(label): Workspace   // registers afterEach/after hooks in the current suite
 *   class Workspace { dir; startCluster(opts); noteResult(t); markFailed(); close() }
 *
 *   // etcdctl (ETCDCTL_API=3, --endpoints=..., hard timeout)
 *   etcdctl(args, { endpoints, timeoutMs?=15000, stdin?, env? }): Promise<CtlResult>
 *     CtlResult { code; signal; stdout; stdoutBytes; stderr; timedOut }
 *     CtlOptions.keepStdinOpen leaves stdin open for CtlProcess.write(text) (watch -i)
 *   etcdctlBackground(args, opts): CtlProcess { write(text); stdout(); waitFor(pred, timeoutMs?); stop(signal?='SIGINT'); done }
 *
 *   // raw gRPC (src/grpc + src/pb)
 *   methods.{kv,watch,lease,cluster,maintenance,auth,lock,election}.<Method>
 *   openChannel(endpoint, connectTimeoutMs?): GrpcChannel
 *   memberStatus(endpoint, timeoutMs?): Promise<StatusResponse>
 *   outcome(promise): Promise<{ ok: true, value } | { ok: false, code, message }>
 *
 *   // comparing two servers' answers (compare.ts)
 *   compared(answer, type, normalize?): Compared { status; message; decoded; bytes }   // header ids left out
 *   plain(value), withoutIds(bytes)
 *
 *   // seeded random choices (random.ts)
 *   class Choices { rand; chance(p); pick(xs) }   // base of the random differential tests' generators
 *
 *   // environment
 *   etcdBin, etcdctlBin, etcdTsScript; etcdMissing(), etcdctlMissing(): skip reason or false
 *   freePort(), freePorts(n); liveChildren()
 *
 * Typical use:
 *
 *   const ws = useWorkspace('kv');
 *   let c: Cluster;
 *   before(async () => { c = await ws.startCluster({ kind: 'etcd-ts', size: 3 }); });
 *   test('...', async () => { await c.member(0).kill(); await c.member(0).start(); ... });
 */
export { freePort, freePorts } from './ports.js';
export { liveChildren } from './reaper.js';
export {
  Member,
  delay,
  describeExit,
  etcdBin,
  etcdMissing,
  etcdTsScript,
  getHealth,
  type ExitInfo,
  type MemberKind,
  type MemberSpec,
  type MemberTls,
  type Readiness,
  type WaitReadyOptions,
} from './member.js';
export { FaultNet, type FaultNetOptions, type LinkVerdict, type ProxyMember } from './fault-proxy.js';
export { Cluster, Workspace, startCluster, useWorkspace, type ClusterOptions } from './cluster.js';
export { CtlProcess, etcdctl, etcdctlBackground, etcdctlBin, etcdctlMissing, type CtlOptions, type CtlResult } from './etcdctl.js';
export { memberStatus, methods, openChannel, outcome, type Outcome } from './rpc.js';
export { RawGrpc, RawStream, type RawAnswer } from './raw-grpc.js';
export { stopPair, useEtcdPair, useServerPair, type EtcdPair } from './pair.js';
export { compared, plain, withoutIds, type Compared } from './compare.js';
export { Choices } from './random.js';
