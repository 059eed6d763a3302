/**
 * Member URLs as etcd reads them: Go's net/url.Parse, then the checks of
 * etcd's types.NewURLs, and the URL as Go prints it back (url.String()), which
 * is what etcd keeps in its member list and hashes into a member id. So a
 * URL is trimmed of blanks, its scheme lower-cased, and "http://h:1/" (a path
 * "/") refused, where WHATWG's URL parser would keep blanks and capitals out
 * of the picture differently and take the slash as no path at all.
 *
 * Only what a member URL can hold is modelled: scheme, user info, host and
 * port, query and fragment; a URL with a path or without a host is refused
 * by NewURLs anyway, so paths and opaque URLs are parsed only as far as Go
 * would fail them first. User info, query and fragment are printed as given
 * (Go re-escapes a few characters of them; no member URL has them).
 */
import { ConfigError } from './config.js';

interface GoUrl {
  readonly scheme: string;
  readonly opaque: string;
  readonly user: string | undefined;
  readonly host: string;
  readonly path: string;
  readonly rawQuery: string;
  readonly forceQuery: boolean;
  readonly fragment: string | undefined;
}

const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const isDigit = (c: string): boolean => c >= '0' && c <= '9';
const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);

/** The characters Go's url package leaves as they are in a host name (besides letters and digits). */
const hostChars = new Set("!$&'()*+,;=:[]<>\"-_.~");
const userinfoChars = new Set("-._:~!$&'()*+,;=%@");

class UrlError extends Error {}

/** Go's unescape: bad escapes fail; in a host, so does any other character Go would escape. */
function checkEscapes(s: string, host: boolean): void {
  for (let i = 0; i < s.length; ) {
    const c = s[i] ?? '';
    if (c === '%') {
      if (!isHex(s[i + 1]) || !isHex(s[i + 2])) throw new UrlError(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
      // In a host, only %25 or an escaped non-ASCII byte.
      if (host && parseInt(s[i + 1] ?? '0', 16) < 8 && s.slice(i, i + 3) !== '%25') throw new UrlError(`invalid URL escape ${JSON.stringify(s.slice(i, i + 3))}`);
      i += 3;
      continue;
    }
    if (host && c.charCodeAt(0) < 0x80 && !isAlpha(c) && !isDigit(c) && !hostChars.has(c)) throw new UrlError(`invalid character ${JSON.stringify(c)} in host name`);
    i++;
  }
}

function validOptionalPort(port: string): boolean {
  if (port === '') return true;
  if (port[0] !== ':') return false;
  return [...port.slice(1)].every(isDigit);
}

function parseHost(host: string): string {
  if (host.startsWith('[')) {
    const i = host.lastIndexOf(']');
    if (i < 0) throw new UrlError("missing ']' in host");
    const colonPort = host.slice(i + 1);
    if (!validOptionalPort(colonPort)) throw new UrlError(`invalid port ${JSON.stringify(colonPort)} after host`);
  } else {
    const i = host.lastIndexOf(':');
    if (i >= 0 && !validOptionalPort(host.slice(i))) throw new UrlError(`invalid port ${JSON.stringify(host.slice(i))} after host`);
  }
  checkEscapes(host, true);
  return host;
}

function parseAuthority(authority: string): { user: string | undefined; host: string } {
  const at = authority.lastIndexOf('@');
  const host = parseHost(authority.slice(at + 1));
  if (at < 0) return { user: undefined, host };
  const user = authority.slice(0, at);
  if (![...user].every((c) => isAlpha(c) || isDigit(c) || userinfoChars.has(c))) throw new UrlError('net/url: invalid userinfo');
  checkEscapes(user, false);
  return { user, host };
}

/** Go's getScheme: a scheme is letters, then letters, digits, "+", "-" or "."; none when the text does not start so. */
function splitScheme(raw: string): [string, string] {
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] ?? '';
    if (isAlpha(c)) continue;
    if (isDigit(c) || c === '+' || c === '-' || c === '.') {
      if (i === 0) return ['', raw];
      continue;
    }
    if (c === ':') {
      if (i === 0) throw new UrlError('missing protocol scheme');
      return [raw.slice(0, i), raw.slice(i + 1)];
    }
    return ['', raw];
  }
  return ['', raw];
}

function parseNoFragment(raw: string): Omit<GoUrl, 'fragment'> {
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(raw)) throw new UrlError('net/url: invalid control character in URL');
  const [schemeRaw, afterScheme] = splitScheme(raw);
  const scheme = schemeRaw.toLowerCase();
  let rest = afterScheme;
  let rawQuery = '';
  let forceQuery = false;
  if (rest.endsWith('?') && rest.indexOf('?') === rest.length - 1) {
    forceQuery = true;
    rest = rest.slice(0, -1);
  } else if (rest.includes('?')) {
    rawQuery = rest.slice(rest.indexOf('?') + 1);
    rest = rest.slice(0, rest.indexOf('?'));
  }
  const url = { scheme, opaque: '', user: undefined as string | undefined, host: '', path: '', rawQuery, forceQuery };
  if (!rest.startsWith('/')) {
    if (scheme !== '') return { ...url, opaque: rest };
    if ((rest.split('/')[0] ?? '').includes(':')) throw new UrlError('first path segment in URL cannot contain colon');
  }
  if (rest.startsWith('//') && (scheme !== '' || !rest.startsWith('///'))) {
    const slash = rest.indexOf('/', 2);
    const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
    rest = slash < 0 ? '' : rest.slice(slash);
    Object.assign(url, parseAuthority(authority));
  }
  checkEscapes(rest, false);
  return { ...url, path: rest };
}

/** Go's url.Parse; a failure reads as Go's: `parse "<url>": <why>`. */
function parseGoUrl(raw: string): GoUrl {
  const hash = raw.indexOf('#');
  const beforeFragment = hash < 0 ? raw : raw.slice(0, hash);
  let url: Omit<GoUrl, 'fragment'>;
  try {
    url = parseNoFragment(beforeFragment);
  } catch (e) {
    if (e instanceof UrlError) throw new ConfigError(`parse ${JSON.stringify(beforeFragment)}: ${e.message}`);
    throw e;
  }
  const fragment = hash < 0 ? undefined : raw.slice(hash + 1);
  try {
    if (fragment !== undefined) checkEscapes(fragment, false);
  } catch (e) {
    if (e instanceof UrlError) throw new ConfigError(`parse ${JSON.stringify(raw)}: ${e.message}`);
    throw e;
  }
  return { ...url, fragment: fragment === '' ? undefined : fragment };
}

/** Go's net.SplitHostPort, as far as whether it fails. */
export function splitsHostPort(hostport: string): boolean {
  const i = hostport.lastIndexOf(':');
  if (i < 0) return false;
  let j = 0;
  let k = 0;
  if (hostport.startsWith('[')) {
    const end = hostport.indexOf(']');
    if (end < 0 || end + 1 !== i) return false;
    j = 1;
    k = end + 1;
  } else if (hostport.slice(0, i).includes(':')) {
    return false;
  }
  return !hostport.slice(j).includes('[') && !hostport.slice(k).includes(']');
}

/** The host of a URL that checkUrl took ("[::1]" for IPv6), without its port. */
function urlHost(url: string): string {
  const u = parseGoUrl(url);
  return u.host.slice(0, u.host.lastIndexOf(':'));
}

/** Go's url.String() of a URL that NewURLs takes (no path, not opaque). */
function goUrlString(u: GoUrl): string {
  let s = `${u.scheme}://`;
  if (u.user !== undefined) s += `${u.user}@`;
  s += u.host;
  if (u.forceQuery || u.rawQuery !== '') s += `?${u.rawQuery}`;
  if (u.fragment !== undefined) s += `#${u.fragment}`;
  return s;
}

/**
 * Checks one URL as etcd's types.NewURLs does and returns it as etcd keeps
 * it; the error texts are etcd's (and Go's, for what url.Parse refuses).
 */
export function checkUrl(raw: string): string {
  const input = raw.trim();
  const u = parseGoUrl(input);
  if (!['http', 'https', 'unix', 'unixs'].includes(u.scheme)) throw new ConfigError(`URL scheme must be http, https, unix, or unixs: ${input}`);
  if (!splitsHostPort(u.host)) throw new ConfigError(`URL address does not have the form "host:port": ${input}`);
  if (u.path !== '') throw new ConfigError(`URL must not contain a path: ${input}`);
  return goUrlString(u);
}

/**
 * checkUrl for a URL this member listens on or advertises: etcd refuses an
 * empty host there (checkBindURLs, checkHostURLs) where a peer URL given to
 * MemberAdd may have one.
 */
export function checkOwnUrl(raw: string): string {
  const url = checkUrl(raw);
  if (urlHost(url) === '') throw new ConfigError(`unexpected empty host (${url})`);
  return url;
}
