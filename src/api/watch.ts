/**
 * The Watch service: one bidirectional stream carries many watchers, as in
 * etcd 3.4's serverWatchStream. Create requests are answered with `created`
 * in the order they arrive (before any event of that watcher); an empty key
 * means "\x00" and a range end of "\x00" means "every key from key on";
 * cancel answers `canceled`; a progress request answers with watch id -1 once
 * every watcher of the stream is synced. Watchers created with
 * progress_notify get an empty response every progress interval unless
 * events went out since the last one; responses of watchers created with
 * `fragment` are split below --max-request-bytes plus 512 KiB, as etcd splits them.
 *
 * Memory is bounded: responses are pulled from the watch stream only while
 * the HTTP/2 stream accepts writes; a watcher whose queue fills becomes a
 * victim in the store and catches up later.
 */
import { failpointHoldMs, grpcOverheadBytes, rpcErrors } from '../base/index.js';
import { GrpcStatus, bidiStreaming, grpcErrorText, type ServerDuplexCall, type ServiceHandlers } from '../grpc/index.js';
import { etcdserverpb, mvccpb } from '../pb/index.js';
import { ServerError, authChecks, isAuthError, type EtcdServer, type RequestContext } from '../server/index.js';
import { callerAuthInfo, checkCall, guard, tokenApplied, whenLeaderLost } from './call-context.js';

type WatchMethods = typeof etcdserverpb.WatchService.methods;
type WatchStreamOf<S> = S extends { newWatchStream(): infer W } ? W : never;
type MvccWatchResponse = ReturnType<WatchStreamOf<EtcdServer['watchable']>['next']>;

const invalidWatchId = -1;
/** How often a deferred progress request (watchers not yet synced) is retried. */
const progressRetryMs = 100;

export function watchService(s: EtcdServer): ServiceHandlers<WatchMethods> {
  return {
    Watch: bidiStreaming((call) =>
      guard(async () => {
        checkCall(s, call, false);
        // The token is read for each watch created, as etcd 3.4 does: one it refuses cancels that watch, not the stream.
        await tokenApplied(s, call);
        await new WatchSession(s, call, () => callerAuthInfo(s, call)).run();
      }),
    ),
  };
}

/**
 * Why a watch was not created. A refusal by auth is its gRPC error as grpc-go
 * prints it ("rpc error: code = PermissionDenied desc = etcdserver:
 * permission denied"), which is what etcd 3.4 puts there; any other error
 * its own text.
 */
function cancelReasonOf(err: unknown): string {
  if (isAuthError(err)) {
    const e = authRefusals[err.code as keyof typeof authRefusals] ?? rpcErrors.PermissionDenied;
    return grpcErrorText(GrpcStatus[e.status], e.message);
  }
  return err instanceof Error ? err.message : String(err);
}

const authRefusals = {
  InvalidAuthToken: rpcErrors.InvalidAuthToken,
  AuthOldRevision: rpcErrors.AuthOldRevision,
  UserEmpty: rpcErrors.UserEmpty,
} as const;

function varintBytes(n: number): number {
  let bytes = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) bytes++;
  return bytes;
}

class WatchSession {
  private readonly ws: WatchStreamOf<EtcdServer['watchable']>;
  /** Watchers with progress_notify: true when the next tick should send a progress response. */
  private readonly progress = new Map<number, boolean>();
  private readonly fragment = new Set<number>();
  /** Each live watcher's creation number: a response held at a failpoint is not sent to a watcher canceled meanwhile. */
  private readonly incarnations = new Map<number, number>();
  private created = 0;
  private closed = false;
  private wake: (() => void) | undefined;
  private deferredProgress = false;
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly s: EtcdServer,
    private readonly call: ServerDuplexCall<etcdserverpb.WatchRequest, etcdserverpb.WatchResponse>,
    private readonly caller: () => RequestContext['user'],
  ) {
    this.ws = s.watchable.newWatchStream();
    this.ws.onReady = () => this.kick();
  }

  async run(): Promise<void> {
    // A member named corrupt, or repairing its backend, serves no watch: the stream ends with "etcdserver: corrupt cluster".
    if (this.s.refusesReads) throw new ServerError('Corrupt');
    const unsubscribe = this.s.onRefusingReads(() => {
      this.corrupted = true;
      this.close();
    });
    this.timers.push(setInterval(() => this.progressTick(), this.s.cfg.experimentalWatchProgressNotifyIntervalMs));
    const stopLeaderChecks = whenLeaderLost(this.s, this.call, () => {
      this.leaderLost = true;
      this.close();
    });
    const pump = this.pump();
    // The session may close from this side (leader lost, member named
    // corrupt) while the client sends nothing: requests are raced with that.
    const closedHere = new Promise<'closed'>((resolve) => (this.closedHere = () => resolve('closed')));
    try {
      const requests = this.call[Symbol.asyncIterator]();
      while (!this.closed) {
        const next = requests.next();
        // If the session closes first, the read left pending may fail later: it is not an error then.
        next.catch(() => undefined);
        const r = await Promise.race([next, closedHere]);
        if (r === 'closed' || r.done === true || this.closed) break;
        this.handle(r.value);
      }
      // A client's half-close ends its requests, not the stream: as etcd,
      // events keep flowing until the client cancels or the stream closes.
      await this.untilClosedOrCancelled();
    } finally {
      unsubscribe();
      stopLeaderChecks();
      this.close();
      await pump;
    }
    if (this.corrupted) throw new ServerError('Corrupt');
    if (this.leaderLost) throw new ServerError('NoLeader');
  }

  private leaderLost = false;
  private corrupted = false;
  private closedHere: (() => void) | undefined;
  private onClosed: (() => void) | undefined;

  private untilClosedOrCancelled(): Promise<void> {
    const signal = this.call.signal;
    if (this.closed || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal.removeEventListener('abort', done);
        this.onClosed = undefined;
        resolve();
      };
      signal.addEventListener('abort', done);
      this.onClosed = done;
    });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.ws.close();
    this.kick();
    this.closedHere?.();
    this.onClosed?.();
  }

  private kick(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private handle(req: etcdserverpb.WatchRequest): void {
    const u = req.requestUnion;
    if (u === undefined) return;
    switch (u.case) {
      case 'createRequest':
        this.create(u.value);
        break;
      case 'cancelRequest':
        this.cancel(u.value.watchId);
        break;
      case 'progressRequest':
        this.requestProgress();
        break;
      default:
        break;
    }
  }

  private send(resp: etcdserverpb.WatchResponse): void {
    if (!this.call.closed) this.call.write(resp);
  }

  private create(creq: etcdserverpb.WatchCreateRequest): void {
    const key = creq.key.length === 0 ? new Uint8Array([0]) : creq.key;
    let denied: Error | undefined;
    try {
      denied = authChecks.watchCreate(this.s.auth, this.caller(), creq.key, creq.rangeEnd);
    } catch (e) {
      if (!isAuthError(e)) throw e;
      denied = e;
    }
    if (denied !== undefined) {
      this.send(
        etcdserverpb.WatchResponse.create({
          header: this.s.header(this.ws.rev()),
          watchId: invalidWatchId,
          created: true,
          canceled: true,
          cancelReason: cancelReasonOf(denied),
        }),
      );
      return;
    }
    const rev = this.ws.rev();
    try {
      const id = this.ws.watch({
        id: creq.watchId,
        key,
        rangeEnd: creq.rangeEnd,
        startRevision: creq.startRevision,
        filters: creq.filters,
        prevKv: creq.prevKv,
      });
      if (creq.progressNotify) this.progress.set(id, true);
      if (creq.fragment) this.fragment.add(id);
      this.incarnations.set(id, ++this.created);
      this.send(etcdserverpb.WatchResponse.create({ header: this.s.header(rev), watchId: id, created: true }));
    } catch (e) {
      this.send(
        etcdserverpb.WatchResponse.create({
          header: this.s.header(rev),
          watchId: invalidWatchId,
          created: true,
          canceled: true,
          cancelReason: cancelReasonOf(e),
        }),
      );
    }
  }

  private cancel(id: number): void {
    try {
      this.ws.cancel(id);
    } catch {
      // etcd answers nothing for an unknown watch id.
      return;
    }
    this.progress.delete(id);
    this.fragment.delete(id);
    this.incarnations.delete(id);
    this.send(etcdserverpb.WatchResponse.create({ header: this.s.header(this.ws.rev()), watchId: id, canceled: true }));
  }

  private requestProgress(): void {
    if (this.ws.requestProgressAll()) {
      this.deferredProgress = false;
      return;
    }
    // Some watcher is still catching up: answer once it is synced, never before its events.
    if (!this.deferredProgress) {
      this.deferredProgress = true;
      const retry = (): void => {
        if (this.closed || !this.deferredProgress) return;
        if (this.ws.requestProgressAll()) this.deferredProgress = false;
        else setTimeout(retry, progressRetryMs).unref();
      };
      setTimeout(retry, progressRetryMs).unref();
    }
  }

  private progressTick(): void {
    for (const [id, due] of this.progress) {
      if (due) this.ws.requestProgress(id);
      this.progress.set(id, true);
    }
  }

  private async pump(): Promise<void> {
    while (!this.closed) {
      const r = this.ws.next();
      if (r === undefined) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.ws.pending > 0 || this.closed) this.kick();
        });
        continue;
      }
      const holdMs = failpointHoldMs('beforeSendWatchResponse');
      if (holdMs > 0) {
        const incarnation = this.incarnations.get(r.watchId);
        await new Promise((resolve) => setTimeout(resolve, holdMs));
        if (this.closed) break;
        // Canceled meanwhile (maybe created again under its id): as in etcd, its old response goes nowhere.
        if (r.watchId !== invalidWatchId && this.incarnations.get(r.watchId) !== incarnation) continue;
      }
      this.deliver(r);
      if (this.call.bufferedBytes > 0 && !this.call.closed) {
        // Hold the next pull until HTTP/2 took this one: the store's queue (bounded) absorbs the rest.
        await Promise.race([this.call.drained(), new Promise<void>((resolve) => (this.wake = resolve))]);
      }
    }
  }

  private deliver(r: NonNullable<MvccWatchResponse>): void {
    const resp = etcdserverpb.WatchResponse.create({
      header: this.s.header(r.revision),
      watchId: r.watchId,
      events: r.events,
      compactRevision: r.compactRevision,
      canceled: r.compactRevision !== 0,
    });
    if (r.events.length > 0 && this.progress.has(r.watchId)) this.progress.set(r.watchId, false);
    if (this.fragment.has(r.watchId)) this.sendFragments(resp);
    else this.send(resp);
  }

  /**
   * Splits a response whose encoding reaches --max-request-bytes plus gRPC's
   * overhead allowance (512 KiB), as etcd's sendFragments with the limit its
   * watch server gets: each fragment but the last as many events as keep it
   * under the limit (at least one).
   */
  private sendFragments(resp: etcdserverpb.WatchResponse): void {
    const limit = this.s.cfg.maxRequestBytes + grpcOverheadBytes;
    if (resp.events.length < 2 || etcdserverpb.WatchResponse.encode(resp).length < limit) {
      this.send(resp);
      return;
    }
    const base = etcdserverpb.WatchResponse.encode({ ...resp, events: [], fragment: true }).length;
    let chunk: mvccpb.Event[] = [];
    let size = base;
    for (const ev of resp.events) {
      const n = mvccpb.Event.encode(ev).length;
      // The field's tag, its length as a varint, the event.
      const evBytes = 1 + varintBytes(n) + n;
      if (chunk.length > 0 && size + evBytes >= limit) {
        this.send({ ...resp, events: chunk, fragment: true });
        chunk = [];
        size = base;
      }
      chunk.push(ev);
      size += evBytes;
    }
    this.send({ ...resp, events: chunk, fragment: false });
  }
}
