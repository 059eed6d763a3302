/**
 * Per-call gRPC metrics with etcd 3.4's names (go-grpc-prometheus and
 * etcd's own interceptors): grpc_server_{started,handled,msg_received,msg_sent}_total
 * labelled by grpc_type/grpc_service/grpc_method(/grpc_code),
 * etcd_server_client_requests_total{type,client_api_version} and the client
 * byte counters. As etcd does, every method of the services registered before
 * the metrics (KV, Watch, Lease, Cluster, Maintenance, Auth, Health) shows at
 * zero for every code from the start; Lock and Election appear once called,
 * with a series per code they ended with. A streaming call's messages and
 * bytes count as they pass; a unary call's when it ends.
 *
 * Every series a call touches is resolved once per method (and API version),
 * so a call costs a Map lookup by its path and a few number increments.
 */
import { statusName, type CallObserver, type CallStats, type CallType, type MethodDef } from '../grpc/index.js';
import type { CounterChild, Registry } from '../base/index.js';
import { etcdserverpb } from '../pb/index.js';
import { healthServiceMethods } from './health-service.js';

const frameHeaderBytes = 5;
/** The gRPC status codes, 0 (OK) through 16 (Unauthenticated). */
const codeCount = 17;
/** Distinct client-api-version values tracked; later ones count as "unknown" (the header is the client's to choose). */
const apiVersionsMax = 64;

interface MethodInfo {
  readonly path: string;
  readonly service: string;
  readonly method: string;
  readonly type: CallType;
}

interface MethodSeries {
  readonly started: CounterChild;
  /** The handled series of a code; a method registered after the metrics gets it at its first call ending so. */
  readonly handledOf: (code: number) => CounterChild;
  readonly received: CounterChild;
  readonly sent: CounterChild;
}

function callTypeOf(def: MethodDef<unknown, unknown>): CallType {
  if (def.requestStream) return def.responseStream ? 'bidi_stream' : 'client_stream';
  return def.responseStream ? 'server_stream' : 'unary';
}

function infoOf(def: MethodDef<unknown, unknown>): MethodInfo {
  const slash = def.path.lastIndexOf('/');
  return { path: def.path, service: def.path.slice(1, slash), method: def.path.slice(slash + 1), type: callTypeOf(def) };
}

/** The services etcd registers before it initializes its gRPC metrics. */
const preregistered: readonly Readonly<Record<string, MethodDef<unknown, unknown>>>[] = [
  etcdserverpb.KVService.methods,
  etcdserverpb.WatchService.methods,
  etcdserverpb.LeaseService.methods,
  etcdserverpb.ClusterService.methods,
  etcdserverpb.MaintenanceService.methods,
  etcdserverpb.AuthService.methods,
  healthServiceMethods,
];

/** Served here, but added after 3.4: shown once called, as Lock and Election are. */
const notIn34 = new Set(['/etcdserverpb.Auth/AuthStatus']);

export function callMetrics(r: Registry): CallObserver {
  const labelNames = ['grpc_type', 'grpc_service', 'grpc_method'];
  const started = r.counter('grpc_server_started_total', 'Total number of RPCs started on the server.', labelNames);
  const handled = r.counter('grpc_server_handled_total', 'Total number of RPCs completed on the server, regardless of success or failure.', [...labelNames, 'grpc_code']);
  const received = r.counter('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', labelNames);
  const sent = r.counter('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', labelNames);
  const bytesIn = r.counter('etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.').labels({});
  const bytesOut = r.counter('etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.').labels({});
  const clientRequests = r.counter('etcd_server_client_requests_total', 'The total number of client requests per client version.', ['type', 'client_api_version']);

  const byPath = new Map<string, MethodSeries>();
  const seriesOf = (m: MethodInfo, allCodes = false): MethodSeries => {
    const known = byPath.get(m.path);
    if (known !== undefined) return known;
    const labels = { grpc_type: m.type, grpc_service: m.service, grpc_method: m.method };
    const byCode: (CounterChild | undefined)[] = new Array<CounterChild | undefined>(codeCount).fill(undefined);
    const handledOf = (code: number): CounterChild => (byCode[code] ??= handled.labels({ ...labels, grpc_code: statusName(code) }));
    if (allCodes) for (let code = 0; code < codeCount; code++) handledOf(code);
    const s: MethodSeries = { started: started.labels(labels), handledOf, received: received.labels(labels), sent: sent.labels(labels) };
    byPath.set(m.path, s);
    return s;
  };
  for (const methods of preregistered) {
    for (const def of Object.values(methods)) if (!notIn34.has(def.path)) seriesOf(infoOf(def), true);
  }

  const requests = { unary: new Map<string, CounterChild>(), stream: new Map<string, CounterChild>() };
  const countRequest = (type: 'unary' | 'stream', version: string | string[] | undefined): void => {
    // etcd counts the first value of a key sent more than once.
    const v = (typeof version === 'string' ? version : version?.[0]) ?? 'unknown';
    const seen = requests[type];
    let c = seen.get(v);
    if (c === undefined) {
      const label = seen.size < apiVersionsMax ? v : 'unknown';
      c = seen.get(label) ?? clientRequests.labels({ type, client_api_version: label });
      seen.set(label, c);
    }
    c.inc();
  };

  return {
    started: (m, headers) => {
      seriesOf(m).started.inc();
      countRequest(m.type === 'unary' ? 'unary' : 'stream', headers['client-api-version']);
    },
    // A stream's messages count as they pass (a watch open for days shows its traffic), as in etcd.
    message: (m, direction, bytes) => {
      const s = seriesOf(m);
      if (direction === 'in') {
        s.received.inc();
        bytesIn.inc(bytes);
      } else {
        s.sent.inc();
        bytesOut.inc(bytes);
      }
    },
    handled: (st: CallStats) => {
      const s = seriesOf(st);
      s.handledOf(st.code).inc();
      if (st.type !== 'unary') return;
      s.received.inc(st.messagesIn);
      s.sent.inc(st.messagesOut);
      // etcd counts message sizes, without gRPC's 5-byte frame headers.
      bytesIn.inc(Math.max(0, st.bytesIn - frameHeaderBytes * st.messagesIn));
      bytesOut.inc(Math.max(0, st.bytesOut - frameHeaderBytes * st.messagesOut));
    },
  };
}
