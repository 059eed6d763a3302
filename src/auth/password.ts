/**
 * The API side of passwords: turn a UserAdd / UserChangePassword request
 * into the one that is proposed, with the password bcrypt-hashed on a worker
 * thread and carried base64-encoded in `hashedPassword` (etcd 3.5's field),
 * the plaintext field emptied. A client may send `hashedPassword` itself
 * with an empty `password` (etcd 3.5+): that hash is kept as sent.
 */
import { etcdserverpb } from '../pb/index.js';
import type { BcryptPool } from './bcrypt-pool.js';

/** hashedPassword's wire form: standard base64 of the bcrypt hash string. */
export function encodeHashedPassword(bcryptHash: string): string {
  return Buffer.from(bcryptHash, 'utf8').toString('base64');
}

export async function hashPasswordForProposal(pool: BcryptPool, password: string, cost: number): Promise<string> {
  return encodeHashedPassword(await pool.hash(password, cost));
}

/** The AuthUserAddRequest to propose: never a plaintext password. */
export async function prepareUserAdd(
  pool: BcryptPool,
  r: etcdserverpb.AuthUserAddRequest,
  cost: number,
): Promise<etcdserverpb.AuthUserAddRequest> {
  if (r.options?.noPassword === true) return etcdserverpb.AuthUserAddRequest.create({ name: r.name, options: { noPassword: true } });
  // A client's hashedPassword (etcd 3.5's field) is the bcrypt string itself, stored as given.
  const keepClientHash = r.password === '' && r.hashedPassword !== '';
  const hashedPassword = keepClientHash ? encodeHashedPassword(r.hashedPassword) : await hashPasswordForProposal(pool, r.password, cost);
  return etcdserverpb.AuthUserAddRequest.create({ name: r.name, options: r.options, hashedPassword });
}

/** The AuthUserChangePasswordRequest to propose: never a plaintext password. */
export async function prepareUserChangePassword(
  pool: BcryptPool,
  r: etcdserverpb.AuthUserChangePasswordRequest,
  cost: number,
): Promise<etcdserverpb.AuthUserChangePasswordRequest> {
  const keepClientHash = r.password === '' && r.hashedPassword !== '';
  const hashedPassword = keepClientHash ? encodeHashedPassword(r.hashedPassword) : await hashPasswordForProposal(pool, r.password, cost);
  return etcdserverpb.AuthUserChangePasswordRequest.create({ name: r.name, hashedPassword });
}
