/**
 * api: etcd's client-facing surface over a member: the gRPC services (KV,
 * Watch, Lease, Cluster, Maintenance, Auth, grpc.health.v1) and the HTTP
 * endpoints (/health, /version, /metrics, /debug/vars, /config/local/log) on the client
 * port. Handlers validate requests as etcd does, identify the caller (token
 * or TLS CN), and map every failure through the one error table (errors.ts)
 * to etcd's gRPC code and exact message.
 */
export { ClientApi, type ClientApiOptions } from './client-api.js';
export { etcdStatus, statusOf, type EtcdStatus } from './errors.js';
export { checkHealth, httpHandler, type HttpRoute } from './http.js';
