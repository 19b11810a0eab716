import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { RegistryError } from '../errors.ts';
import { redactUrl } from '../redact.ts';
import type { Challenge } from './challenge.ts';

/** Where an address leads: the internet, this machine, a private network or the local link. */
export type AddressScope = 'public' | 'loopback' | 'private' | 'link-local';

/** Every address a host name resolves to; rejects when it does not resolve. */
export type ResolveAll = (hostname: string) => Promise<string[]>;

const RANGES: ReadonlyArray<readonly [Exclude<AddressScope, 'public'>, string, number]> = [
  // 0.0.0.0/8 and :: reach this machine on Linux.
  ['loopback', '127.0.0.0', 8],
  ['loopback', '0.0.0.0', 8],
  ['loopback', '::1', 128],
  ['loopback', '::', 128],
  ['private', '10.0.0.0', 8],
  ['private', '172.16.0.0', 12],
  ['private', '192.168.0.0', 16],
  ['private', '100.64.0.0', 10],
  ['private', 'fc00::', 7],
  ['link-local', '169.254.0.0', 16],
  ['link-local', 'fe80::', 10],
];

const BLOCKS = new Map<AddressScope, BlockList>();
for (const [scope, network, prefix] of RANGES) {
  let list = BLOCKS.get(scope);
  if (!list) {
    list = new BlockList();
    BLOCKS.set(scope, list);
  }
  list.addSubnet(network, prefix, network.includes(':') ? 'ipv6' : 'ipv4');
}

/**
 * The scope of an IP address: loopback (127/8, 0/8, ::1, ::), private (10/8, 172.16/12,
 * 192.168/16, 100.64/10 shared address space, fc00::/7), link-local (169.254/16, where cloud
 * metadata services live; fe80::/10) or public. IPv4-mapped IPv6 addresses count as their IPv4.
 */
export function addressScope(address: string): AddressScope {
  const family = isIP(address);
  if (family === 0) throw new TypeError(`not an IP address: ${address}`);
  for (const [scope, list] of BLOCKS) {
    if (list.check(address, family === 4 ? 'ipv4' : 'ipv6')) return scope;
  }
  return 'public';
}

/** `dns.lookup` of every address, as the connection will resolve the name (hosts file included). */
async function resolveAll(hostname: string): Promise<string[]> {
  return (await lookup(hostname, { all: true, verbatim: true })).map((entry) => entry.address);
}

/** The scopes of `hostname`'s addresses; an IP literal is its own address. Empty when it does not resolve. */
async function scopesOf(hostname: string, resolve: ResolveAll): Promise<Map<string, AddressScope>> {
  const bare = hostname.replace(/^\[(.*)\]$/, '$1');
  let addresses: string[];
  try {
    addresses = isIP(bare) === 0 ? await resolve(bare) : [bare];
  } catch {
    addresses = [];
  }
  return new Map(addresses.map((address) => [address, addressScope(address)]));
}

/**
 * The token realm of a Bearer challenge, once it is safe to send credentials there. Refused with
 * `INSECURE_REALM`, before any connection to it:
 * - a realm that is missing, not a URL, or neither `http` nor `https`;
 * - an `http` realm of an `https` registry (credentials would travel in clear text);
 * - a realm on another host than the registry's whose name or address leads to a loopback,
 *   private or link-local address (see {@link addressScope}) while none of the registry's own
 *   addresses is in that same scope. A registry on loopback may name a loopback realm, one on a
 *   private network a private realm; a public registry may name only public realms, so a
 *   challenge cannot point the client at `169.254.169.254` or an intranet service (SSRF).
 *
 * Host names are resolved with `dns.lookup` (hosts file included) and every address is checked.
 * A realm name that does not resolve here is let through: it cannot be reached directly, and
 * through a proxy it is the proxy that resolves it. The connection resolves the name again, so a
 * DNS answer that changes in between (rebinding) is not caught.
 */
export async function tokenRealm(
  challenge: Challenge,
  registry: URL,
  resolve: ResolveAll = resolveAll,
): Promise<URL> {
  const refuse = (message: string) =>
    new RegistryError({ code: 'INSECURE_REALM', method: 'GET', url: redactUrl(registry), message });
  const realm = challenge.params.realm;
  if (realm === undefined || !URL.canParse(realm)) {
    throw refuse(`${registry.host} sent a Bearer challenge without a usable realm URL`);
  }
  const url = new URL(realm);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw refuse(`${registry.host} names a token realm with unsupported scheme ${url.protocol}`);
  }
  if (registry.protocol === 'https:' && url.protocol === 'http:') {
    throw refuse(
      `${registry.host} is served over https but names an http token realm (${redactUrl(url)}); refusing to send credentials in clear text`,
    );
  }
  if (url.hostname === registry.hostname) return url;
  const realmScopes = await scopesOf(url.hostname, resolve);
  const inward = [...realmScopes].filter(([, scope]) => scope !== 'public');
  if (inward.length === 0) return url;
  const registryScopes = new Set((await scopesOf(registry.hostname, resolve)).values());
  for (const [address, scope] of inward) {
    if (registryScopes.has(scope)) continue;
    const where = address === url.hostname.replace(/^\[(.*)\]$/, '$1') ? '' : ` (${address})`;
    throw refuse(
      `${registry.host} names token realm ${redactUrl(url)}, a ${scope} address${where} that is not the registry's own; refusing to send credentials there`,
    );
  }
  return url;
}
