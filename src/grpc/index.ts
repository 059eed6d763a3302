/**
 * grpc: a thin gRPC layer, server and client, wire-compatible with grpc-go
 * (etcdctl, clientv3) and @grpc/grpc-js (the npm etcd3 client). The client
 * runs over node:http2; the server frames HTTP/2 itself (h2-connection.ts),
 * because node:http2's per-stream machinery cost more CPU per call than the
 * member behind it.
 *
 * Promises:
 * - The gRPC over HTTP/2 protocol: length-prefixed messages, grpc-status and
 *   grpc-message (percent-encoded) in trailers, trailers-only responses for
 *   calls that fail before a message, grpc-timeout deadlines, `-bin` metadata,
 *   gzip-compressed requests accepted (responses are never compressed).
 * - grpc-go's exact texts for the errors clients print: unknown service or
 *   method, request unmarshalling, message size limits, RST_STREAM codes.
 * - Bounded memory: reads are pull-based (a stream stops crediting flow-control
 *   window while a message waits for its reader, so the peer is held back),
 *   writes report backpressure (write() returns false, drained() resolves),
 *   message sizes and connections are capped.
 * - Keepalive: the server pings idle connections and enforces grpc-go's ping
 *   policy (GOAWAY ENHANCE_YOUR_CALM "too_many_pings"); the client can ping too.
 * - ClientPortServer serves gRPC and HTTP (HTTP/1.1 and non-gRPC HTTP/2) on one
 *   port, plain or TLS, as etcd's cmux does: a connection's first request
 *   decides which serves it.
 * - gRPC connections take any :authority, as Go servers do (grpc-go dialing
 *   "http://host:port", as etcdctl 3.4's endpoint commands do). A non-gRPC
 *   HTTP/2 connection goes to node:http2; if its :authority is one nghttp2
 *   refuses, its header blocks get an acceptable authority of the same length
 *   (authority-shim.ts, hpack.ts).
 *
 * Message codecs are parameters (MethodDef is structurally src/pb's MethodInfo);
 * this module imports nothing but src/base and Node.
 */
export {
  GrpcStatus,
  GrpcError,
  toGrpcError,
  statusName,
  grpcErrorText,
  encodeGrpcMessage,
  decodeGrpcMessage,
  deadlineExceededMessage,
  cancelledMessage,
  type GrpcStatusCode,
  type OutgoingMetadata,
} from './status.js';
export { Metadata } from './metadata.js';
export {
  frameMessage,
  encodeTimeout,
  decodeTimeout,
  frameHeaderBytes,
  type MessageCodec,
  type MethodDef,
} from './framing.js';
export type {
  CallType,
  PeerInfo,
  ServerCall,
  ServerWritableCall,
  ServerReadableCall,
  ServerDuplexCall,
  UnaryHandler,
  ServerStreamHandler,
  ClientStreamHandler,
  BidiHandler,
  CallInfo,
  CallStats,
  CallObserver,
} from './server-call.js';
export { EncodedMessage } from './server-call.js';
export {
  GrpcServer,
  unary,
  serverStreaming,
  clientStreaming,
  bidiStreaming,
  type GrpcServerOptions,
  type MethodHandler,
  type ServiceHandlers,
} from './server.js';
export {
  ClientPortServer,
  HttpBodyError,
  reloadCrlAtConnections,
  type ClientPortOptions,
  type ClientPortTlsOptions,
  type HttpHandler,
  type ListenTarget,
} from './client-port.js';
export {
  GrpcChannel,
  ConnectivityState,
  type ChannelOptions,
  type ChannelTlsOptions,
} from './channel.js';
export type {
  CallOptions,
  ClientReadableCall,
  ClientWritable,
  ClientDuplexCall,
  ClientStreamingCall,
} from './client-call.js';
