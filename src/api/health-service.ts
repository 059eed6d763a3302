/**
 * grpc.health.v1.Health, which etcd registers: Check answers SERVING for the
 * empty service name; Watch sends that status (SERVICE_UNKNOWN for another
 * name, as grpc-go's health server does) and stays open until the caller
 * leaves, since a member's status never changes while it serves. Its two one-field messages are encoded by hand (the package
 * name has dots, which the generator's namespaces cannot carry).
 */
import { GrpcError, GrpcStatus, serverStreaming, unary, type GrpcServer, type MethodDef } from '../grpc/index.js';
import { Reader, Writer } from '../pb/index.js';

interface HealthCheckRequest {
  service: string;
}

interface HealthCheckResponse {
  status: number;
}

const servingStatus = 1;
const serviceUnknownStatus = 3;

const requestCodec = {
  encode(m: HealthCheckRequest): Uint8Array {
    const w = new Writer(64);
    if (m.service !== '') {
      w.uint32(10);
      w.string(m.service);
    }
    return w.finish();
  },
  decode(b: Uint8Array): HealthCheckRequest {
    const r = new Reader(b);
    const m = { service: '' };
    while (r.pos < b.length) {
      const tag = r.tag(b.length);
      if (tag === 10) m.service = r.string(b.length);
      else r.skip(b.length);
    }
    return m;
  },
};

const responseCodec = {
  encode(m: HealthCheckResponse): Uint8Array {
    const w = new Writer(16);
    if (m.status !== 0) {
      w.uint32(8);
      w.int32(m.status);
    }
    return w.finish();
  },
  decode(b: Uint8Array): HealthCheckResponse {
    const r = new Reader(b);
    const m = { status: 0 };
    while (r.pos < b.length) {
      const tag = r.tag(b.length);
      if (tag === 8) m.status = r.int32(b.length);
      else r.skip(b.length);
    }
    return m;
  },
};

const healthMethods = {
  Check: {
    name: 'Check',
    path: '/grpc.health.v1.Health/Check',
    requestType: requestCodec,
    responseType: responseCodec,
    requestStream: false,
    responseStream: false,
  } as MethodDef<HealthCheckRequest, HealthCheckResponse>,
  Watch: {
    name: 'Watch',
    path: '/grpc.health.v1.Health/Watch',
    requestType: requestCodec,
    responseType: responseCodec,
    requestStream: false,
    responseStream: true,
  } as MethodDef<HealthCheckRequest, HealthCheckResponse>,
};

/** The health service's methods (for metrics that list every method). */
export const healthServiceMethods: Readonly<Record<string, MethodDef<unknown, unknown>>> = healthMethods;

export function addHealthService(grpc: GrpcServer): void {
  grpc.addService(healthMethods, {
    Check: unary((req) => {
      if (req.service !== '') return Promise.reject(new GrpcError(GrpcStatus.NOT_FOUND, 'unknown service'));
      return Promise.resolve({ status: servingStatus });
    }),
    Watch: serverStreaming(async (req, call) => {
      call.write({ status: req.service === '' ? servingStatus : serviceUnknownStatus });
      if (call.signal.aborted) return;
      await new Promise<void>((resolve) => call.signal.addEventListener('abort', () => resolve(), { once: true }));
    }),
  });
}
